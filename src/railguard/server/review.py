"""Moderator review of audited decisions: the queue's order and turning a moderator's marks into a label.

The review page (``routes/review.py``) shows audited items one by one; for each task the guard decided,
the moderator says whether the decision was correct, and may pick the categories that apply. A review is
stored as a :class:`~railguard.audit.ReviewLabel` (the true label per task, what the guard had said,
the reviewer's key id and the time); ``railguard feedback export`` and ``railguard improve`` read them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Literal

from ..audit import AuditRecord, AuditStore, ReviewLabel
from ..errors import InputError
from ..taxonomy import CATEGORY_NAMES
from ..types import TASKS

Order = Literal["uncertainty", "flagged", "newest"]
ORDERS: tuple[str, ...] = ("uncertainty", "flagged", "newest")
#: How many of the latest unreviewed rows the queue is chosen from.
QUEUE_WINDOW = 5000


def decided_tasks(record: AuditRecord) -> list[str]:
    """The tasks the guard decided on for this item (in the canonical task order)."""
    return [t for t in TASKS if record.decisions.get(t) is not None]


def margin(record: AuditRecord) -> float:
    """Distance of the closest decided score from 0.5 (scores are calibrated): small means uncertain."""
    scores = [abs(float(record.scores[t]) - 0.5) for t in decided_tasks(record) if t in record.scores]
    return min(scores, default=0.5)


def order_queue(records: Iterable[AuditRecord], order: str) -> list[AuditRecord]:
    """``uncertainty``: closest to a decision boundary first; ``flagged``: flagged first, then the most
    uncertain; ``newest``: latest first. Rows a guard failed on go last (there is no verdict to judge)."""
    if order not in ORDERS:
        raise InputError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    rows = list(records)
    if order == "uncertainty":
        rows.sort(key=lambda r: (r.error is not None, margin(r), -(r.id or 0)))
    elif order == "flagged":
        rows.sort(key=lambda r: (r.error is not None, not r.flagged, margin(r), -(r.id or 0)))
    else:
        rows.sort(key=lambda r: (r.error is not None, -(r.id or 0)))
    return rows


def queue(store: AuditStore, order: str = "uncertainty", limit: int = 50,
          window: int = QUEUE_WINDOW) -> list[AuditRecord]:
    """The next items to review: unreviewed rows among the latest ``window``, in ``order``."""
    return order_queue(store.unreviewed(window), order)[:limit]


def make_label(record: AuditRecord, correct: Mapping[str, bool], *, categories: Iterable[str] = (),
               reviewer: str | None, now: float | None = None) -> ReviewLabel:
    """A review from the moderator's marks: ``correct[task]`` says whether the guard's decision was right."""
    if record.id is None:
        raise InputError("the audit row has no id")
    decided = decided_tasks(record)
    if not correct:
        raise InputError(f"mark at least one task correct or incorrect; this item has {', '.join(decided) or 'none'}")
    unknown = [t for t in correct if t not in decided]
    if unknown:
        raise InputError(f"the guard made no decision on {', '.join(map(str, unknown))} for this item; "
                         f"it decided {', '.join(decided) or 'nothing'}")
    cats = tuple(dict.fromkeys(categories))
    bad = [c for c in cats if c not in CATEGORY_NAMES]
    if bad:
        raise InputError(f"unknown categories {bad}; known: {', '.join(CATEGORY_NAMES)}")
    verdicts = {t: bool(record.decisions[t]) for t in correct}
    labels = {t: verdicts[t] if bool(ok) else not verdicts[t] for t, ok in correct.items()}
    return ReviewLabel(audit_id=record.id, time=time.time() if now is None else now, reviewer=reviewer,
                       labels=labels, verdicts=verdicts, categories=cats)


def item_view(record: AuditRecord, reviews: int = 0) -> dict:
    """What the page shows of one audit row (the raw text only when the store keeps it)."""
    return {
        "id": record.id, "time": record.to_dict()["time"], "guard": record.guard, "endpoint": record.endpoint,
        "direction": record.direction, "flagged": record.flagged, "error": record.error,
        "text": record.text, "text_stored": record.text is not None, "input_chars": record.input_chars,
        "text_sha256": record.text_sha256[:16], "decisions": {t: record.decisions[t] for t in decided_tasks(record)},
        "scores": {t: record.scores.get(t) for t in decided_tasks(record)},
        "categories": dict(sorted(record.categories.items(), key=lambda kv: -kv[1])),
        "margin": round(margin(record), 4), "reviews": reviews,
    }
