"""What the audit log keeps: one :class:`AuditRecord` per decision, one :class:`ReviewLabel` per moderator's review.

A record holds when, which request and item, which API key (its short id, never the key), which guard, the
verdict and its scores, the latencies, the input's length and a salted SHA-256 of its text; the raw text only
when the operator turns ``store_text`` on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..types import GuardInput, Verdict


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One decision as the audit log keeps it."""

    time: float  # seconds since the epoch
    request_id: str
    item: int  # the input's position in its request
    endpoint: str  # "moderations" or "guard"
    key_id: str | None  # short hash of the API key; None when the server runs without keys
    guard: str
    tier: str
    flagged: bool
    error: str | None
    decisions: Mapping[str, bool | None] = field(default_factory=dict)
    scores: Mapping[str, float] = field(default_factory=dict)
    categories: Mapping[str, float] = field(default_factory=dict)
    guard_ms: float = 0.0  # the guard's own time for this input
    latency_ms: float = 0.0  # request received -> verdict ready, as the server saw it
    input_chars: int = 0
    text_sha256: str = ""
    text: str | None = None
    direction: str | None = None  # "input" or "output" for the proxy's rails; None for the moderation endpoints
    upstream_called: bool | None = None  # proxy only: whether the request reached the upstream LLM
    stream_output: str | None = None  # proxy streams only: "live", "window" or "buffer"
    id: int | None = None  # the store's row number, once written

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``time`` as an ISO 8601 UTC string."""
        out = asdict(self)
        out["time"] = iso_time(self.time)
        out["decisions"], out["scores"], out["categories"] = (
            dict(self.decisions), dict(self.scores), dict(self.categories))
        return out


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="milliseconds")


def audit_text(item: GuardInput) -> str:
    """The text an input's hash covers: the prompt alone, or a JSON object when a response or context is there."""
    if item.response is None and not item.context and item.action is None and not item.trajectory:
        return item.prompt
    data = {"prompt": item.prompt, "response": item.response, "context": list(item.context)}
    if item.action is not None or item.trajectory:  # agents: the action and the turns are part of the input
        data["action"] = item.action.to_dict() if item.action is not None else None
        data["trajectory"] = [{k: getattr(t, k) for k in t.__slots__} for t in item.trajectory]
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def input_chars(item: GuardInput) -> int:
    return len(item.prompt) + len(item.response or "") + sum(len(doc) for doc in item.context)


def text_digest(salt: bytes, text: str) -> str:
    """Salted SHA-256 of a text (hex); equal texts give equal digests under one salt."""
    return hashlib.sha256(salt + text.encode("utf-8", "surrogatepass")).hexdigest()


def make_record(*, item: GuardInput, verdict: Verdict, index: int, request_id: str, endpoint: str,
                key_id: str | None, guard: str, salt: bytes, received: float, latency_ms: float,
                store_text: bool, direction: str | None = None, upstream_called: bool | None = None,
                stream_output: str | None = None) -> AuditRecord:
    text = audit_text(item)
    return AuditRecord(
        time=received, request_id=request_id, item=index, endpoint=endpoint, key_id=key_id, guard=guard,
        tier=verdict.tier, flagged=verdict.flagged, error=verdict.error,
        decisions={t: getattr(verdict, t) for t in ("prompt_harmful", "response_harmful", "refusal",
                                                    "jailbreak", "injection")},
        scores={k: float(v) for k, v in verdict.scores.items()},
        categories={k: float(v) for k, v in verdict.categories.items()},
        guard_ms=float(verdict.latency_ms), latency_ms=latency_ms, input_chars=input_chars(item),
        text_sha256=text_digest(salt, text), text=text if store_text else None,
        direction=direction, upstream_called=upstream_called, stream_output=stream_output,
    )


@dataclass(frozen=True, slots=True)
class ReviewLabel:
    """A moderator's review of one audited decision: per task, the label the moderator says is right."""

    audit_id: int  # the audit row reviewed
    time: float  # seconds since the epoch
    reviewer: str | None  # the reviewer's key id; None on a server without keys
    labels: Mapping[str, bool]  # task -> the true label, as the moderator sees it
    verdicts: Mapping[str, bool]  # task -> what the guard had decided (labels differ where it was wrong)
    categories: tuple[str, ...] = ()  # categories the moderator picked (empty: none picked)
    id: int | None = None

    def correct(self, task: str) -> bool | None:
        if task not in self.labels or task not in self.verdicts:
            return None
        return bool(self.labels[task]) == bool(self.verdicts[task])

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "audit_id": self.audit_id, "time": iso_time(self.time), "reviewer": self.reviewer,
                "labels": dict(self.labels), "verdicts": dict(self.verdicts), "categories": list(self.categories),
                "correct": {t: self.correct(t) for t in self.labels}}
