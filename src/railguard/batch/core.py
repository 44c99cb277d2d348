"""Rows through a guard a batch at a time, each row isolated: the core that the local engine
(:mod:`railguard.batch.local`) and the Ray engine (:mod:`railguard.batch.ray`) share.

A row that cannot be judged (malformed, or the guard failed on it) becomes a failed, fail-closed verdict that
keeps the row's id, so there is always exactly one verdict per row, in order.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence

from ..guard import Guard
from ..types import GuardInput, Verdict
from ..verdicts import check_count
from .sources import Row

log = logging.getLogger(__name__)


def judged_batches(rows: Iterable[Row], guard: Guard, batch_size: int) -> Iterator[list[tuple[str, Verdict]]]:
    """``(row_id, verdict)`` for every row, a batch at a time, in order."""
    for batch in _batches(rows, batch_size):
        yield list(zip((row_id for row_id, _ in batch), _judge(guard, batch)))


def _batches(rows: Iterable[Row], size: int) -> Iterable[list[Row]]:
    it = iter(rows)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _judge(guard: Guard, batch: Sequence[Row]) -> list[Verdict]:
    """One verdict per row, in order: malformed rows and rows the guard fails on become failed verdicts."""
    tier = guard.name or ""
    inputs = [item for _, item in batch if isinstance(item, GuardInput)]
    judged = iter(_check_isolated(guard, inputs, tier))
    return [next(judged) if isinstance(item, GuardInput) else Verdict.failed(item, tier=tier, id=row_id)
            for row_id, item in batch]


def _check_isolated(guard: Guard, inputs: list[GuardInput], tier: str) -> list[Verdict]:
    """``guard.check(inputs)``; when the batch fails, each input alone, so one bad row fails only itself."""
    if not inputs:
        return []
    try:
        verdicts = _check(guard, inputs)
    except Exception as exc:  # noqa: BLE001 - any backend failure is recorded per row below, fail-closed
        if len(inputs) == 1:
            log.warning("guard %s failed on one row: %s", tier, type(exc).__name__)
            return [Verdict.failed(f"guard failed: {type(exc).__name__}: {exc}", tier=tier, id=inputs[0].id)]
        return [v for x in inputs for v in _check_isolated(guard, [x], tier)]
    return verdicts


def _check(guard: Guard, inputs: list[GuardInput]) -> list[Verdict]:
    return check_count(guard, inputs, guard.check(inputs))


# The Python API
