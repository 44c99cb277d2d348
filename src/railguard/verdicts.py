"""The one place verdicts are validated, combined and failed, and where ``flagged`` and the strongest action are
derived. Guards and wrappers build their verdicts with these rules instead of each keeping its own.

- A batch: ``check`` takes GuardInput items (:func:`check_inputs`) and a guard answers one verdict per input, in
  order (:func:`check_count`; else :class:`railguard.errors.GuardContractError`).
- ``flagged``: without a policy, some task of :data:`railguard.types.FLAG_TASKS` is decided True, or the guard
  could not decide (fail-closed); under a policy, the strongest action is ``block`` (:func:`blocks`).
- Combining the verdicts of the parts of one input (the queries of a generative guard, the text and the images
  of the media wrapper, the text and the agent heads of the embedded guard): :func:`combine`, one rule for all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .agent.actions import RISK_LEVELS
from .errors import GuardContractError, InputError
from .types import ACTIONS, FLAG_TASKS, TASKS, AgentVerdict, GuardInput, Reason, Route, Verdict

if TYPE_CHECKING:
    from .guard import Guard

#: How severe each action is, mildest first (``allow`` < ``flag`` < ``redact`` < ``block``).
SEVERITY: dict[str, int] = {a: i for i, a in enumerate(ACTIONS)}


def check_inputs(inputs: Iterable[Any]) -> list[GuardInput]:
    """The inputs of a ``check`` call as a list; InputError for anything that is not a GuardInput."""
    items = list(inputs)
    for x in items:
        if not isinstance(x, GuardInput):
            raise InputError(f"check() takes GuardInput items, got {type(x).__name__}")
    return items


def check_count(guard: Guard, inputs: Sequence[Any], verdicts: Sequence[Verdict]) -> list[Verdict]:
    """``verdicts`` as a list when ``guard`` answered one per input; GuardContractError otherwise."""
    if len(verdicts) != len(inputs):
        raise GuardContractError(f"guard '{guard.name}' returned {len(verdicts)} verdicts for {len(inputs)} inputs")
    return list(verdicts)


def strongest(actions: Iterable[str]) -> str:
    """The most severe of some actions (``allow`` when there are none)."""
    return max(actions, key=lambda a: SEVERITY.get(a, 0), default="allow")


def by_severity(reasons: Iterable[Reason]) -> list[Reason]:
    """Reasons most severe action first (in their order within one action)."""
    return sorted(reasons, key=lambda r: -SEVERITY.get(r.action, 0))


def blocks(action: str | None) -> bool:
    """Whether a policy's action stops the input (``block``; ``flag`` and ``redact`` let it through)."""
    return action == "block"


def flagged_by(decisions: Mapping[str, bool | None]) -> bool:
    """A guard's own ``flagged`` (no policy): some violation task is decided True."""
    return any(decisions.get(t) for t in FLAG_TASKS)


def failed(error: str, *, tier: str, id: str | None = None, on_error: str | None = None,
           latency_ms: float = 0.0) -> Verdict:
    """A verdict for an input the guard could not judge. Without a policy (``on_error`` None) it fails closed:
    flagged, no action; under a policy it takes the policy's ``on_error`` action, with that reason."""
    if on_error is None:
        return Verdict.failed(error, tier=tier, id=id)
    return Verdict(tier=tier, error=error, id=id, flagged=blocks(on_error), action=on_error,
                   explanation=(Reason("on_error", on_error, detail=error),), latency_ms=latency_ms)


def any_decision(values: Iterable[bool | None]) -> bool | None:
    """One decision from several: True if any is True, else False if any decided, else None (undecided)."""
    values = list(values)
    return True if any(values) else (False if any(v is False for v in values) else None)


def _highest(values: Iterable[Mapping[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for mapping in values:
        for key, value in mapping.items():
            out[key] = max(value, out.get(key, value))
    return out


def _agent_fields(parts: Sequence[Verdict]) -> dict[str, Any]:
    """The riskiest action judgement and the least safe trajectory judgement of the parts."""
    fields: dict[str, Any] = {}
    judged = [v for v in parts if v.action_risk is not None]
    if judged:
        top = max(judged, key=lambda v: RISK_LEVELS.index(v.action_risk) if v.action_risk in RISK_LEVELS else -1)
        fields |= {"action_risk": top.action_risk, "action_risk_probs": top.action_risk_probs}
    trajectories = [v for v in parts if v.trajectory_unsafe is not None]
    if trajectories:
        scores = [v.trajectory_score for v in trajectories if v.trajectory_score is not None]
        fields |= {"trajectory_unsafe": any_decision(v.trajectory_unsafe for v in trajectories),
                   "trajectory_score": max(scores) if scores else None}
    return {"agent": AgentVerdict(**fields)} if fields else {}


def combine(parts: Sequence[Verdict], *, tier: str, id: str | None, latency_ms: float, **fields: Any) -> Verdict:
    """One verdict for one input from the verdicts on its parts, the strongest answer of any part:

    each task decided by :func:`any_decision`; each score and category the highest; the errors joined; flagged
    if any part is; the strongest action (None when no part has one); the reasons of all parts in order; the
    first part's route, PII findings and redacted texts that has them; the riskiest action and least safe
    trajectory judgements. ``fields`` replace any of these (a caller that words errors or reasons its own way).
    """
    actions = [v.action for v in parts if v.action is not None]
    reasons = [v.explanation for v in parts if v.explanation is not None]
    errors = [v.error for v in parts if v.error]

    def first(name: str) -> Any:
        return next((getattr(v, name) for v in parts if getattr(v, name) is not None), None)

    combined: dict[str, Any] = {
        **{task: any_decision(getattr(v, task) for v in parts) for task in TASKS},
        "scores": _highest(v.scores for v in parts),
        "categories": _highest(v.categories for v in parts),
        "error": "; ".join(dict.fromkeys(errors)) or None,
        "flagged": any(v.flagged for v in parts),
        "action": strongest(actions) if actions else None,
        "explanation": tuple(r for group in reasons for r in group) if reasons else None,
        "pii": first("pii"), "redacted_text": first("redacted_text"), "redacted_response": first("redacted_response"),
        "route": first("route"),
        **_agent_fields(parts),
    }
    return Verdict(**{**combined, **fields}, tier=tier, id=id, latency_ms=latency_ms)


def routed(verdict: Verdict, route: Route, latency_ms: float) -> Verdict:
    """A tier's verdict as a cascade's answer: with the cascade's ``route`` and the time the input spent in the
    cascade (the tier's own time where the cascade measured none)."""
    return dataclasses.replace(verdict, route=route, latency_ms=latency_ms or verdict.latency_ms)
