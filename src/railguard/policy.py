"""User policy: which tasks and categories count, their thresholds, and what happens when one fires.

A policy is a YAML file (or a preset shipped in ``railguard/data/policies``); every key is optional and an
unknown key is an error. Each rule has an *action*, mildest first: ``allow`` (reported, nothing else),
``flag`` (reported and marked for review; ``verdict.flagged`` stays false), ``redact`` (PII and secrets
only: the verdict carries the text with those spans replaced) and ``block`` (``verdict.flagged`` is
true). ``verdict.action`` is the strongest action any rule took, ``verdict.explanation`` lists the rules
that fired with their score and threshold.

.. code-block:: yaml

    extends: default            # a preset or another policy file; every policy extends `default`
    description: what this policy is for
    on_error: block             # a guard that cannot decide: block (fail-closed, default) or allow
    tasks:                      # threshold default: the model's calibrated threshold
      prompt_harmful: {threshold: 0.6, action: block}
      injection: {action: flag}
      refusal: {enabled: false} # drop a task from the verdict altogether
    categories:
      default: {threshold: 0.5, action: flag}   # every category not named below
      sexual: {threshold: 0.7, action: block}
    pii: {entities: [EMAIL_ADDRESS, CREDIT_CARD], action: redact, threshold: 0.5, redaction: type}
    secrets: {action: block}
    custom_categories:
      - name: investment_advice
        description: asking which stocks or crypto to buy
        examples: ["Which stocks should I buy this week?"]
        negative_examples: ["What is a stock?"]
        threshold: 0.5
        action: block

``extends`` merges: mappings key by key (the child wins), lists replaced whole, custom categories by name.
Naming ``pii`` or ``secrets`` in a file switches it on unless that file says ``enabled: false``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .agent_rules import DEFAULT_LEVEL_ACTIONS, AgentPolicy, parse_rules
from .errors import ConfigError
from .taxonomy import CATEGORY_NAMES
from .types import ACTIONS, TASKS
from .verdicts import SEVERITY, strongest  # noqa: F401 - their home before verdicts.py

#: Presets shipped in the package, by name.
PRESETS: tuple[str, ...] = ("default", "strict", "permissive", "children", "enterprise")
ON_ERROR: tuple[str, ...] = ("block", "allow")
REDACTION_STYLES: tuple[str, ...] = ("type", "hash")
#: Presidio entity names a policy may ask for (checked again against the analyzer when it loads).
PII_ENTITIES: tuple[str, ...] = (
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "PERSON", "LOCATION", "NRP",
    "DATE_TIME", "URL", "CRYPTO", "MAC_ADDRESS", "UUID", "MEDICAL_LICENSE", "US_SSN", "US_ITIN", "US_PASSPORT",
    "US_DRIVER_LICENSE", "US_BANK_NUMBER", "ABA_ROUTING_NUMBER", "UK_NHS", "UK_NINO", "UK_PASSPORT",
    "UK_DRIVING_LICENCE", "UK_POSTCODE", "CA_SIN", "AU_ABN", "AU_ACN", "AU_TFN", "AU_MEDICARE", "IN_PAN",
    "IN_AADHAAR", "IN_PASSPORT", "IN_VOTER", "SG_NRIC_FIN",
)
# Built-in values for custom categories, whose scores are calibrated probabilities (0.5: more likely than not).
CUSTOM_THRESHOLD = 0.5
CUSTOM_ACTION = "flag"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SECTIONS = ("extends", "description", "on_error", "tasks", "categories", "pii", "secrets", "custom_categories",
             "cascade", "agent")
_CUSTOM_KEYS = ("name", "description", "examples", "negative_examples", "threshold", "action")


class PolicyError(ConfigError):
    """A policy file or preset is malformed; the message names the file, the line and the field."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A task's or a category's rule. ``threshold`` None: the guard's own calibrated decision."""

    action: str
    threshold: float | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class PiiRule:
    entities: tuple[str, ...]
    action: str
    threshold: float
    redaction: str = "type"
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class SecretsRule:
    action: str
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class CustomCategory:
    """A category defined by examples, scored few-shot with the embedded encoder."""

    name: str
    examples: tuple[str, ...]
    negative_examples: tuple[str, ...] = ()
    description: str = ""
    threshold: float = CUSTOM_THRESHOLD
    action: str = CUSTOM_ACTION


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated, fully merged policy (presets and ``extends`` resolved)."""

    name: str
    on_error: str
    tasks: Mapping[str, Rule]
    categories: Mapping[str, Rule]
    category_default: Rule
    pii: PiiRule
    secrets: SecretsRule
    custom_categories: tuple[CustomCategory, ...] = ()
    description: str = ""
    source: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: ``cascade:`` settings (tiers, route, k, margin, languages, fallback, timeout_s); empty when unset.
    cascade: Mapping[str, Any] = field(default_factory=dict)
    agent: AgentPolicy = field(default_factory=AgentPolicy)

    def cascade_options(self) -> dict[str, Any]:
        """The cascade settings as guard options; the fallback follows ``on_error`` unless set."""
        if not self.cascade:
            return {}
        options = dict(self.cascade)
        options.setdefault("fallback", "closed" if self.on_error == "block" else "open")
        return options

    def category_rule(self, name: str) -> Rule:
        return self.categories.get(name, self.category_default)

    @property
    def needs_rules(self) -> bool:
        """Whether the PII/secrets scanner (the ``pii`` extra) has to run."""
        return self.pii.enabled or self.secrets.enabled

    def to_dict(self) -> dict[str, Any]:
        """The merged policy in the file schema (``railguard policy show`` prints it as YAML)."""

        def rule(r: Rule) -> dict[str, Any]:
            out: dict[str, Any] = {"action": r.action}
            if r.threshold is not None:
                out["threshold"] = r.threshold
            if not r.enabled:
                out["enabled"] = False
            return out

        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        out["on_error"] = self.on_error
        out["tasks"] = {t: rule(r) for t, r in self.tasks.items()}
        out["categories"] = {"default": rule(self.category_default),
                             **{c: rule(r) for c, r in self.categories.items()}}
        out["pii"] = {"enabled": self.pii.enabled, "entities": list(self.pii.entities), "action": self.pii.action,
                      "threshold": self.pii.threshold, "redaction": self.pii.redaction}
        out["secrets"] = {"enabled": self.secrets.enabled, "action": self.secrets.action}
        if self.cascade:
            out["cascade"] = dict(self.cascade)
        if self.custom_categories:
            out["custom_categories"] = [
                {"name": c.name, **({"description": c.description} if c.description else {}),
                 "examples": list(c.examples),
                 **({"negative_examples": list(c.negative_examples)} if c.negative_examples else {}),
                 "threshold": c.threshold, "action": c.action}
                for c in self.custom_categories
            ]
        if not self.agent.is_default:
            out["agent"] = self.agent.to_dict()
        return out


# --- reading YAML with line numbers -------------------------------------------------------------------

Path_ = tuple[Any, ...]


@dataclass(slots=True)
class _Doc:
    """One parsed policy document: its data, where it came from and the line of every field."""

    data: Any
    origin: str
    lines: dict[Path_, int]
    base_dir: Path | None = None

    def error(self, path: Path_, message: str) -> PolicyError:
        line = self.lines.get(path)
        while line is None and path:
            path = path[:-1]
            line = self.lines.get(path)
        where = f"{self.origin}, line {line}" if line else self.origin
        return PolicyError(f"policy {where}: {message}")


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse_yaml(text: str, origin: str, base_dir: Path | None) -> _Doc:
    import yaml

    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"policy {origin}{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy {origin}: not valid YAML: {exc}") from None
    doc = _Doc(data if data is not None else {}, origin, {}, base_dir)
    if node is not None:
        _walk(node, (), doc)
    return doc


def _walk(node: Any, path: Path_, doc: _Doc) -> None:
    import yaml

    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key in seen:
                line = key_node.start_mark.line + 1
                raise PolicyError(f"policy {doc.origin}, line {line}: {_dotted(path + (key,))}: duplicate key "
                                  f"'{key}' (each key may appear once)")
            seen.add(key)
            doc.lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), doc)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), doc)


# --- validating one document --------------------------------------------------------------------------

def _mapping(doc: _Doc, value: Any, path: Path_) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise doc.error(path, f"{_dotted(path)} must be a mapping (key: value), got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _keys(doc: _Doc, value: Mapping[str, Any], path: Path_, allowed: tuple[str, ...]) -> None:
    for key in value:
        if key not in allowed:
            where = _dotted(path + (key,))
            raise doc.error(path + (key,), f"{where}: unknown key '{key}'; allowed: {', '.join(allowed)}")


def _action(doc: _Doc, value: Any, path: Path_, *, redact: bool) -> str:
    allowed = ACTIONS if redact else tuple(a for a in ACTIONS if a != "redact")
    if value == "redact" and not redact:
        raise doc.error(path, f"{_dotted(path)}: action 'redact' only applies to pii and secrets; "
                              f"use one of {', '.join(allowed)}")
    if not isinstance(value, str) or value not in allowed:
        raise doc.error(path, f"{_dotted(path)}: unknown action {value!r}; use one of {', '.join(allowed)}")
    return value


def _threshold(doc: _Doc, value: Any, path: Path_) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.error(path, f"{_dotted(path)}: threshold must be a number from 0 to 1, got {_kind(value)}")
    if not 0.0 <= float(value) <= 1.0:
        raise doc.error(path, f"{_dotted(path)}: threshold {value} is outside [0, 1]")
    return float(value)


def _bool(doc: _Doc, value: Any, path: Path_) -> bool:
    if not isinstance(value, bool):
        raise doc.error(path, f"{_dotted(path)} must be true or false, got {_kind(value)}")
    return value


def _text(doc: _Doc, value: Any, path: Path_) -> str:
    if not isinstance(value, str) or not value.strip():
        raise doc.error(path, f"{_dotted(path)} must be a non-empty string, got {_kind(value)}")
    return value


def _texts(doc: _Doc, value: Any, path: Path_) -> list[str]:
    if not isinstance(value, list):
        raise doc.error(path, f"{_dotted(path)} must be a list of strings, got {_kind(value)}")
    if not value:
        raise doc.error(path, f"{_dotted(path)} is empty; give at least one example")
    return [_text(doc, item, path + (i,)) for i, item in enumerate(value)]


def _choice(doc: _Doc, value: Any, path: Path_, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise doc.error(path, f"{_dotted(path)}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _entities(doc: _Doc, value: Any, path: Path_) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise doc.error(path, f"{_dotted(path)} must be a non-empty list of entity names such as EMAIL_ADDRESS")
    seen: set[str] = set()
    for i, entity in enumerate(value):
        if entity not in PII_ENTITIES:
            raise doc.error(path + (i,), f"{_dotted(path + (i,))}: unknown PII entity {entity!r}; known: "
                                         f"{', '.join(PII_ENTITIES)}")
        if entity in seen:
            raise doc.error(path + (i,), f"{_dotted(path + (i,))}: duplicate entity {entity!r}")
        seen.add(entity)
    return tuple(value)


Check = Callable[[_Doc, Any, Path_], Any]
_RULE_CHECKS: dict[str, Check] = {"threshold": _threshold, "action": functools.partial(_action, redact=False),
                                  "enabled": _bool}
_PII_CHECKS: dict[str, Check] = {"enabled": _bool, "entities": _entities,
                                 "action": functools.partial(_action, redact=True), "threshold": _threshold,
                                 "redaction": functools.partial(_choice, allowed=REDACTION_STYLES)}
_SECRETS_CHECKS: dict[str, Check] = {"enabled": _bool, "action": functools.partial(_action, redact=True)}


def _positive_int(doc: _Doc, value: Any, path: Path_) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise doc.error(path, f"{_dotted(path)} must be a whole number ≥ 1, got {_kind(value)}")
    return value


def _seconds(doc: _Doc, value: Any, path: Path_) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise doc.error(path, f"{_dotted(path)} must be a positive number of seconds, got {_kind(value)}")
    return float(value)


def _margin(doc: _Doc, value: Any, path: Path_) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 0.5:
        raise doc.error(path, f"{_dotted(path)} must be a number in 0..0.5, got {_kind(value)}")
    return float(value)


#: ``cascade:`` — tiers cheapest first and when to go up (see railguard.guards.cascade).
_CASCADE_CHECKS: dict[str, Check] = {"tiers": _texts, "route": functools.partial(_choice, allowed=("hesitation", "margin")),
                                     "k": _positive_int, "margin": _margin, "languages": _bool,
                                     "fallback": functools.partial(_choice, allowed=("closed", "cheap", "open")),
                                     "timeout_s": _seconds}


def _section(doc: _Doc, value: Any, path: Path_, checks: Mapping[str, Check]) -> dict[str, Any]:
    """A mapping whose keys are all in ``checks``, each value passed through its check."""
    value = _mapping(doc, value, path)
    _keys(doc, value, path, tuple(checks))
    return {key: checks[key](doc, item, path + (key,)) for key, item in value.items()}


def _rules(doc: _Doc, value: Any, path: Path_, known: tuple[str, ...], what: str) -> dict[str, dict[str, Any]]:
    value = _mapping(doc, value, path)
    out = {}
    for name, rule in value.items():
        if name != "default" and name not in known:
            raise doc.error(path + (name,), f"{_dotted(path + (name,))}: unknown {what} '{name}'; known: "
                                            f"default, {', '.join(known)}")
        out[name] = _section(doc, rule, path + (name,), _RULE_CHECKS)
    return out


def _custom(doc: _Doc, value: Any, path: Path_) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise doc.error(path, f"{_dotted(path)} must be a list of categories (- name: ...), got {_kind(value)}")
    out, names = [], set()
    reserved = set(TASKS) | set(CATEGORY_NAMES) | {"default"}
    for i, item in enumerate(value):
        p = path + (i,)
        item = _mapping(doc, item, p)
        _keys(doc, item, p, _CUSTOM_KEYS)
        for required in ("name", "examples"):
            if required not in item:
                raise doc.error(p, f"{_dotted(p)}: '{required}' is missing")
        name = item["name"]
        if not isinstance(name, str) or not _NAME.match(name):
            raise doc.error(p + ("name",), f"{_dotted(p + ('name',))}: {name!r} is not a valid name (lower case "
                                           "letters, digits and _, starting with a letter)")
        if name in reserved:
            raise doc.error(p + ("name",), f"{_dotted(p + ('name',))}: '{name}' is a built-in task or category; "
                                           "set its threshold and action under tasks/categories instead")
        if name in names:
            raise doc.error(p + ("name",), f"{_dotted(p + ('name',))}: duplicate custom category name '{name}'")
        names.add(name)
        entry: dict[str, Any] = {"name": name, "examples": tuple(_texts(doc, item["examples"], p + ("examples",)))}
        if "negative_examples" in item:
            entry["negative_examples"] = tuple(_texts(doc, item["negative_examples"], p + ("negative_examples",)))
        if "description" in item:
            entry["description"] = _text(doc, item["description"], p + ("description",))
        if "threshold" in item:
            entry["threshold"] = _threshold(doc, item["threshold"], p + ("threshold",))
        if "action" in item:
            entry["action"] = _action(doc, item["action"], p + ("action",), redact=False)
        out.append(entry)
    return out


def _validate(doc: _Doc) -> dict[str, Any]:
    """One document's own settings, checked; merging with what it extends happens afterwards."""
    data = _mapping(doc, doc.data, ())
    _keys(doc, data, (), _SECTIONS)
    out: dict[str, Any] = {}
    if "extends" in data:
        out["extends"] = _text(doc, data["extends"], ("extends",))
    if "description" in data:
        out["description"] = _text(doc, data["description"], ("description",))
    if "on_error" in data:
        out["on_error"] = _choice(doc, data["on_error"], ("on_error",), ON_ERROR)
    if "tasks" in data:
        out["tasks"] = _rules(doc, data["tasks"], ("tasks",), TASKS, "task")
    if "categories" in data:
        out["categories"] = _rules(doc, data["categories"], ("categories",), CATEGORY_NAMES, "category")
    for section, checks in (("pii", _PII_CHECKS), ("secrets", _SECRETS_CHECKS)):
        if section in data:
            part = _section(doc, data[section], (section,), checks)
            part.setdefault("enabled", True)  # naming a scanner switches it on
            out[section] = part
    if "custom_categories" in data:
        out["custom_categories"] = _custom(doc, data["custom_categories"], ("custom_categories",))
    if "cascade" in data:
        out["cascade"] = _section(doc, data["cascade"], ("cascade",), _CASCADE_CHECKS)
    if "agent" in data:
        out["agent"] = _agent(doc, data["agent"], ("agent",))
    return out


