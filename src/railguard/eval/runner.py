"""Run guards over benchmarks and score them: ``evaluate(["embedded"], ["xstest"], data_dir)``.

One BenchResult per (guard, benchmark, task), plus one per sub-group a benchmark reports
(``harmbench:copyright``, ``multijail:zh``). A set with no benign rows gets recall only; a set with
no harmful rows gets the false-positive rate only. A verdict whose task field is None (the guard
could not decide) counts as not flagged, with a score of 0, and is counted in ``errors``; a task the
guard does not judge at all (its ``tasks`` attribute leaves it out, or every verdict leaves it None)
is listed in ``EvalRun.skipped`` instead of being scored as all-negative.

:func:`run` also times every guard in the same pass (single-item latency on the first items of each
benchmark, throughput of the batched pass) and keeps the curves the report plots;
:func:`evaluate` is the quick form that returns the scores only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..errors import ConfigError
from ..guard import Describes, Guard, HasManifest, JudgesTasks, unwrap
from ..guards.cascade import CascadeGuard
from ..load import resolve
from ..models.artifacts import sha256_file
from ..progress import Advance, progress_bar
from ..verdicts import check_count
from . import benchmarks as bm
from . import cascade as cascade_cost
from . import metrics as mx

log = logging.getLogger(__name__)

RECALL_ONLY = "recall only"
FPR_ONLY = "FPR only"
NO_ROWS = "no labelled rows"
DEFAULT_BATCH = 64
#: Single-item calls per (guard, benchmark) for the latency percentiles.
LATENCY_SAMPLES = 50
#: Points kept of each precision-recall curve in results.json (enough to draw it).
CURVE_POINTS = 200


@dataclass(frozen=True, slots=True)
class BenchResult:
    """How one guard did on one benchmark task. Metrics that do not apply are None.

    ``auprc``, ``ece`` and ``brier`` come from the verdicts' calibrated ``scores`` and are None when
    the guard gives no score for the task or the set lacks one of the classes; the ``*_ci`` fields
    are bootstrap 95% intervals (1,000 resamples, fixed seed).
    """

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
    auprc: float | None = None
    ece: float | None = None
    brier: float | None = None
    f1_ci: tuple[float, float] | None = None
    recall_ci: tuple[float, float] | None = None
    fpr_ci: tuple[float, float] | None = None

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
        data = asdict(self)
        for key in ("f1_ci", "recall_ci", "fpr_ci"):
            if data[key] is not None:
                data[key] = list(data[key])
        return {**data, "scope": self.scope}

    @classmethod
    def from_dict(cls, data: dict) -> BenchResult:
        names = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in data.items() if k in names}
        for key in ("f1_ci", "recall_ci", "fpr_ci"):
            if kw.get(key) is not None:
                kw[key] = tuple(kw[key])
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class Latency:
    """Timing of one guard on one benchmark: single-item calls and the batched pass."""

    guard: str
    benchmark: str
    single_ms: tuple[float, ...]
    batch_items: int
    batch_seconds: float
    batch_size: int

    @property
    def p50_ms(self) -> float | None:
        return float(np.percentile(self.single_ms, 50)) if self.single_ms else None

    @property
    def p95_ms(self) -> float | None:
        return float(np.percentile(self.single_ms, 95)) if self.single_ms else None

    @property
    def throughput(self) -> float | None:
        """Items per second in the batched pass."""
        return self.batch_items / self.batch_seconds if self.batch_seconds > 0 else None

    def to_dict(self) -> dict:
        return {"guard": self.guard, "benchmark": self.benchmark, "single_n": len(self.single_ms),
                "p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "throughput_per_s": self.throughput,
                "batch_items": self.batch_items, "batch_seconds": self.batch_seconds,
                "batch_size": self.batch_size, "single_ms": [round(x, 3) for x in self.single_ms]}


@dataclass(frozen=True, slots=True)
class Curves:
    """What the report plots for one (guard, benchmark, task): a thinned PR curve and reliability bins."""

    guard: str
    benchmark: str
    task: str
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    bin_count: tuple[int, ...]
    bin_mean_score: tuple[float | None, ...]
    bin_positive_rate: tuple[float | None, ...]
    positive_rate: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class EvalRun:
    """Everything one evaluation produced; ``to_dict()`` is the schema of results.json."""

    results: list[BenchResult]
    latency: list[Latency] = field(default_factory=list)
    curves: list[Curves] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    benchmarks: list[dict] = field(default_factory=list)
    guards: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    details: list[dict] = field(default_factory=list)  # benchmark-specific metrics (agents: SAFE/LOW/HIGH)
    #: Cascades only: the cost report per benchmark and its summary per cascade (see eval/cascade.py).
    cascade: list[dict] = field(default_factory=list)
    cascade_summary: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            **({"details": list(self.details)} if self.details else {}),
            **({"cascade": list(self.cascade), "cascade_summary": list(self.cascade_summary)} if self.cascade else {}),
            "results": [r.to_dict() for r in self.results],
            "latency": [t.to_dict() for t in self.latency],
            "curves": [c.to_dict() for c in self.curves],
            "skipped": list(self.skipped),
            "benchmarks": list(self.benchmarks),
            "guards": list(self.guards),
            "settings": dict(self.settings),
        }


def _interval(iv: mx.Interval) -> tuple[float, float]:
    return (iv.low, iv.high)


def score(guard: str, benchmark: str, task: str, labels: np.ndarray, flagged: np.ndarray,
          errors: int = 0, scores: np.ndarray | None = None) -> BenchResult:
    """A BenchResult from boolean label and prediction arrays (and calibrated scores, when given)."""
    c = mx.confusion(labels, flagged)
    n, positives = int(labels.size), int(labels.sum())
    both = 0 < positives < n
    scored = both and scores is not None
    return BenchResult(
        guard=guard, benchmark=benchmark, task=task, n=n, positives=positives,
        tp=c.tp, fp=c.fp, fn=c.fn, tn=c.tn, errors=errors,
        f1=c.f1 if both else None,
        precision=c.precision if both else None,
        recall=c.recall if positives else None,
        fpr=c.fpr if positives < n else None,
        auprc=mx.average_precision(labels, scores) if scored else None,
        ece=mx.ece(labels, scores) if scored else None,
        brier=mx.brier(labels, scores) if scored else None,
        f1_ci=_interval(mx.bootstrap_ci(labels, flagged, "f1")) if both else None,
        recall_ci=_interval(mx.bootstrap_ci(labels, flagged, "recall")) if positives else None,
        fpr_ci=_interval(mx.bootstrap_ci(labels, flagged, "fpr")) if positives < n else None,
    )


def curves(guard: str, benchmark: str, task: str, labels: np.ndarray, scores: np.ndarray) -> Curves:
    pr = mx.pr_curve(labels, scores)
    keep = np.unique(np.linspace(0, pr.precision.size - 1, min(CURVE_POINTS, pr.precision.size)).astype(int))
    rel = mx.reliability(labels, scores)

    def opt(a: np.ndarray) -> tuple[float | None, ...]:
        return tuple(None if np.isnan(x) else round(float(x), 4) for x in a)

    return Curves(guard, benchmark, task,
                  tuple(round(float(x), 4) for x in pr.precision[keep]),
                  tuple(round(float(x), 4) for x in pr.recall[keep]),
                  tuple(int(x) for x in rel.count), opt(rel.mean_score), opt(rel.positive_rate),
                  float(labels.mean()) if labels.size else 0.0)


@dataclass(slots=True)
class _Bench:
    """One benchmark task ready to run: its items and where they came from."""

    name: str
    task: str
    items: list[bm.Item]
    source: str
    path: Path
    description: str
    only_group: str | None = None  # a single sub-group was asked for (``multijail:zh``)
    details: Any = None  # the spec's extra metrics: (items, verdicts) -> dict


@dataclass(slots=True)
class _Prediction:
    flagged: np.ndarray
    undecided: np.ndarray
    scores: np.ndarray | None
    failed: int
    seconds: float
    verdicts: list | None = None


def _predict(guard: Guard, items: Sequence[bm.Item], task: str, batch_size: int, bar: Advance,
             keep: bool = False) -> _Prediction:
    flagged = np.zeros(len(items), dtype=bool)
    undecided = np.zeros(len(items), dtype=bool)
    scores = np.zeros(len(items), dtype=float)
    has_scores = True
    failed = 0
    seconds = 0.0
    kept: list | None = [] if keep else None
    for start in range(0, len(items), batch_size):
        batch = [it.input for it in items[start : start + batch_size]]
        t0 = time.perf_counter()
        verdicts = check_count(guard, batch, guard.check(batch))
        seconds += time.perf_counter() - t0
        if kept is not None:
            kept.extend(verdicts)
        for i, v in enumerate(verdicts, start):
            decision = getattr(v, task)
            flagged[i] = bool(decision)
            undecided[i] = decision is None or v.error is not None
            failed += v.error is not None
            if not undecided[i]:
                value = v.scores.get(task)
                if value is None:
                    has_scores = False
                else:
                    scores[i] = float(value)
        bar.advance(len(batch))
    return _Prediction(flagged, undecided, scores if has_scores else None, failed, seconds, kept)


def _single_latency(guard: Guard, items: Sequence[bm.Item], samples: int, bar: Advance) -> tuple[float, ...]:
    out = []
    for it in items[:samples]:
        t0 = time.perf_counter()
        guard.check([it.input])
        out.append((time.perf_counter() - t0) * 1000.0)
        bar.advance(1)
    return tuple(out)


def _score_bench(guard: str, b: _Bench, p: _Prediction) -> tuple[list[BenchResult], list[Curves]]:
    labels = np.array([it.label for it in b.items], dtype=bool)
    parts: list[tuple[str, np.ndarray | None]] = []
    if b.only_group is not None:
        parts.append((b.only_group, None))
    else:
        parts.append((b.name, None))
        for g in sorted({g for it in b.items for g in it.groups}):
            parts.append((g, np.array([g in it.groups for it in b.items], dtype=bool)))
    results, plots = [], []
    for name, mask in parts:
        sel = slice(None) if mask is None else mask
        s = None if p.scores is None else p.scores[sel]
        results.append(score(guard, name, b.task, labels[sel], p.flagged[sel], int(p.undecided[sel].sum()), s))
        if mask is None and s is not None and 0 < labels.sum() < labels.size:
            plots.append(curves(guard, name, b.task, labels, s))
    return results, plots


def _load_all(selections: list[bm.Selection | bm.FileSelection], data_dir: Path | None, limit: int | None,
              wanted_all: bool) -> list[_Bench]:
    from .formats import FORMATS, load_file

    loaded: list[_Bench] = []
    for sel in selections:
        if isinstance(sel, bm.FileSelection):
            parsed = load_file(sel.format, sel.path)
            for task, items in parsed.items():
                loaded.append(_Bench(sel.format, task, bm.limited(items, limit), f"file:{sel.path}", sel.path,
                                     FORMATS[sel.format].source))
            continue
        data_dir = bm.check_data_dir(data_dir)
        path = bm.data_path(data_dir, sel.spec)
        # With "all", a dataset the user does not have is skipped; one asked for by name is an error.
        if wanted_all and not path.is_file():
            log.warning("benchmark %s skipped: %s not found", sel.spec.name, path)
            continue
        items = bm.load(sel.spec, data_dir, group=sel.group, limit=limit)
        loaded.append(_Bench(sel.group or sel.spec.name, sel.spec.task, items, f"data:{sel.spec.dataset}", path,
                             sel.spec.description, sel.group, sel.spec.details))
    if not loaded:
        raise ConfigError(f"no benchmark data found in {data_dir}; {bm.DATA_HINT}")
    names = [(b.name, b.task) for b in loaded]
    dupes = sorted({f"{n} ({t})" for n, t in names if names.count((n, t)) > 1})
    if dupes:
        raise ConfigError(f"benchmark named twice: {', '.join(dupes)}; run the shared copy and the file separately")
    return loaded


def _guard_info(name: str, guard: Guard) -> dict[str, Any]:
    info: dict[str, Any] = {"name": name, "class": type(guard).__name__}
    if isinstance(guard, HasManifest):
        manifest = guard.manifest
        info["model_dir"] = str(guard.model_dir)
        info["model_files_sha256"] = dict(manifest.get("files") or {})
        if manifest.get("thresholds"):
            info["thresholds"] = dict(manifest["thresholds"])
    if isinstance(guard, Describes):
        info.update(guard.provenance())
    if isinstance(guard, JudgesTasks):
        info["tasks"] = sorted(guard.tasks)
    return info


def _cascade_inside(guard: Guard) -> CascadeGuard | None:
    """The cascade a guard is, or wraps (a policy or the media reader around it), else None."""
    return unwrap(guard, CascadeGuard)


def run(guards: list[str], benches: list[str] | None, data_dir: Path | None, limit: int | None = None,
        progress: bool = True, *, batch_size: int = DEFAULT_BATCH,
        latency_samples: int = LATENCY_SAMPLES, settings: Settings | None = None) -> EvalRun:
    """Run each guard over each benchmark (None or ``["all"]``: every one in the data folder), score and
    time it. ``NAME=PATH`` entries read a published benchmark file (see :mod:`.formats`).

    ``limit`` takes the same first N rows of every benchmark after a seeded shuffle; one progress bar
    over guards x benchmarks goes to stderr. Raises ConfigError for an unknown guard or benchmark or a
    missing data folder. ``settings``: the tree the guards are built with and the default data folder (read from
    the environment, now, when not given).
    """
    if not guards:
        raise ConfigError("name at least one guard to evaluate, such as 'embedded'")
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    if latency_samples < 0:
        raise ConfigError(f"latency samples must be 0 or more, got {latency_samples}")
    selections = bm.select(benches)
    needs_data = any(isinstance(s, bm.Selection) for s in selections)
    settings = settings if settings is not None else Settings.from_env()
    if needs_data:
        data_dir = bm.check_data_dir(data_dir if data_dir is not None else settings.core.data_dir)
    wanted_all = not benches or bm.ALL in benches
    loaded = _load_all(selections, data_dir, limit, wanted_all)
    built = [(name, resolve(name, settings=settings)) for name in guards]

    out = EvalRun(results=[])
    out.settings = {"limit": limit, "batch_size": batch_size, "latency_samples": latency_samples,
                    "benches": list(benches or [bm.ALL]), "guards": list(guards)}
    hashes: dict[Path, str] = {}
    for b in loaded:
        if b.path not in hashes:
            hashes[b.path] = sha256_file(b.path)
        out.benchmarks.append({"name": b.name, "task": b.task, "n": len(b.items),
                               "positives": sum(it.label for it in b.items), "source": b.source,
                               "description": b.description, "sha256": hashes[b.path]})
    per_bench = [len(b.items) + min(latency_samples, len(b.items)) for b in loaded]
    total = len(built) * sum(per_bench)
    total += sum(2 * len(b.items) for b in loaded) * sum(_cascade_inside(g) is not None for _, g in built)
    label = f"{len(built)} guard{'s' * (len(built) != 1)} × {len(loaded)} benchmark{'s' * (len(loaded) != 1)}"
    with progress_bar(label, total=total, enabled=progress) as bar:
        for name, guard in built:
            out.guards.append(_guard_info(name, guard))
            judged = guard.tasks if isinstance(guard, JudgesTasks) else None
            for b, weight in zip(loaded, per_bench):
                if judged is not None and b.task not in judged:
                    out.skipped.append({"guard": name, "benchmark": b.name, "task": b.task,
                                        "reason": f"{name} does not judge {b.task}"})
                    bar.advance(weight)
                    continue
                log.info("guard %s on %s (%s): %d items", name, b.name, b.task, len(b.items))
                p = _predict(guard, b.items, b.task, batch_size, bar, keep=b.details is not None)
                if b.details is not None:
                    out.details.append({"guard": name, "benchmark": b.name, **b.details(b.items, p.verdicts)})
                single = _single_latency(guard, b.items, latency_samples, bar)
                out.latency.append(Latency(name, b.name, single, len(b.items), p.seconds, batch_size))
                if p.undecided.all() and p.failed == 0:
                    out.skipped.append({"guard": name, "benchmark": b.name, "task": b.task,
                                        "reason": f"{name} left {b.task} undecided on every item"})
                    continue
                if p.undecided.any():
                    log.warning("guard %s left %d of %d %s items undecided", name, int(p.undecided.sum()),
                                len(b.items), b.name)
                results, plots = _score_bench(name, b, p)
                out.results.extend(results)
                out.curves.extend(plots)
            cascade = _cascade_inside(guard)
            if cascade is not None:
                reports = [cascade_cost.analyse(cascade, name, b.name, b.task, b.items, batch_size, bar)
                           for b in loaded]
                out.cascade.extend(reports)
                out.cascade_summary.append(cascade_cost.summary(reports))
    return out


def evaluate(guards: list[str], benches: list[str] | None, data_dir: Path | None, limit: int | None = None,
             progress: bool = True, *, batch_size: int = DEFAULT_BATCH,
             settings: Settings | None = None) -> list[BenchResult]:
    """The scores of :func:`run` without the latency measurement: one BenchResult per guard, benchmark
    and task (and per reported sub-group)."""
    return run(guards, benches, data_dir, limit, progress, batch_size=batch_size, latency_samples=0,
               settings=settings).results


def _cell(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _ci_cell(x: float | None, ci: tuple[float, float] | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3f} ({ci[0]:.3f}–{ci[1]:.3f})" if ci else f"{x:.3f}"


def _task_cell(r: BenchResult) -> str:
    notes = [r.scope] if r.scope else []
    if r.errors:
        notes.append(f"{r.errors} undecided")
    return f"{r.task} ({'; '.join(notes)})" if notes else r.task


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def markdown_table(results: Iterable[BenchResult]) -> str:
    """One Markdown table: guard, benchmark, task, n, F1 (95% CI), precision, recall, FPR, AUPRC, ECE
    (— where not applicable; recall-only and FPR-only sets say so next to the task)."""
    lines = [
        "| guard | benchmark | task | n | F1 (95% CI) | precision | recall | FPR | AUPRC | ECE |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        recall = _ci_cell(r.recall, r.recall_ci) if r.scope == RECALL_ONLY else _cell(r.recall)
        fpr = _ci_cell(r.fpr, r.fpr_ci) if r.scope == FPR_ONLY else _cell(r.fpr)
        lines.append(_row([r.guard, r.benchmark, _task_cell(r), str(r.n), _ci_cell(r.f1, r.f1_ci),
                           _cell(r.precision), recall, fpr, _cell(r.auprc), _cell(r.ece)]))
    return "\n".join(lines) + "\n"
