"""The values a policy file turns into: rules, scanners, custom categories and the merged Policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..agent.rules import DEFAULT_LEVEL_ACTIONS, AgentPolicy
from ..errors import ConfigError
from ..types import TASKS

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


def build_policy(merged: Mapping[str, Any], name: str) -> Policy:
    """The Policy value of a validated, merged document (:mod:`.schema`); what no file set, the defaults."""
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