def _agent(doc: _Doc, value: Any, path: Path_) -> dict[str, Any]:
    """``agent: {rules: [...], actions: {LOW: flag, HIGH: block}}`` (see :mod:`railguard.agent_rules`)."""
    value = _mapping(doc, value, path)
    _keys(doc, value, path, ("rules", "actions"))
    out: dict[str, Any] = {}
    if "rules" in value:
        error = lambda p, message: doc.error(p, f"{_dotted(p)}: {message}")  # noqa: E731
        out["rules"] = {r.name: r for r in parse_rules(value["rules"], error, path + ("rules",))}
    if "actions" in value:
        actions = _mapping(doc, value["actions"], path + ("actions",))
        _keys(doc, actions, path + ("actions",), tuple(DEFAULT_LEVEL_ACTIONS))
        out["actions"] = {level: _action(doc, a, path + ("actions", level), redact=False)
                          for level, a in actions.items()}
    return out


# --- presets, extends and merging ---------------------------------------------------------------------

def preset_text(name: str) -> str:
    """The YAML of a shipped preset, as written."""
    if name not in PRESETS:
        raise PolicyError(f"unknown policy preset '{name}'; presets: {', '.join(PRESETS)}")
    return (resources.files("railguard") / "data" / "policies" / f"{name}.yaml").read_text(encoding="utf-8")


