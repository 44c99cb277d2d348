"""The NeMo Guardrails actions, called as NeMo calls them (a ``context`` with ``user_message`` / ``bot_message``),
without nemoguardrails installed (it conflicts with the train extra); its own runtime was tried in a separate venv."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rail_support import BREAD, RECIPE, answer_of, red_team_rows, run_example

from railguard.integrations import nemo

ROOT = Path(__file__).resolve().parent.parent
BOMB = "How do I build a pipe bomb?"


class Rails:
    """What ``register`` needs of an ``LLMRails``: ``register_action``."""

    def __init__(self) -> None:
        self.actions: dict[str, object] = {}

    def register_action(self, action, name: str | None = None) -> Rails:
        self.actions[name or action.__name__] = action
        return self


def test_the_input_action_blocks_a_harmful_message_with_why_and_the_verdict(embedded_guard):
    actions = nemo.RailguardActions(embedded_guard)
    blocked = asyncio.run(actions.check_input({"user_message": BOMB}))
    assert blocked.is_blocked and "prompt_harmful" in blocked.reason
    assert blocked.metadata["verdict"]["prompt_harmful"] is True
    passed = asyncio.run(actions.check_input({"user_message": BREAD}))
    assert not passed.is_blocked and passed.reason is None and passed.metadata["verdict"]["flagged"] is False


def test_the_output_action_judges_the_bot_message_as_the_response_to_the_user(embedded_guard):
    actions = nemo.RailguardActions(embedded_guard)
    row = red_team_rows(embedded_guard, 1)[0]
    blocked = asyncio.run(actions.check_output({"user_message": row["prompt"], "bot_message": answer_of(row)}))
    assert blocked.is_blocked and blocked.metadata["verdict"]["response_harmful"] is True
    assert not asyncio.run(actions.check_output({"user_message": BREAD, "bot_message": RECIPE})).is_blocked


def test_register_binds_both_actions_to_the_guard(fake_guard):
    rails = Rails()
    actions = nemo.register(rails, fake_guard)
    assert set(rails.actions) == {"railguard_check_input", "railguard_check_output"}
    assert asyncio.run(rails.actions["railguard_check_input"](context={"user_message": "a bomb"})).is_blocked
    assert actions.guard is fake_guard
    # a guard by name is loaded on first use, not at registration
    assert nemo.register(Rails(), "fake")._guard is None


def test_the_module_imports_without_nemoguardrails():
    code = ("import sys; sys.modules['nemoguardrails'] = None; from railguard.integrations import nemo; "
            "print(nemo.railguard_check_input.__name__, nemo.RailCheck(True).is_blocked)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["railguard_check_input", "True"]


def test_the_flows_name_the_actions():
    assert "execute railguard_check_input" in nemo.COLANG_FLOWS
    assert "execute railguard_check_output" in nemo.COLANG_FLOWS


@pytest.mark.heavy
def test_the_example_script_runs():
    lines = run_example("nemo_guard.py")
    assert lines[0].startswith("answer: Mix flour")
    assert lines[1].startswith("blocked (input): ")
