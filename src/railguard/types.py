"""The values every guard speaks: GuardInput in, Verdict out. Frozen, validated, no I/O."""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .agent.actions import Action, Turn, to_action, to_trajectory
from .errors import InputError


class Task(str, enum.Enum):
    """The binary decisions a guard makes."""

    PROMPT_HARMFUL = "prompt_harmful"
    RESPONSE_HARMFUL = "response_harmful"
    REFUSAL = "refusal"
    JAILBREAK = "jailbreak"
    INJECTION = "injection"


TASKS: tuple[str, ...] = tuple(t.value for t in Task)
#: Tasks that only apply when the input carries a response.
RESPONSE_TASKS: frozenset[str] = frozenset({Task.RESPONSE_HARMFUL.value, Task.REFUSAL.value})
#: Tasks whose positive answer makes a verdict ``flagged`` (a refusal is information, not a violation).
FLAG_TASKS: tuple[str, ...] = ("prompt_harmful", "response_harmful", "jailbreak", "injection")


def _check_text(name: str, value: Any, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        kind = "None" if value is None else type(value).__name__
        raise InputError(f"GuardInput.{name} must be a string, got {kind}")


#: One image or audio clip: its bytes, or the path of a file holding them.
Media = bytes | str | os.PathLike


def _media(name: str, value: Any) -> tuple[bytes | str | os.PathLike, ...]:
    """A tuple of media items; bytes-like values are copied to ``bytes`` (the caller's buffer is not kept)."""
    if value is None:
        return ()
    if isinstance(value, bytes | bytearray | memoryview | str | os.PathLike):
        value = (value,)
    elif not isinstance(value, Sequence):
        raise InputError(f"GuardInput.{name} must be a list of bytes or file paths, got {type(value).__name__}")
    out: list[bytes | str | os.PathLike] = []
    for i, item in enumerate(value):
        if isinstance(item, bytearray | memoryview):
            item = bytes(item)
        if isinstance(item, str | os.PathLike) and not os.fspath(item):
            raise InputError(f"GuardInput.{name}[{i}] is an empty path")
        if isinstance(item, bytes) and not item:
            raise InputError(f"GuardInput.{name}[{i}] is empty (0 bytes)")
        if not isinstance(item, bytes | str | os.PathLike):
            raise InputError(f"GuardInput.{name}[{i}] must be bytes or a file path, got {type(item).__name__}")
        out.append(item)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class GuardInput:
    """One thing to check: a prompt, optionally the model's response and documents given as context.

    ``context`` holds text the model reads but the user did not write (a retrieved document, an email,
    a web page, a tool result); instructions hidden there are indirect prompt injections.

    ``action`` is an agent's proposed next step (an Action, an action dict, or an LLM API's tool call such as a
    chat ``tool_calls`` entry) and ``trajectory`` the turns so far (see :mod:`railguard.agent.actions`); with either,
    ``prompt`` may be left out (it defaults to "").
    ``images`` and ``audio`` (bytes or file paths) are read into text by :mod:`railguard.media`
    (OCR, speech-to-text) and checked by the same guard; the verdict's explanation says what was read where.
    """

    prompt: str = ""
    response: str | None = None
    context: tuple[str, ...] = ()
    id: str | None = None
    action: Action | None = None
    trajectory: tuple[Turn, ...] = ()
    images: tuple[Media, ...] = ()
    audio: tuple[Media, ...] = ()

    def __post_init__(self) -> None:
        _check_text("prompt", self.prompt, optional=False)
        if self.action is not None and not isinstance(self.action, Action):
            object.__setattr__(self, "action", to_action(self.action))
        object.__setattr__(self, "trajectory", to_trajectory(self.trajectory))
        _check_text("response", self.response, optional=True)
        context = self.context
        if context is None:
            context = ()
        elif isinstance(context, str):
            context = (context,)
        elif isinstance(context, Sequence):
            context = tuple(context)
        else:
            raise InputError(
                f"GuardInput.context must be a string or a list of strings, got {type(context).__name__}"
            )
        for doc in context:
            _check_text("context[]", doc, optional=False)
        object.__setattr__(self, "context", context)
        if self.id is not None and not isinstance(self.id, str):
            object.__setattr__(self, "id", str(self.id))
        object.__setattr__(self, "images", _media("images", self.images))
        object.__setattr__(self, "audio", _media("audio", self.audio))

    @property
    def has_media(self) -> bool:
        return bool(self.images or self.audio)


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


#: What a policy does when one of its rules fires, mildest first (see :mod:`railguard.policy`).
ACTIONS: tuple[str, ...] = ("allow", "flag", "redact", "block")


@dataclass(frozen=True, slots=True)
class Finding:
    """A piece of personal data or a secret found in one text of a GuardInput.

    ``start``/``end`` are character offsets into that text: ``field`` is ``prompt``, ``response`` or
    ``context[i]``. The matched value itself is never stored (verdicts end up in logs).
    """

    type: str
    start: int
    end: int
    score: float
    field: str = "prompt"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "start": self.start, "end": self.end, "score": _round(self.score),
                "field": self.field}


