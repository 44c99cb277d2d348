"""Moderating a whole file: rows in (JSONL, CSV, Parquet), one verdict JSON per row out, in order.

Rows stream through ``guard.check`` in batches, so memory stays constant however large the file. A row
that cannot be judged (malformed, or the guard failed on it) becomes a failed, fail-closed verdict that
keeps the row's id: the output always has exactly one line per input row, in the input's order.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import ConfigError
from .guard import Guard
from .io import Fields, Row, count_rows, iter_inputs
from .progress import progress_bar
from .registry import resolve
from .types import GuardInput, Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModerateSummary:
    """What a :func:`moderate_file` run did. ``flagged`` counts every flagged row, failed rows included."""

    rows: int
    flagged: int
    errors: int
    seconds: float
    out_path: Path

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def moderate_file(in_path: str | Path, out_path: str | Path, guard: Guard | str, *, batch_size: int = 64,
                  text_field: str = "prompt", response_field: str = "response", id_field: str = "id",
                  context_field: str = "context", progress: bool = True) -> ModerateSummary:
    """Check every row of ``in_path`` with ``guard`` (a Guard or a registry name); write JSONL to ``out_path``.

    Each output line is ``Verdict.to_dict()`` plus the row's ``id`` (its 0-based row number when the row
    has none). ``out_path`` ending in ``.gz`` is written gzip-compressed.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    if out_path.exists() and in_path.exists() and out_path.resolve() == in_path.resolve():
        raise ConfigError(f"the output {out_path} would overwrite the input; choose another output path")
    if not out_path.parent.is_dir():
        raise ConfigError(f"output folder {out_path.parent} does not exist")
    fields = Fields(text=text_field, response=response_field, id=id_field, context=context_field)
    rows = iter_inputs(in_path, fields)
    # Take the first row before loading the guard or touching the output, so a file we cannot read
    # fails fast and leaves no empty output behind.
    first = list(itertools.islice(rows, 1))
    rows = itertools.chain(first, rows)
    if isinstance(guard, str):
        guard = resolve(guard)
    total = count_rows(in_path) if progress else None

    start = time.perf_counter()
    n = flagged = errors = 0
    with _open_out(out_path) as out, progress_bar(f"moderating {in_path.name}", total, enabled=progress) as bar:
        for batch in _batches(rows, batch_size):
            for row_id, verdict in zip((row_id for row_id, _ in batch), _judge(guard, batch)):
                out.write(json.dumps({**verdict.to_dict(), "id": row_id}) + "\n")
                n += 1
                flagged += verdict.flagged
                errors += verdict.error is not None
            out.flush()
            bar.advance(len(batch))
    return ModerateSummary(rows=n, flagged=flagged, errors=errors,
                           seconds=time.perf_counter() - start, out_path=out_path)


def _open_out(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8")
    return open(path, "w", encoding="utf-8")


def _batches(rows: Iterable[Row], size: int) -> Iterable[list[Row]]:
    it = iter(rows)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _judge(guard: Guard, batch: Sequence[Row]) -> list[Verdict]:
    """One verdict per row, in order: malformed rows and rows the guard fails on become failed verdicts."""
    tier = getattr(guard, "name", "") or ""
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
    verdicts = guard.check(inputs)
    if len(verdicts) != len(inputs):
        raise ConfigError(f"guard {getattr(guard, 'name', guard)!r} returned {len(verdicts)} verdicts "
                          f"for {len(inputs)} inputs")
    return verdicts
