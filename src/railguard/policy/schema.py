"""The policy file's schema, declared once: every section and field is a row of :data:`SCHEMA`, and one validator
(:func:`validate`) and one merger (:func:`merge`) walk it.

A spec is a leaf (a string, a choice, a threshold, an action, ...) or a container: a :class:`Record` (a mapping of
fixed keys), a :class:`Table` (a mapping of known names, ``default`` included, each to the same spec) or a
:class:`Listing` (a list of records told apart by their name). Each spec knows how to ``check`` a value at a path,
raising ``at(path, message)`` (the loader turns the path into "file, line N"), and how to ``merge`` a child's value
over its base's when one policy ``extends`` another: a leaf is replaced, a record and a table merge key by key
(the child wins), a listing by name. A new setting is one more row here; no branch elsewhere grows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..agent.rules import DEFAULT_LEVEL_ACTIONS, parse_rules
from ..taxonomy import CATEGORY_NAMES
from ..types import ACTIONS, TASKS
from .model import ON_ERROR, PII_ENTITIES, REDACTION_STYLES, PolicyError

Where = tuple[Any, ...]
#: ``at(path, message)``: the error to raise for the value at ``path`` (the message already names the field).
ErrorAt = Callable[[Where, str], PolicyError]


def dotted(path: Where) -> str:
    """``("custom_categories", 0, "name")`` -> ``custom_categories[0].name``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def kind_of(value: Any) -> str:
    """What a wrong value is, for a message: ``nothing``, ``a list``, ``str 'x'``, ..."""
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


class Leaf:
    """A single value; ``merge`` replaces the base's with the child's."""

    __slots__ = ()

    def check(self, value: Any, path: Where, at: ErrorAt) -> Any:
        raise NotImplementedError

    def merge(self, base: Any, child: Any) -> Any:
        return child


# --- leaves --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Text(Leaf):
    def check(self, value: Any, path: Where, at: ErrorAt) -> str:
        if not isinstance(value, str) or not value.strip():
            raise at(path, f"{dotted(path)} must be a non-empty string, got {kind_of(value)}")
        return value


@dataclass(frozen=True, slots=True)
class Texts(Leaf):
    """A non-empty list of non-empty strings, returned as ``into`` (a list or a tuple)."""

    into: Callable[[list[str]], Any] = list

    def check(self, value: Any, path: Where, at: ErrorAt) -> Any:
        if not isinstance(value, list):
            raise at(path, f"{dotted(path)} must be a list of strings, got {kind_of(value)}")
        if not value:
            raise at(path, f"{dotted(path)} is empty; give at least one example")
        return self.into([Text().check(item, path + (i,), at) for i, item in enumerate(value)])


@dataclass(frozen=True, slots=True)
class Choice(Leaf):
    allowed: tuple[str, ...]

    def check(self, value: Any, path: Where, at: ErrorAt) -> str:
        if not isinstance(value, str) or value not in self.allowed:
            raise at(path, f"{dotted(path)}: {value!r} is not one of {', '.join(self.allowed)}")
        return value


@dataclass(frozen=True, slots=True)
class Flag(Leaf):
    def check(self, value: Any, path: Where, at: ErrorAt) -> bool:
        if not isinstance(value, bool):
            raise at(path, f"{dotted(path)} must be true or false, got {kind_of(value)}")
        return value


@dataclass(frozen=True, slots=True)
class Threshold(Leaf):
    def check(self, value: Any, path: Where, at: ErrorAt) -> float:
        if not _is_number(value):
            raise at(path, f"{dotted(path)}: threshold must be a number from 0 to 1, got {kind_of(value)}")
        if not 0.0 <= float(value) <= 1.0:
            raise at(path, f"{dotted(path)}: threshold {value} is outside [0, 1]")
        return float(value)


@dataclass(frozen=True, slots=True)
class Action(Leaf):
    """One of :data:`railguard.types.ACTIONS`; ``redact`` only where ``redact`` (the PII and secrets scanners)."""

    redact: bool = False

    def check(self, value: Any, path: Where, at: ErrorAt) -> str:
        allowed = ACTIONS if self.redact else tuple(a for a in ACTIONS if a != "redact")
        if value == "redact" and not self.redact:
            raise at(path, f"{dotted(path)}: action 'redact' only applies to pii and secrets; "
                           f"use one of {', '.join(allowed)}")
        if not isinstance(value, str) or value not in allowed:
            raise at(path, f"{dotted(path)}: unknown action {value!r}; use one of {', '.join(allowed)}")
        return value


