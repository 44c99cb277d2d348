"""Rules that put a floor under an action's risk: "any submit on a payment URL is at least LOW", "tool
``shell`` with ``rm -rf`` is HIGH". The agent guard combines them with its model: the final risk is the
higher of the model's level and every fired rule's level, and each fired rule is named in the verdict's
``explanation``.

A rule (in ``railguard/data/agent_rules.yaml``, or under ``agent: rules:`` in a policy file)::

    - name: shell_rm_rf
      description: a shell command that deletes recursively is HIGH
      when: {kind: [tool_call], tool: "shell|bash", arguments: "rm\\s+-rf"}
      risk: HIGH

Every condition under ``when`` must hold: ``kind`` is a list of action kinds, every other key a regular
expression searched (case-insensitively) in that field of the Action; ``text`` searches the target, the
typed text and the arguments together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from ..errors import ConfigError
from .actions import ACTION_KINDS, RISK_LEVELS, Action

RULE_KEYS: tuple[str, ...] = ("name", "description", "when", "risk")
FIELDS: tuple[str, ...] = ("kind", "url", "target", "element_tag", "page_title", "tool", "arguments", "task", "text")
FLOORS: tuple[str, ...] = ("LOW", "HIGH")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: (path, message) -> an exception naming where the mistake is (a policy file passes its own).
ErrorAt = Callable[[tuple[Any, ...], str], Exception]


@dataclass(frozen=True, slots=True)
class AgentRule:
    name: str
    risk: str
    kinds: tuple[str, ...] = ()
    patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()
    description: str = ""

    def matches(self, a: Action) -> bool:
        if self.kinds and a.kind not in self.kinds:
            return False
        for name, pattern in self.patterns:
            value = (" ".join(v for v in (a.target, a.text, a.arguments) if v) if name == "text"
                     else getattr(a, name) or "")
            if not pattern.search(value):
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        when: dict[str, Any] = {"kind": list(self.kinds)} if self.kinds else {}
        when.update({n: p.pattern for n, p in self.patterns})
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        return {**out, "when": when, "risk": self.risk}


def _default_error(path: tuple[Any, ...], message: str) -> Exception:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return ConfigError(f"agent rules{' ' + where if where else ''}: {message}")


def parse_rules(value: Any, error: ErrorAt = _default_error, path: tuple[Any, ...] = ()) -> tuple[AgentRule, ...]:
    """Validated rules from a YAML list; the first mistake raises ``error(path, message)``."""
    if not isinstance(value, list):
        raise error(path, "agent rules must be a list (- name: ...)")
    out, names = [], set()
    for i, item in enumerate(value):
        p = path + (i,)
        if not isinstance(item, Mapping):
            raise error(p, "each rule must be a mapping with name, when and risk")
        unknown = [k for k in item if k not in RULE_KEYS]
        if unknown:
            raise error(p + (unknown[0],), f"unknown key '{unknown[0]}'; allowed: {', '.join(RULE_KEYS)}")
        for required in ("name", "when", "risk"):
            if required not in item:
                raise error(p, f"'{required}' is missing")
        name = item["name"]
        if not isinstance(name, str) or not _NAME.match(name):
            raise error(p + ("name",), f"{name!r} is not a valid rule name (lower case letters, digits and _)")
        if name in names:
            raise error(p + ("name",), f"duplicate rule name '{name}'")
        names.add(name)
        if item["risk"] not in FLOORS:
            raise error(p + ("risk",), f"risk {item['risk']!r} must be one of {', '.join(FLOORS)} (a rule raises risk)")
        when = item["when"]
        if not isinstance(when, Mapping) or not when:
            raise error(p + ("when",), "when must be a non-empty mapping of field: regular expression")
        kinds: tuple[str, ...] = ()
        patterns = []
        for key, cond in when.items():
            q = p + ("when", key)
            if key not in FIELDS:
                raise error(q, f"unknown field '{key}'; use one of {', '.join(FIELDS)}")
            if key == "kind":
                listed = [cond] if isinstance(cond, str) else cond
                if not isinstance(listed, list) or not listed or any(k not in ACTION_KINDS for k in listed):
                    raise error(q, f"kind must list action kinds from {', '.join(ACTION_KINDS)}")
                kinds = tuple(listed)
                continue
            if not isinstance(cond, str) or not cond:
                raise error(q, "must be a regular expression (a non-empty string)")
            try:
                patterns.append((key, re.compile(cond, re.IGNORECASE)))
            except re.error as exc:
                raise error(q, f"not a valid regular expression: {exc}") from None
        description = item.get("description", "")
        if not isinstance(description, str):
            raise error(p + ("description",), "description must be a string")
        out.append(AgentRule(name, item["risk"], kinds, tuple(patterns), description))
    return tuple(out)


@lru_cache(maxsize=1)
def default_rules() -> tuple[AgentRule, ...]:
    """The rules shipped in ``railguard/data/agent_rules.yaml``."""
    import yaml

    text = (resources.files("railguard") / "data" / "agent_rules.yaml").read_text(encoding="utf-8")
    return parse_rules(yaml.safe_load(text))


def fired(rules: Sequence[AgentRule], a: Action) -> list[AgentRule]:
    return [r for r in rules if r.matches(a)]


def raise_level(level: str, rules: Sequence[AgentRule]) -> str:
    """The higher of ``level`` and every rule's floor."""
    return max([level, *(r.risk for r in rules)], key=RISK_LEVELS.index)


def tool_action(step: str) -> Action | None:
    """An agent turn's action text (``shell{"cmd": "rm -rf /"}``, ``BankManagerPayBill\\nAction Input: {...}``)
    read as a tool call, so that the same rules judge the tool calls inside a trajectory."""
    step = step.strip()
    m = re.match(r"([A-Za-z_][\w.\-]*)\s*(.*)", step, re.DOTALL)
    if m is None:
        return None
    return Action("tool_call", tool=m.group(1), arguments=m.group(2)[:10_000] or None)


#: What a policy does at each level by default (an unsafe trajectory counts as HIGH).
DEFAULT_LEVEL_ACTIONS: dict[str, str] = {"SAFE": "allow", "LOW": "flag", "HIGH": "block"}


@dataclass(frozen=True, slots=True)
class AgentPolicy:
    """The ``agent`` section of a policy file: extra rules (added to the built-in ones) and the action
    taken at each risk level::

        agent:
          rules: [{name: no_wire, when: {kind: [tool_call], tool: wire}, risk: HIGH}]
          actions: {LOW: flag, HIGH: block}
    """

    rules: tuple[AgentRule, ...] = ()
    actions: Mapping[str, str] | None = None  # None: DEFAULT_LEVEL_ACTIONS

    def __post_init__(self) -> None:
        if self.actions is None:
            object.__setattr__(self, "actions", dict(DEFAULT_LEVEL_ACTIONS))

    @property
    def is_default(self) -> bool:
        return not self.rules and dict(self.actions) == DEFAULT_LEVEL_ACTIONS

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"actions": dict(self.actions)}
        if self.rules:
            out["rules"] = [r.to_dict() for r in self.rules]
        return out