@dataclass(frozen=True, slots=True)
class TextSpan:
    """One OCR line or one speech segment of an :class:`Extraction`.

    ``start``/``end`` are character offsets into the extraction's ``text``; ``box`` is the OCR line's four
    corners as (x, y) pixels, ``seconds`` the segment's (start, end) in the audio; ``score`` the reader's
    confidence in 0..1.
    """

    text: str
    start: int
    end: int
    score: float | None = None
    box: tuple[tuple[int, int], ...] | None = None
    seconds: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "start": self.start, "end": self.end, "score": _round(self.score)}
        if self.box is not None:
            out["box"] = [list(p) for p in self.box]
        if self.seconds is not None:
            out["seconds"] = [round(self.seconds[0], 2), round(self.seconds[1], 2)]
        return out


@dataclass(frozen=True, slots=True)
class Extraction:
    """What one part of a GuardInput said (``source``: ``text``, ``image[i]`` or ``audio[j]``) and what the
    guard decided on that part alone. ``text`` is redacted when a policy redacts PII (``redacted``);
    ``kind`` is ``ocr``, ``speech`` or ``text`` (the typed prompt, whose text is not repeated here)."""

    source: str
    kind: str
    text: str = ""
    spans: tuple[TextSpan, ...] = ()
    flagged: bool = False
    categories: Mapping[str, float] = field(default_factory=dict)
    redacted: bool = False
    ms: float = 0.0  # time spent reading the image or audio

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "kind": self.kind, "flagged": self.flagged}
        if self.kind != "text":
            out |= {"text": self.text, "redacted": self.redacted, "spans": [s.to_dict() for s in self.spans],
                    "ms": round(float(self.ms), 1)}
        out["categories"] = {k: _round(v) for k, v in self.categories.items()}
        return out


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a policy took an action: which rule fired, on what score, against which threshold.

    ``source`` names the part of the input the rule fired on when the input had images or audio
    (``text``, ``image[0]``, ``audio[1]``); a ``source`` reason carries that part's ``extraction``.
    """

    rule: str  # "tasks.injection", "categories.sexual", "custom_categories.investment_advice", "pii", ...
    action: str
    score: float | None = None
    threshold: float | None = None
    detail: str = ""
    source: str | None = None
    extraction: Extraction | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "action": self.action, "score": _round(self.score),
                               "threshold": _round(self.threshold)}
        if self.detail:
            out["detail"] = self.detail
        if self.source is not None:
            out["source"] = self.source
        if self.extraction is not None:
            out["extraction"] = self.extraction.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class AgentVerdict:
    """What the agent guard judged of an input's action or trajectory: a :class:`Verdict`'s ``agent`` record
    (its fields appear at the top level of the verdict's JSON, as they always have)."""

    action_risk: str | None = None  # SAFE, LOW or HIGH
    action_risk_probs: Mapping[str, float] | None = None  # calibrated probability of each level
    trajectory_unsafe: bool | None = None
    trajectory_score: float | None = None  # calibrated probability that the trajectory is unsafe


@dataclass(frozen=True, slots=True)
class RouteStep:
    """One tier on a cascade input's way: the tier, and what happened there. ``hesitation``: how many views
    hesitated (None where not counted); ``escalated``: why the input went on from here; ``skipped``: why the tier
    was passed over (it cannot read the input's language); ``error``: the tier failed."""

    tier: str
    hesitation: int | None = None
    escalated: str | None = None
    skipped: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tier": self.tier}
        if self.hesitation is not None:
            out["hesitation"] = self.hesitation
        for key in ("escalated", "skipped", "error"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True, slots=True)
class Route:
    """Which tier of a cascade answered an input and why it went up: a :class:`Verdict`'s ``route`` record (see
    :mod:`railguard.guards.cascade`). ``tiers``: the cascade's tiers, cheapest first; ``language``: the language
    read (None when not detected); ``path``: the tiers the input met; ``fallback``/``failed_tier``: set when a
    heavier tier failed and the cascade fell back; ``reason``: the first reason the input went up."""

    tiers: tuple[str, ...] = ()
    language: str | None = None
    path: tuple[RouteStep, ...] = ()
    answered_by: str = ""
    escalated: bool = False
    reason: str | None = None
    fallback: str | None = None
    failed_tier: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tiers": list(self.tiers), "language": self.language,
                               "path": [step.to_dict() for step in self.path]}
        if self.fallback is not None:
            out["fallback"] = self.fallback
            out["failed_tier"] = self.failed_tier
        out.update(answered_by=self.answered_by, escalated=self.escalated, reason=self.reason)
        return out