@dataclass(frozen=True, slots=True)
class Number(Leaf):
    """A number ``accepts`` says is in range, ``whole`` for an int; ``must`` says what it must be."""

    accepts: Callable[[float], bool]
    must: str
    whole: bool = False

    def check(self, value: Any, path: Where, at: ErrorAt) -> float | int:
        if not _is_number(value) or (self.whole and not isinstance(value, int)) or not self.accepts(value):
            raise at(path, f"{dotted(path)} must be {self.must}, got {kind_of(value)}")
        return value if self.whole else float(value)


@dataclass(frozen=True, slots=True)
class Entities(Leaf):
    """Presidio entity names, each known and named once."""

    def check(self, value: Any, path: Where, at: ErrorAt) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise at(path, f"{dotted(path)} must be a non-empty list of entity names such as EMAIL_ADDRESS")
        seen: set[str] = set()
        for i, entity in enumerate(value):
            where = dotted(path + (i,))
            if entity not in PII_ENTITIES:
                raise at(path + (i,), f"{where}: unknown PII entity {entity!r}; known: {', '.join(PII_ENTITIES)}")
            if entity in seen:
                raise at(path + (i,), f"{where}: duplicate entity {entity!r}")
            seen.add(entity)
        return tuple(value)


_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class Name(Leaf):
    """A custom category's name: an identifier that is not a built-in task or category."""

    reserved: frozenset[str]

    def check(self, value: Any, path: Where, at: ErrorAt) -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            raise at(path, f"{dotted(path)}: {value!r} is not a valid name (lower case letters, digits and _, "
                           "starting with a letter)")
        if value in self.reserved:
            raise at(path, f"{dotted(path)}: '{value}' is a built-in task or category; set its threshold and "
                           "action under tasks/categories instead")
        return value


@dataclass(frozen=True, slots=True)
class AgentRules(Leaf):
    """``agent.rules`` (see :mod:`railguard.agent.rules`): the rules by name; a child's rule replaces its base's
    of the same name."""

    def check(self, value: Any, path: Where, at: ErrorAt) -> dict[str, Any]:
        rules = parse_rules(value, lambda p, message: at(p, f"{dotted(p)}: {message}"), path)
        return {r.name: r for r in rules}

    def merge(self, base: Any, child: Any) -> Any:
        return {**base, **child}


# --- containers ----------------------------------------------------------------------------------------

def _mapping(value: Any, path: Where, at: ErrorAt) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise at(path, f"{dotted(path)} must be a mapping (key: value), got {kind_of(value)}")
    return value


