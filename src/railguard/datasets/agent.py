"""Agent rows as railguard inputs: a WebGuard row as the Action an agent would propose, a trajectory row's
turns. Shared by the agent training adapters (:mod:`railguard.train.agent_data`) and the agent benchmarks
(:mod:`railguard.eval.agent`)."""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

from ..agent.actions import Action, Turn
from ..errors import InputError

_ROLES = {"user": "user", "assistant": "agent", "agent": "agent", "tool": "environment", "environment": "environment"}


def parse_field(value: Any) -> Any:
    """The data's nested fields are JSON or a Python literal written as text."""
    if not isinstance(value, str):
        return value
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return value


def webguard_action(row: dict) -> Action:
    """A WebGuard row as the Action an agent would propose (its element description is annotator text,
    not something an agent has, so it is left out)."""
    kind = (row.get("action") or "click").lower()
    return Action(kind=kind if kind in ("click", "type", "submit") else "click",
                  target=row.get("target_text") or row.get("element_description") or "(no text)",
                  url=row.get("url"), element_tag=row.get("tag_head"), page_title=row.get("page_title"),
                  task=row.get("task"))


def read_turns(raw: Any) -> tuple[Turn, ...]:
    """A source's turns as railguard Turns (``assistant`` is the agent, ``tool`` the environment)."""
    out = []
    for t in parse_field(raw) or ():
        if not isinstance(t, Mapping):
            continue
        role = _ROLES.get(t.get("role"))
        data = {k: t.get(k) for k in ("content", "thought", "action") if t.get(k) not in (None, "")}
        if role and data:
            try:
                out.append(Turn(role, **data))
            except InputError:
                continue
    return tuple(out)


def trajectory_input(row: dict) -> tuple[tuple[Turn, ...], str | None]:
    """A trajectory row's turns (as railguard Turns) and the agent's profile."""
    return read_turns(row.get("trajectory")), row.get("profile")