@dataclass(frozen=True, slots=True)
class Verdict:
    """A guard's answer for one GuardInput.

    Task fields are True/False, or None when the task does not apply (no response given) or the guard
    could not decide (then ``error`` says why). ``scores`` holds calibrated probabilities per task and
    ``categories`` calibrated probabilities per category of :mod:`railguard.taxonomy`.
    """

    prompt_harmful: bool | None = None
    response_harmful: bool | None = None
    refusal: bool | None = None
    jailbreak: bool | None = None
    injection: bool | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    categories: Mapping[str, float] = field(default_factory=dict)
    tier: str = ""
    latency_ms: float = 0.0
    error: str | None = None
    id: str | None = None
    flagged: bool = False
    # Set by a policy or the rules guard only; absent from to_dict() while None.
    pii: tuple[Finding, ...] | None = None
    redacted_text: str | None = None
    redacted_response: str | None = None
    action: str | None = None
    explanation: tuple[Reason, ...] | None = None
    # Set by a cascade only: which tier answered and why the input went up; absent from to_dict() while None.
    route: Route | None = None
    # Set for inputs with an action / a trajectory only (the agent guard); absent from to_dict() while None.
    agent: AgentVerdict | None = None

    @classmethod
    def failed(cls, error: str, *, tier: str, id: str | None = None, flagged: bool = True) -> Verdict:
        """A verdict for an input the guard could not judge; fail-closed (flagged) unless told otherwise (under a
        policy, :func:`railguard.verdicts.failed` gives it the policy's ``on_error`` action)."""
        return cls(tier=tier, error=error, id=id, flagged=flagged)

    def to_dict(self) -> dict[str, Any]:
        """The verdict as one JSON-ready object (the schema of ``railguard check --json``)."""
        out: dict[str, Any] = {
            "flagged": self.flagged,
            "prompt_harmful": self.prompt_harmful,
            "response_harmful": self.response_harmful,
            "refusal": self.refusal,
            "jailbreak": self.jailbreak,
            "injection": self.injection,
            "scores": {k: _round(v) for k, v in self.scores.items()},
            "categories": {k: _round(v) for k, v in self.categories.items()},
            "tier": self.tier,
            "latency_ms": round(float(self.latency_ms), 3),
            "error": self.error,
        }
        if self.id is not None:
            out["id"] = self.id
        if self.action is not None:
            out["action"] = self.action
        if self.explanation is not None:
            out["explanation"] = [r.to_dict() for r in self.explanation]
        if self.pii is not None:
            out["pii"] = [f.to_dict() for f in self.pii]
        if self.redacted_text is not None:
            out["redacted_text"] = self.redacted_text
        if self.redacted_response is not None:
            out["redacted_response"] = self.redacted_response
        if self.route is not None:
            out["route"] = self.route.to_dict()
        if self.action_risk is not None:
            out["action_risk"] = self.action_risk
            out["action_risk_probs"] = {k: _round(v) for k, v in (self.action_risk_probs or {}).items()}
        if self.trajectory_unsafe is not None:
            out["trajectory_unsafe"] = self.trajectory_unsafe
            out["trajectory_score"] = _round(self.trajectory_score)
        return out

    @property
    def action_risk(self) -> str | None:
        return None if self.agent is None else self.agent.action_risk

    @property
    def action_risk_probs(self) -> Mapping[str, float] | None:
        return None if self.agent is None else self.agent.action_risk_probs

    @property
    def trajectory_unsafe(self) -> bool | None:
        return None if self.agent is None else self.agent.trajectory_unsafe

    @property
    def trajectory_score(self) -> float | None:
        return None if self.agent is None else self.agent.trajectory_score

    @property
    def action_high(self) -> bool | None:
        """Whether the action was judged HIGH risk (None without an action): the binary view the
        evaluation scores."""
        return None if self.action_risk is None else self.action_risk == "HIGH"


VERDICT_KEYS: tuple[str, ...] = (
    "flagged",
    "prompt_harmful",
    "response_harmful",
    "refusal",
    "jailbreak",
    "injection",
    "scores",
    "categories",
    "tier",
    "latency_ms",
    "error",
)


def decide(score: float | None, threshold: float) -> bool | None:
    """Turn a calibrated score into a decision; None stays None (task not applicable)."""
    if score is None or math.isnan(score):
        return None
    return bool(score >= threshold)
