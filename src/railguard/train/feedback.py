"""Moderator feedback from the audit store: audited items with their reviews, exported or used for training.

An audited item keeps its text only when the server runs with ``store_text`` on; items without text are
counted but cannot teach a head. The audit log keeps a prompt alone as its text, or a JSON object
``{"context", "prompt", "response"}`` when a response or context came with it (see ``audit/records.py``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ConfigError, require
from ..types import TASKS

RESPONSE_TASKS = ("response_harmful", "refusal")


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """One audited decision: what the guard saw and said, and every review of it (possibly none)."""

    audit_id: int
    time: float
    guard: str
    prompt: str | None  # None when the store kept no text
    response: str | None
    flagged: bool
    decisions: dict[str, bool]
    scores: dict[str, float]
    reviews: tuple[Any, ...]  # ReviewLabel, oldest first

    @property
    def reviewed(self) -> bool:
        return bool(self.reviews)

    def labels(self, task: str) -> list[bool]:
        """The moderators' labels for one task, one per review that marked it."""
        return [bool(r.labels[task]) for r in self.reviews if task in r.labels]

    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for r in self.reviews for c in r.categories))

    def to_dict(self) -> dict[str, Any]:
        return {"audit_id": self.audit_id, "time": _iso(self.time), "guard": self.guard, "prompt": self.prompt,
                "response": self.response, "flagged": self.flagged, "decisions": self.decisions,
                "scores": self.scores, "reviews": [r.to_dict() for r in self.reviews]}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="milliseconds")


def split_text(text: str | None) -> tuple[str | None, str | None]:
    """(prompt, response) from an audit row's text."""
    if text is None:
        return None, None
    if text.startswith('{"context": '):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict) and set(value) == {"context", "prompt", "response"}:
            return value["prompt"], value["response"]
    return text, None


def iter_items(store: Any, *, reviewed_only: bool = False) -> Iterator[FeedbackItem]:
    """Every audited item with its reviews (only the reviewed ones with ``reviewed_only``)."""
    reviews: dict[int, list[Any]] = defaultdict(list)
    for label in store.iter_labels():
        reviews[label.audit_id].append(label)
    for record in store.iter_records():
        mine = tuple(reviews.get(record.id, ()))
        if reviewed_only and not mine:
            continue
        prompt, response = split_text(record.text)
        yield FeedbackItem(
            audit_id=int(record.id), time=record.time, guard=record.guard, prompt=prompt, response=response,
            flagged=record.flagged, decisions={t: bool(v) for t, v in record.decisions.items() if v is not None},
            scores={t: float(v) for t, v in record.scores.items() if t in TASKS}, reviews=mine)


def export_jsonl(store: Any, path: str | Path, *, reviewed_only: bool = True) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for item in iter_items(store, reviewed_only=reviewed_only):
            out.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def export_parquet(store: Any, path: str | Path, *, reviewed_only: bool = True) -> int:
    pa = require("pyarrow", "server")
    pq = require("pyarrow.parquet", "server")
    flags = pa.map_(pa.string(), pa.bool_())
    review = pa.struct([("id", pa.int64()), ("time", pa.timestamp("ms", tz="UTC")), ("reviewer", pa.string()),
                        ("labels", flags), ("verdicts", flags), ("categories", pa.list_(pa.string()))])
    schema = pa.schema([("audit_id", pa.int64()), ("time", pa.timestamp("ms", tz="UTC")), ("guard", pa.string()),
                        ("prompt", pa.string()), ("response", pa.string()), ("flagged", pa.bool_()),
                        ("decisions", flags), ("scores", pa.map_(pa.string(), pa.float64())),
                        ("reviews", pa.list_(review))])

    def stamp(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)

    rows = [{"audit_id": it.audit_id, "time": stamp(it.time), "guard": it.guard, "prompt": it.prompt,
             "response": it.response, "flagged": it.flagged, "decisions": list(it.decisions.items()),
             "scores": list(it.scores.items()),
             "reviews": [{"id": r.id, "time": stamp(r.time), "reviewer": r.reviewer, "labels": list(r.labels.items()),
                          "verdicts": list(r.verdicts.items()), "categories": list(r.categories)} for r in it.reviews]}
            for it in iter_items(store, reviewed_only=reviewed_only)]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), str(path))
    return len(rows)


def export(store: Any, path: str | Path, *, reviewed_only: bool = True) -> int:
    """Write the feedback to ``path``: ``.jsonl`` or ``.parquet`` by its suffix; returns the number of items."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".json"):
        return export_jsonl(store, path, reviewed_only=reviewed_only)
    if suffix == ".parquet":
        return export_parquet(store, path, reviewed_only=reviewed_only)
    raise ConfigError(f"the feedback file must end in .jsonl or .parquet, got {Path(path).name!r}")