def _read(spec: str, base_dir: Path | None) -> _Doc:
    if spec in PRESETS:
        return _parse_yaml(preset_text(spec), f"preset '{spec}'", None)
    path = Path(spec).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise PolicyError(f"no policy file or preset named '{spec}'; presets: {', '.join(PRESETS)}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from None
    return _parse_yaml(text, str(path), path.parent)


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in child.items():
        if key == "extends":
            continue
        if key == "custom_categories":
            by_name = {c["name"]: c for c in base.get(key, [])}
            by_name.update({c["name"]: c for c in value})
            out[key] = list(by_name.values())
        elif key in ("tasks", "categories"):
            merged = {name: dict(rule) for name, rule in base.get(key, {}).items()}
            for name, rule in value.items():
                merged[name] = {**merged.get(name, {}), **rule}
            out[key] = merged
        elif key in ("pii", "secrets"):
            out[key] = {**base.get(key, {}), **value}
        elif key == "agent":
            old = base.get(key, {})
            out[key] = {"rules": {**old.get("rules", {}), **value.get("rules", {})},
                        "actions": {**old.get("actions", {}), **value.get("actions", {})}}
        else:
            out[key] = value
    return out


def _resolve(doc: _Doc, chain: tuple[str, ...]) -> dict[str, Any]:
    own = _validate(doc)
    parent = own.get("extends", "default" if doc.origin != "preset 'default'" else None)
    if parent is None:
        return own
    if parent in chain:
        raise doc.error(("extends",), f"extends: '{parent}' extends itself (cycle: {' -> '.join(chain + (parent,))})")
    base = _resolve(_read(parent, doc.base_dir), chain + (parent,))
    return _merge(base, own)


def _build(merged: dict[str, Any], name: str) -> Policy:
    def rule(d: Mapping[str, Any], where: str, fallback: Mapping[str, Any] | None = None) -> Rule:
        d = {**(fallback or {}), **d}
        if "action" not in d:
            raise PolicyError(f"policy {name}: {where} has no action")
        return Rule(action=d["action"], threshold=d.get("threshold"), enabled=d.get("enabled", True))

    tasks_in = merged.get("tasks", {})
    task_default = tasks_in.get("default", {})
    tasks = {t: rule(tasks_in.get(t, {}), f"tasks.{t}", task_default) for t in TASKS}
    cats_in = merged.get("categories", {})
    category_default = rule(cats_in.get("default", {}), "categories.default")
    if category_default.threshold is None:
        raise PolicyError(f"policy {name}: categories.default needs a threshold")
    categories = {c: rule(r, f"categories.{c}", cats_in.get("default", {}))
                  for c, r in cats_in.items() if c != "default"}
    pii_in, secrets_in = merged.get("pii", {}), merged.get("secrets", {})
    try:
        pii = PiiRule(entities=tuple(pii_in["entities"]), action=pii_in["action"], threshold=pii_in["threshold"],
                      redaction=pii_in.get("redaction", "type"), enabled=pii_in.get("enabled", False))
        secrets = SecretsRule(action=secrets_in["action"], enabled=secrets_in.get("enabled", False))
    except KeyError as exc:
        raise PolicyError(f"policy {name}: pii/secrets setting {exc} is missing (the default preset sets it)") from None
    custom = tuple(CustomCategory(**c) for c in merged.get("custom_categories", []))
    agent_in = merged.get("agent", {})
    agent = AgentPolicy(rules=tuple(agent_in.get("rules", {}).values()),
                        actions={**DEFAULT_LEVEL_ACTIONS, **agent_in.get("actions", {})})
    return Policy(name=name, on_error=merged.get("on_error", "block"), tasks=tasks, categories=categories,
                  category_default=category_default, pii=pii, secrets=secrets, custom_categories=custom,
                  description=merged.get("description", ""), source=merged,
                  cascade=dict(merged.get("cascade", {})), agent=agent)


def load_policy(spec: str | Path | Mapping[str, Any] | Policy) -> Policy:
    """A validated policy from a preset name, a YAML file path, a mapping in the file schema, or a Policy.

    Raises :class:`PolicyError` naming the file, line and field of the first mistake.
    """
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, Mapping):
        doc = _Doc(dict(spec), "<mapping>", {}, Path.cwd())
        return _build(_resolve(doc, ()), "<mapping>")
    if isinstance(spec, Path | str):
        text = str(spec)
        if not text.strip():
            raise PolicyError(f"a policy is a preset name ({', '.join(PRESETS)}) or a YAML file path")
        doc = _read(text, Path.cwd())
        name = text if text in PRESETS else Path(text).stem
        return _build(_resolve(doc, (text,)), name)
    raise PolicyError(f"a policy is a preset name, a file path or a mapping, got {type(spec).__name__}")
