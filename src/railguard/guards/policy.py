"""A guard under a policy: any Guard's verdicts, re-decided by the policy's thresholds and actions, with
PII/secrets findings from the ``rules`` guard and custom-category scores merged into one verdict.

``load_guard(name, policy=...)``, ``railguard check --policy ...`` and the server all build this wrapper
(through :func:`railguard.load.under_policy`, which builds the layers it holds), so every backend gets the same
policy semantics (see :mod:`railguard.policy`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InputError
from ..guard import thresholds_of
from ..policy import Policy, load_policy
from ..types import TASKS, Finding, GuardInput, Reason, Verdict
from ..verdicts import blocks, by_severity, check_count, check_inputs, failed, strongest

if TYPE_CHECKING:
    from ..custom_categories import CustomCategoryScorer

log = logging.getLogger(__name__)


class PolicyGuard:
    """Wraps ``inner``; ``verdict.action`` is the strongest action of the rules that fired,
    ``verdict.flagged`` is true exactly when that action is ``block`` (or the guard failed and the
    policy's ``on_error`` is ``block``).

    It builds nothing and asks nothing of ``inner``: the layers a policy needs are handed in, ``rules`` (the
    PII/secrets scanner; ``inner`` itself when it is the scanner) and ``custom`` (the custom-category scorer).
    :func:`railguard.load.under_policy` builds them; a policy that needs a layer it was not given is a
    ConfigError, never a silent gap.

    Capabilities (:mod:`railguard.guard`): it passes through the inner guard's thresholds (HasThresholds; {}
    for a guard without), and declares its own policy (HasPolicy), the guard it wraps (Wraps) and its scanner
    thread (Closeable); nothing else of the inner guard."""

    def __init__(self, inner: Any, policy: Policy | str | dict, *, rules: Any = None,
                 custom: CustomCategoryScorer | None = None) -> None:
        self.inner = inner
        self.policy = load_policy(policy)
        self.name = f"{inner.name}+policy:{self.policy.name}"
        self.thresholds: dict[str, float] = thresholds_of(inner)
        build = "build the guard with railguard.load.under_policy(guard, policy)"
        if rules is None and self.policy.needs_rules:
            raise ConfigError(f"policy {self.policy.name} scans for PII or secrets but no scanner was given "
                              f"(rules=RulesGuard.from_policy(policy)); {build}")
        if custom is None and self.policy.custom_categories:
            raise ConfigError(f"policy {self.policy.name} has custom categories but no scorer was given "
                              f"(custom=CustomCategoryScorer(...)); {build}")
        self.rules = rules
        self.custom = custom
        self._pool: ThreadPoolExecutor | None = None

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        start = time.perf_counter()
        inputs = check_inputs(inputs)
        if not inputs:
            return []
        scans_future = None
        if self.rules is not None and self.rules is not self.inner:
            # The scanner runs beside the model: onnxruntime releases the GIL while it computes.
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="railguard-rules")
            scans_future = self._pool.submit(self.rules.scan, inputs)
        try:
            verdicts = check_count(self.inner, inputs, self.inner.check(inputs))
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - any backend failure becomes the policy's on_error decision
            log.warning("guard %s failed on a batch of %d: %s", self.name, len(inputs), type(exc).__name__)
            tier = self.inner.name
            verdicts = [failed(f"guard failed: {type(exc).__name__}: {exc}", tier=tier, id=x.id) for x in inputs]
        scans: list[Any] = [None] * len(inputs)
        errors: list[str | None] = [None] * len(inputs)
        try:
            if scans_future is not None:
                scans = scans_future.result()
            elif self.rules is not None:
                scans = self.rules.scan(inputs)
        except Exception as exc:  # noqa: BLE001 - a failed scan must not let PII through silently
            log.warning("PII/secrets scan failed on a batch of %d: %s", len(inputs), type(exc).__name__)
            errors = [f"PII/secrets scan failed: {type(exc).__name__}: {exc}"] * len(inputs)
        custom: list[dict[str, float]] = [{} for _ in inputs]
        if self.custom is not None:
            try:
                custom = self.custom.score(inputs)
            except Exception as exc:  # noqa: BLE001 - same: the policy's on_error decides
                log.warning("custom categories failed on a batch of %d: %s", len(inputs), type(exc).__name__)
                errors = [e or f"custom categories failed: {type(exc).__name__}: {exc}" for e in errors]
        salt = self.rules.new_salt() if self.rules is not None else b""
        share = (time.perf_counter() - start) * 1000.0 / len(inputs)
        return [self._apply(x, v, s, c, e, salt, share)
                for x, v, s, c, e in zip(inputs, verdicts, scans, custom, errors)]

    def _apply(self, x: GuardInput, v: Verdict, scan: Any, custom: dict[str, float], error: str | None,
               salt: bytes, latency_ms: float) -> Verdict:
        policy = self.policy
        reasons: list[Reason] = []
        decisions: dict[str, bool | None] = {}
        scores = dict(v.scores)
        for task in TASKS:
            rule = policy.tasks[task]
            score = v.scores.get(task)
            if not rule.enabled:
                decisions[task] = None
                scores.pop(task, None)
                continue
            if rule.threshold is not None and score is not None:
                decision: bool | None = score >= rule.threshold
                threshold = rule.threshold
            else:
                decision, threshold = getattr(v, task), self.thresholds.get(task)
            decisions[task] = decision
            if decision:
                reasons.append(Reason(f"tasks.{task}", rule.action, score, threshold))
        categories: dict[str, float] = {}
        for name, score in v.categories.items():
            rule = policy.category_rule(name)
            if not rule.enabled:
                continue
            categories[name] = score
            if rule.threshold is not None and score >= rule.threshold:
                reasons.append(Reason(f"categories.{name}", rule.action, score, rule.threshold))
        for c in policy.custom_categories:
            if c.name in custom:
                categories[c.name] = custom[c.name]
                if custom[c.name] >= c.threshold:
                    reasons.append(Reason(f"custom_categories.{c.name}", c.action, custom[c.name], c.threshold))
        agent_fields: dict[str, Any] = {}
        if v.action_risk is not None or v.trajectory_unsafe is not None:
            from ..agent.guard import policy_agent_reasons

            agent_fields, agent_reasons = policy_agent_reasons(x, v, policy.agent)
            reasons += agent_reasons
        findings: tuple[Finding, ...] | None = None
        redacted_text = redacted_response = None
        if scan is not None:
            findings = scan.findings
            for section, found, rule in (("pii", scan.pii, policy.pii), ("secrets", scan.secrets, policy.secrets)):
                if rule.enabled and found:
                    kinds = sorted({f.type for f in found})
                    reasons.append(Reason(section, rule.action, max(f.score for f in found),
                                          policy.pii.threshold if section == "pii" else None,
                                          detail=", ".join(kinds)))
            if any(r.enabled and r.action == "redact" for r in (policy.pii, policy.secrets)):
                # Everything found is masked, secrets included, so the redacted text is safe to log.
                redacted_text, redacted_response = self.rules.redacted(x, findings, salt)
        error = v.error or error
        if error is not None:
            reasons.append(Reason("on_error", policy.on_error, detail=error))
        action = strongest(r.action for r in reasons)
        return Verdict(
            **decisions,
            scores=scores,
            categories=categories,
            tier=v.tier or self.inner.name,
            latency_ms=latency_ms,
            error=error,
            id=x.id,
            flagged=blocks(action),  # under a policy, flagged means blocked
            pii=findings,
            redacted_text=redacted_text,
            redacted_response=redacted_response,
            action=action,
            explanation=tuple(by_severity(reasons)),
            route=v.route,
            **agent_fields,
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
