"""Run guards over benchmarks and score them: ``evaluate(["embedded"], ["xstest"], data_dir)``.

One BenchResult per (guard, benchmark, task), plus one per sub-group a benchmark reports
(``harmbench:copyright``, ``multijail:zh``). A set with no benign rows gets recall only; a set with
no harmful rows gets the false-positive rate only. A verdict whose task field is None (the guard
could not decide, or the task did not apply) counts as not flagged and is counted in ``errors``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config import settings
from ..errors import ConfigError, RailguardError
from ..guard import Guard
from ..progress import progress_bar
from ..registry import resolve
from . import benchmarks as bm
from .metrics import confusion

log = logging.getLogger(__name__)

RECALL_ONLY = "recall only"
FPR_ONLY = "FPR only"
NO_ROWS = "no labelled rows"
DEFAULT_BATCH = 64


@dataclass(frozen=True, slots=True)
class BenchResult:
    """How one guard did on one benchmark task. Metrics that do not apply are None."""

    guard: str
    benchmark: str
    task: str
    n: int
    positives: int
    tp: int
    fp: int
    fn: int
    tn: int
    errors: int
    f1: float | None
    precision: float | None
    recall: float | None
    fpr: float | None

    @property
    def scope(self) -> str:
        """``recall only`` (no benign rows), ``FPR only`` (no harmful rows) or empty (both)."""
        if self.n == 0:
            return NO_ROWS
        if self.positives == self.n:
            return RECALL_ONLY
        if self.positives == 0:
            return FPR_ONLY
        return ""

    def to_dict(self) -> dict:
        return {**asdict(self), "scope": self.scope}


def score(guard: str, benchmark: str, task: str, labels: np.ndarray, flagged: np.ndarray,
          errors: int = 0) -> BenchResult:
    """A BenchResult from boolean label and prediction arrays."""
    c = confusion(labels, flagged)
    n, positives = int(labels.size), int(labels.sum())
    both = 0 < positives < n
    return BenchResult(
        guard=guard, benchmark=benchmark, task=task, n=n, positives=positives,
        tp=c.tp, fp=c.fp, fn=c.fn, tn=c.tn, errors=errors,
        f1=c.f1 if both else None,
        precision=c.precision if both else None,
        recall=c.recall if positives else None,
        fpr=c.fpr if positives < n else None,
    )


def _predict(guard: Guard, items: Sequence[bm.Item], task: str, batch_size: int,
             bar_label: str, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """(flagged, undecided) boolean arrays, one entry per item."""
    flagged = np.zeros(len(items), dtype=bool)
    undecided = np.zeros(len(items), dtype=bool)
    with progress_bar(bar_label, total=len(items), enabled=progress) as bar:
        for start in range(0, len(items), batch_size):
            batch = [it.input for it in items[start : start + batch_size]]
            verdicts = guard.check(batch)
            if len(verdicts) != len(batch):
                raise RailguardError(
                    f"guard '{getattr(guard, 'name', guard)}' returned {len(verdicts)} verdicts "
                    f"for {len(batch)} inputs"
                )
            for i, v in enumerate(verdicts, start):
                decision = getattr(v, task)
                flagged[i] = bool(decision)
                undecided[i] = decision is None or v.error is not None
            bar.advance(len(batch))
    return flagged, undecided


def _results(guard: str, sel: bm.Selection, items: Sequence[bm.Item], flagged: np.ndarray,
             undecided: np.ndarray) -> list[BenchResult]:
    labels = np.array([it.label for it in items], dtype=bool)
    task = sel.spec.task
    if sel.group is not None:
        return [score(guard, sel.group, task, labels, flagged, int(undecided.sum()))]
    out = [score(guard, sel.spec.name, task, labels, flagged, int(undecided.sum()))]
    groups = sorted({g for it in items for g in it.groups})
    for g in groups:
        mask = np.array([g in it.groups for it in items], dtype=bool)
        out.append(score(guard, g, task, labels[mask], flagged[mask], int(undecided[mask].sum())))
    return out


def _load_all(selections: list[bm.Selection], data_dir: Path, limit: int | None,
              wanted_all: bool) -> list[tuple[bm.Selection, list[bm.Item]]]:
    loaded = []
    for sel in selections:
        # With "all", a dataset the user does not have is skipped; one asked for by name is an error.
        if wanted_all and not bm.data_path(data_dir, sel.spec).is_file():
            log.warning("benchmark %s skipped: %s not found", sel.spec.name, bm.data_path(data_dir, sel.spec))
            continue
        loaded.append((sel, bm.load(sel.spec, data_dir, group=sel.group, limit=limit)))
    if not loaded:
        raise ConfigError(f"no benchmark data found in {data_dir}; {bm.DATA_HINT}")
    return loaded


def evaluate(guards: list[str], benches: list[str] | None, data_dir: Path | None, limit: int | None = None,
             progress: bool = True, *, batch_size: int = DEFAULT_BATCH) -> list[BenchResult]:
    """Run each guard over each benchmark (None or ``["all"]``: every one) and score it.

    ``limit`` takes the same first N rows of every benchmark after a seeded shuffle; progress bars go
    to stderr. Raises ConfigError for an unknown guard or benchmark or a missing data folder.
    """
    if not guards:
        raise ConfigError("name at least one guard to evaluate, such as 'embedded'")
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    data_dir = bm.check_data_dir(data_dir if data_dir is not None else settings().data_dir)
    selections = bm.select(benches)
    wanted_all = not benches or bm.ALL in benches
    loaded = _load_all(selections, data_dir, limit, wanted_all)
    results: list[BenchResult] = []
    for name in guards:
        guard = resolve(name)
        for sel, items in loaded:
            bench = sel.group or sel.spec.name
            flagged, undecided = _predict(guard, items, sel.spec.task, batch_size, f"{name} · {bench}", progress)
            if undecided.any():
                log.warning("guard %s left %d of %d %s items undecided", name, int(undecided.sum()),
                            len(items), bench)
            results.extend(_results(name, sel, items, flagged, undecided))
    return results


def _cell(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def markdown_table(results: Iterable[BenchResult]) -> str:
    """One Markdown table: guard, benchmark, task, n, F1, precision, recall, FPR (— where not applicable)."""
    lines = [
        "| guard | benchmark | task | n | F1 | precision | recall | FPR |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        notes = [r.scope] if r.scope else []
        if r.errors:
            notes.append(f"{r.errors} undecided")
        task = f"{r.task} ({'; '.join(notes)})" if notes else r.task
        cells = [r.guard, r.benchmark, task, str(r.n), _cell(r.f1), _cell(r.precision), _cell(r.recall),
                 _cell(r.fpr)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
