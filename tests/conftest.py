"""Shared fixtures: a tiny keyword guard registered as ``fake``, and the real embedded guard."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import railguard
from railguard.models.artifacts import EMBEDDED_DIR, MANIFEST
from railguard.registry import register
from railguard.types import GuardInput, Verdict

HAS_EMBEDDED_MODEL = (EMBEDDED_DIR / MANIFEST).is_file()


class FakeGuard:
    """Flags prompts that contain "bomb"; a response containing "sorry" counts as a refusal."""

    name = "fake"

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        return [self._one(x) for x in inputs]

    def _one(self, x: GuardInput) -> Verdict:
        harmful = "bomb" in x.prompt.lower()
        scores = {"prompt_harmful": 0.9 if harmful else 0.1, "jailbreak": 0.05, "injection": 0.05}
        decisions: dict[str, bool | None] = {"prompt_harmful": harmful, "jailbreak": False, "injection": False}
        if x.response is not None:
            refusal = "sorry" in x.response.lower()
            scores |= {"response_harmful": 0.1, "refusal": 0.9 if refusal else 0.1}
            decisions |= {"response_harmful": False, "refusal": refusal}
        return Verdict(**decisions, scores=scores, categories={"weapons": scores["prompt_harmful"]},
                       tier=self.name, latency_ms=0.1, id=x.id, flagged=harmful)


@register("fake", "a keyword guard for tests: flags prompts containing 'bomb'")
def _fake(argument: str | None = None, **options) -> FakeGuard:
    return FakeGuard()


@pytest.fixture
def fake_guard() -> FakeGuard:
    """A FakeGuard; the same guard is resolvable as ``--guard fake``."""
    return FakeGuard()


@pytest.fixture(scope="session")
def embedded_guard() -> railguard.Guard:
    """The shipped model, loaded once; tests using it skip when the model has not been built yet."""
    if not HAS_EMBEDDED_MODEL:
        pytest.skip(f"no embedded model in {EMBEDDED_DIR} (run `railguard train` and ship it)")
    return railguard.load_guard("embedded")