@dataclass(frozen=True, slots=True)
class Record:
    """A mapping whose keys are ``fields``' (each optional unless ``required``); ``when_named`` are the values a
    record gets by being written at all (naming ``pii`` switches it on); ``whole``: a child's record replaces
    its base's instead of merging key by key."""

    fields: Mapping[str, Spec]
    required: tuple[str, ...] = ()
    when_named: Mapping[str, Any] = field(default_factory=dict)
    whole: bool = False

    def check(self, value: Any, path: Where, at: ErrorAt) -> dict[str, Any]:
        value = _mapping(value, path, at)
        for key in value:
            if key not in self.fields:
                raise at(path + (key,), f"{dotted(path + (key,))}: unknown key '{key}'; allowed: "
                                        f"{', '.join(self.fields)}")
        for key in self.required:
            if key not in value:
                raise at(path, f"{dotted(path)}: '{key}' is missing")
        out = {key: self.fields[key].check(item, path + (key,), at) for key, item in value.items()}
        for key, implied in self.when_named.items():
            out.setdefault(key, implied)
        return out

    def merge(self, base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
        if self.whole:
            return dict(child)
        out = dict(base)
        for key, value in child.items():
            out[key] = self.fields[key].merge(base[key], value) if key in base else value
        return out


@dataclass(frozen=True, slots=True)
class Table:
    """A mapping from ``default`` or one of the ``known`` names (a ``what``: task, category) to an ``entry``."""

    entry: Record
    known: tuple[str, ...]
    what: str

    def check(self, value: Any, path: Where, at: ErrorAt) -> dict[str, Any]:
        value = _mapping(value, path, at)
        out = {}
        for name, item in value.items():
            if name != "default" and name not in self.known:
                raise at(path + (name,), f"{dotted(path + (name,))}: unknown {self.what} '{name}'; known: "
                                         f"default, {', '.join(self.known)}")
            out[name] = self.entry.check(item, path + (name,), at)
        return out

    def merge(self, base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for name, value in child.items():
            out[name] = self.entry.merge(base[name], value) if name in base else value
        return out


@dataclass(frozen=True, slots=True)
class Listing:
    """A list of ``entry`` records (``plural`` in messages), each told apart by its ``key`` (unique; ``noun`` in
    messages); a child's entry replaces its base's of the same key, new ones come after."""

    entry: Record
    key: str
    noun: str
    plural: str

    def check(self, value: Any, path: Where, at: ErrorAt) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise at(path, f"{dotted(path)} must be a list of {self.plural} (- {self.key}: ...), got {kind_of(value)}")
        out, seen = [], set()
        for i, item in enumerate(value):
            entry = self.entry.check(item, path + (i,), at)
            where = path + (i, self.key)
            if entry[self.key] in seen:
                raise at(where, f"{dotted(where)}: duplicate {self.noun} {self.key} '{entry[self.key]}'")
            seen.add(entry[self.key])
            out.append(entry)
        return out

    def merge(self, base: list[dict[str, Any]], child: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_key = {entry[self.key]: entry for entry in base}
        by_key.update({entry[self.key]: entry for entry in child})
        return list(by_key.values())


Spec = Leaf | Record | Table | Listing


# --- the policy file -----------------------------------------------------------------------------------

#: A task's or a category's rule.
RULE = Record({"threshold": Threshold(), "action": Action(), "enabled": Flag()})

#: Every key a policy file may hold, in the order the "allowed:" messages list them.
SCHEMA = Record({
    "extends": Text(),
    "description": Text(),
    "on_error": Choice(ON_ERROR),
    "tasks": Table(RULE, TASKS, "task"),
    "categories": Table(RULE, CATEGORY_NAMES, "category"),
    "pii": Record({"enabled": Flag(), "entities": Entities(), "action": Action(redact=True), "threshold": Threshold(),
                   "redaction": Choice(REDACTION_STYLES)}, when_named={"enabled": True}),
    "secrets": Record({"enabled": Flag(), "action": Action(redact=True)}, when_named={"enabled": True}),
    "custom_categories": Listing(Record({
        "name": Name(frozenset(TASKS) | frozenset(CATEGORY_NAMES) | {"default"}),
        "description": Text(),
        "examples": Texts(into=tuple),
        "negative_examples": Texts(into=tuple),
        "threshold": Threshold(),
        "action": Action(),
    }, required=("name", "examples")), key="name", noun="custom category",
       plural="categories"),
    # tiers cheapest first and when to go up (see railguard.guards.cascade); a child's cascade replaces its base's
    "cascade": Record({
        "tiers": Texts(),
        "route": Choice(("hesitation", "margin")),
        "k": Number(lambda v: v >= 1, "a whole number ≥ 1", whole=True),
        "margin": Number(lambda v: 0 <= v <= 0.5, "a number in 0..0.5"),
        "languages": Flag(),
        "fallback": Choice(("closed", "cheap", "open")),
        "timeout_s": Number(lambda v: v > 0, "a positive number of seconds"),
    }, whole=True),
    "agent": Record({"rules": AgentRules(),
                     "actions": Record({level: Action() for level in DEFAULT_LEVEL_ACTIONS})}),
})
SECTIONS: tuple[str, ...] = tuple(SCHEMA.fields)


def validate(data: Any, at: ErrorAt) -> dict[str, Any]:
    """One document's own settings, checked (the first mistake raises ``at(path, message)``); merging with
    what it extends happens afterwards."""
    return SCHEMA.check(data, (), at)


def merge(base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """``child`` over ``base``, section by section as :data:`SCHEMA` says."""
    return SCHEMA.merge(base, child)
