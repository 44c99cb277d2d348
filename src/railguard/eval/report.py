"""The report of an evaluation: ``report.md`` (tables), ``report.html`` (self-contained, plots inline)
and ``results.json`` (machine-readable), written by :func:`write_report`.

Everything here is built from the results dictionary (the content of results.json), so a report can
be rebuilt from an old results.json without running a guard again: ``build_report(json.load(f))``.
The plots are drawn with matplotlib's Agg canvas (no display, no global pyplot state) and embedded as
base64 PNG; without matplotlib (the ``eval`` extra) the report is written without them and says so.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import os
import platform
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import ConfigError, installed, require
from . import published
from .runner import FPR_ONLY, RECALL_ONLY, BenchResult, EvalRun, markdown_table

EXTRA = "eval"
RESULTS_JSON, REPORT_MD, REPORT_HTML = "results.json", "report.md", "report.html"
SCHEMA_VERSION = 1
#: Colours by guard, in the order guards were run (Okabe-Ito: readable by colour-blind readers).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
_PLOT_COLUMNS = 3
NO_PLOTS = f"matplotlib is not installed, so this report has no plots: pip install 'railguard[{EXTRA}]' adds them"


def can_plot() -> bool:
    """Whether report.html can have its plots here (matplotlib, the ``eval`` extra, is installed)."""
    return installed("matplotlib")


# --- what the run was ------------------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    """Where the numbers were taken: CPU, cores, memory, load, library versions."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "processor": _cpu_name() or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["load_average_1m_at_start"] = round(os.getloadavg()[0], 2)
    mem = _meminfo_kb("MemTotal")
    if mem:
        info["memory_gib"] = round(mem / 2**20, 1)
    info["railguard_threads"] = os.environ.get("RAILGUARD_THREADS", "2 (default)")
    for module in ("numpy", "onnxruntime", "tokenizers"):
        try:
            info[f"{module}_version"] = __import__(module).__version__
        except ImportError:
            continue
    return info


def _cpu_name() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _meminfo_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def results_dict(run: EvalRun, *, command: str = "", wall_seconds: float | None = None) -> dict[str, Any]:
    """The content of results.json: the run, the published figures for its benchmarks, provenance."""
    data = run.to_dict()
    pairs = {(b["name"], b["task"]) for b in data["benchmarks"]}
    data["published"] = [r.to_dict() for r in published.for_benchmarks(pairs)]
    data["meta"] = {
        "schema": SCHEMA_VERSION,
        "railguard_version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "command": command,
        "wall_seconds": None if wall_seconds is None else round(wall_seconds, 1),
        "machine": machine_info(),
    }
    return data


# --- tables ----------------------------------------------------------------------------------------

def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _results(data: dict) -> list[BenchResult]:
    return [BenchResult.from_dict(r) for r in data["results"]]


def _guards(data: dict) -> list[str]:
    names = [g["name"] for g in data.get("guards", [])]
    return names or list(dict.fromkeys(r["guard"] for r in data["results"]))


def headline_cell(r: BenchResult | None) -> str:
    """F1 with its 95% interval; recall on an all-harmful set and FPR on an all-benign one, labelled."""
    if r is None:
        return "not judged"
    if r.scope == RECALL_ONLY:
        ci = f" ({r.recall_ci[0]:.3f}–{r.recall_ci[1]:.3f})" if r.recall_ci else ""
        return f"recall {_f(r.recall)}{ci}"
    if r.scope == FPR_ONLY:
        ci = f" ({r.fpr_ci[0]:.3f}–{r.fpr_ci[1]:.3f})" if r.fpr_ci else ""
        return f"FPR {_f(r.fpr)}{ci}"
    ci = f" ({r.f1_ci[0]:.3f}–{r.f1_ci[1]:.3f})" if r.f1_ci else ""
    return f"{_f(r.f1)}{ci}"


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _reported_models(data: dict) -> list[str]:
    return list(dict.fromkeys(p["model"] for p in data.get("published", [])))


@dataclass(frozen=True, slots=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    align_right_from: int = 1

    def markdown(self) -> str:
        sep = ["---" if i < self.align_right_from else "---:" for i in range(len(self.header))]
        return "\n".join([_row(self.header), _row(sep), *(_row(r) for r in self.rows)]) + "\n"

    def html(self, classes: Sequence[str] = (), spans: Sequence[tuple[str, int]] = ()) -> str:
        """An HTML table; ``spans`` adds a header row of (label, columns) groups above the column names."""
        def cls(i: int) -> str:
            extra = classes[i] if i < len(classes) and classes[i] else ""
            num = "num" if i >= self.align_right_from else ""
            joined = " ".join(c for c in (num, extra) if c)
            return f' class="{joined}"' if joined else ""

        head = "".join(f"<th{cls(i)}>{html.escape(h)}</th>" for i, h in enumerate(self.header))
        if spans:
            groups, start = [], 0
            for label, width in spans:
                extra = classes[start] if start < len(classes) and classes[start] else ""
                groups.append(f"<th colspan='{width}' class='group {extra}'>{html.escape(label)}</th>")
                start += width
            head = "".join(groups) + "</tr><tr>" + head
        body = "".join("<tr>" + "".join(f"<td{cls(i)}>{html.escape(c)}</td>" for i, c in enumerate(r)) + "</tr>"
                       for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


REPORTED_MARK = "†"


def headline_table(data: dict, *, with_reported: bool = True, parts: bool = True, short: bool = False) -> Table:
    """Rows: benchmark and task (and, with ``parts``, their sub-groups such as ``multijail:zh``);
    columns: every guard run here, then each model with a published figure on these benchmarks, under
    a header that says it was reported, not run here (with ``short``, a † that a note explains)."""
    guards = _guards(data)
    by_key = {(r.guard, r.benchmark, r.task): r for r in _results(data)}
    skipped = {(s["guard"], s["benchmark"], s["task"]) for s in data.get("skipped", [])}
    top = {(b["name"], b["task"]) for b in data.get("benchmarks", [])}
    rows_keys = list(dict.fromkeys((r.benchmark, r.task, r.n) for r in _results(data)
                                   if parts or (r.benchmark, r.task) in top))
    rows_keys += [(s["benchmark"], s["task"], None) for s in data.get("skipped", [])
                  if not any(k[:2] == (s["benchmark"], s["task"]) for k in rows_keys)]
    reported = _reported_models(data) if with_reported else []
    pub = {(p["model"], p["benchmark"], p["task"]): p for p in data.get("published", [])}
    mark = (lambda m: f"{m} {REPORTED_MARK}") if short else (lambda m: f"{m} ({published.REPORTED_LABEL})")
    header = ["benchmark", "task", "n", *guards, *(mark(m) for m in reported)]
    rows = []
    for bench, task, n in rows_keys:
        cells = [bench, task, "" if n is None else str(n)]
        for g in guards:
            r = by_key.get((g, bench, task))
            cells.append(headline_cell(r) if r is not None or (g, bench, task) in skipped else "")
        for m in reported:
            p = pub.get((m, bench, task))
            if p is None or p["f1"] is None:
                cells.append("")
            else:
                cells.append(f"{p['f1']:.3f}" + ("*" if p["f1_kind"] == "optimal" else ""))
        rows.append(cells)
    return Table(header, rows, align_right_from=2)


def _pooled_latency(data: dict) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for g in _guards(data):
        rows = [t for t in data.get("latency", []) if t["guard"] == g]
        single = [x for t in rows for x in t.get("single_ms", [])]
        items = sum(t["batch_items"] for t in rows)
        seconds = sum(t["batch_seconds"] for t in rows)
        out[g] = {
            "p50_ms": float(np.percentile(single, 50)) if single else None,
            "p95_ms": float(np.percentile(single, 95)) if single else None,
            "single_n": len(single),
            "throughput_per_s": items / seconds if seconds > 0 else None,
            "items": items,
        }
    return out


def latency_table(data: dict) -> Table:
    rows = []
    for g, s in _pooled_latency(data).items():
        rows.append([g, _f(s["p50_ms"], 2), _f(s["p95_ms"], 2), str(s["single_n"]), _f(s["throughput_per_s"], 0),
                     str(s["items"])])
    return Table(["guard", "p50 ms (1 item)", "p95 ms (1 item)", "single calls", "items/s (batched)",
                  "items batched"], rows)


def latency_detail_table(data: dict) -> Table:
    rows = [[t["guard"], t["benchmark"], _f(t["p50_ms"], 2), _f(t["p95_ms"], 2), str(t["single_n"]),
             _f(t["throughput_per_s"], 0), str(t["batch_items"])] for t in data.get("latency", [])]
    return Table(["guard", "benchmark", "p50 ms", "p95 ms", "single calls", "items/s", "items"], rows, 2)


def calibration_table(data: dict) -> Table:
    rows = [[r.guard, r.benchmark, r.task, str(r.n), _f(r.auprc), _f(r.ece), _f(r.brier)]
            for r in _results(data) if r.auprc is not None]
    return Table(["guard", "benchmark", "task", "n", "AUPRC", "ECE (15 bins)", "Brier"], rows, 3)


def published_table(data: dict) -> Table:
    rows = [[p["model"], p["benchmark"], p["task"], _f(p["f1"]), _f(p["fpr"]), _f(p["auprc"]),
             "threshold tuned on the test set" if p["f1_kind"] == "optimal" else "model's own decision",
             f"{p['source']}, {p['table']}", p["verified_via"]]
            for p in data.get("published", [])]
    return Table(["model", "benchmark", "task", "F1", "FPR", "AUPRC", "F1 at", "source", "how we checked it"],
                 rows, 3)


def _provenance_lines(data: dict) -> list[str]:
    meta = data.get("meta", {})
    m = meta.get("machine", {})
    lines = [
        f"railguard {meta.get('railguard_version', '?')}, {meta.get('created_utc', '?')}"
        + (f", {meta['wall_seconds']:.0f} s wall time" if meta.get("wall_seconds") else ""),
        f"machine: {m.get('processor', '?')}, {m.get('cpus_usable', m.get('cpu_count', '?'))} usable CPUs, "
        f"{m.get('memory_gib', '?')} GiB, load average {m.get('load_average_1m_at_start', '?')} at start, "
        f"Python {m.get('python', '?')}, onnxruntime {m.get('onnxruntime_version', '?')}, "
        f"RAILGUARD_THREADS {m.get('railguard_threads', '?')}",
    ]
    settings = data.get("settings", {})
    if settings.get("limit"):
        lines.append(f"limit: {settings['limit']} rows per benchmark (seeded sample; not the full sets)")
    if meta.get("command"):
        lines.append(f"command: `{meta['command']}`")
    return lines


def _guard_lines(data: dict) -> list[str]:
    out = []
    for g in data.get("guards", []):
        files = g.get("model_files_sha256") or {}
        parts = [f"**{g['name']}** ({g.get('class', '')})"]
        if files:
            parts.append("model files: " + ", ".join(f"{k} `{v[:12]}`" for k, v in files.items()))
        if g.get("package"):
            parts.append(f"{g['package']} {g.get('package_version', '')}, weights `{g.get('weights_sha256', '')[:12]}`")
        if g.get("tasks"):
            parts.append("judges " + ", ".join(g["tasks"]))
        out.append("; ".join(parts))
    return out


def _data_lines(data: dict) -> list[str]:
    seen: dict[str, str] = {}
    for b in data.get("benchmarks", []):
        seen.setdefault(b["source"], b["sha256"])
    return [f"{src}: sha256 `{sha[:16]}`" for src, sha in seen.items()]


READING_NOTES = [
    "F1 cells show the 95% bootstrap interval (1,000 resamples, fixed seed) in brackets.",
    "harmbench, simple_safety_tests and multijail hold harmful prompts only: they get **recall only**; the "
    "benign_multilingual hold-out holds benign text only: it gets the **false-positive rate only**.",
    "AUPRC, ECE and Brier use the guard's calibrated score for the task; a guard without scores has none.",
    f"Columns marked '{published.REPORTED_LABEL}' are figures other papers published for the same benchmark; "
    "they were not measured here and their setups differ (prompt format, label mapping, thresholds). "
    "* = F1 at the threshold that is best on the test set itself.",
]


def _skipped_lines(data: dict) -> list[str]:
    return [f"not judged: {s['reason']} ({s['benchmark']})" for s in data.get("skipped", [])]


def results_markdown(data: dict, *, heading: str = "##") -> str:
    """The short Markdown block for a README: headline table (whole benchmarks; the report has their
    parts), latency, provenance."""
    parts = [headline_table(data, parts=False, short=True).markdown(), "", latency_table(data).markdown(), ""]
    parts += [f"- {line}" for line in READING_NOTES]
    if data.get("published"):
        parts.append(f"- {REPORTED_MARK} {published.REPORTED_LABEL}: " + "; ".join(
            dict.fromkeys(f"{p['source']}, {p['table']}" for p in data["published"])) + ".")
    parts += [f"- {line}" for line in _skipped_lines(data)]
    parts += [f"- {line}" for line in _provenance_lines(data)]
    parts += [f"- {line}" for line in _guard_lines(data)]
    return "\n".join(parts) + "\n"


def build_markdown(data: dict) -> str:
    meta_lines = _provenance_lines(data)
    parts = ["# railguard evaluation report", "", *(f"- {line}" for line in meta_lines), "",
             "## Headline", "", headline_table(data).markdown(), *(f"- {n}" for n in READING_NOTES), ""]
    if data.get("skipped"):
        parts += [*(f"- {line}" for line in _skipped_lines(data)), ""]
    parts += ["## All metrics", "", markdown_table(_results(data)), "",
              "## Calibration", "", calibration_table(data).markdown(), "",
              "## Latency", "", "Single-item calls on the first items of each benchmark, after its batched pass; "
              "throughput = items / seconds inside `check()` over the batched pass.", "",
              latency_table(data).markdown(), "", latency_detail_table(data).markdown(), ""]
    if data.get("published"):
        parts += [f"## Published figures ({published.REPORTED_LABEL})", "", published_table(data).markdown(), ""]
    parts += cascade_markdown(data)
    parts += ["## Provenance", "", "Guards:", "", *(f"- {line}" for line in _guard_lines(data)), "",
              "Data files:", "", *(f"- {line}" for line in _data_lines(data)), ""]
    return "\n".join(parts)


# --- plots -----------------------------------------------------------------------------------------

def _figure(width: float, height: float):
    require("matplotlib", EXTRA)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _colors(data: dict) -> dict[str, str]:
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(_guards(data))}


def _panels(n: int):
    cols = min(_PLOT_COLUMNS, max(1, n))
    rows = (n + cols - 1) // cols
    fig = _figure(4.2 * cols, 3.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def _curve_groups(data: dict) -> list[tuple[tuple[str, str], list[dict]]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in data.get("curves", []):
        groups.setdefault((c["benchmark"], c["task"]), []).append(c)
    return list(groups.items())


def _curve_figure(data: dict, metric: str, title: str, draw) -> str | None:
    """One panel per (benchmark, task) with curves, ``draw(axes, curve, colour, label)`` per guard; the
    legend label of each guard carries its ``metric``. None when there are no curves."""
    groups = _curve_groups(data)
    if not groups:
        return None
    values = {(r.guard, r.benchmark, r.task): getattr(r, metric) for r in _results(data)}
    colors = _colors(data)
    fig, axes = _panels(len(groups))
    for ax, ((bench, task), cs) in zip(axes, groups):
        for c in cs:
            label = f"{c['guard']} ({metric.upper()} {_f(values.get((c['guard'], bench, task)))})"
            draw(ax, c, colors.get(c["guard"], "grey"), label)
        ax.set_title(f"{bench} · {task}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right" if metric == "ece" else "lower left")
    fig.suptitle(title)
    return _png(fig)


def _draw_pr(ax, c: dict, color: str, label: str) -> None:
    if not ax.lines:
        ax.axhline(c["positive_rate"], color="0.6", ls=":", lw=1, label="chance (positive rate)")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
    ax.plot(c["recall"], c["precision"], color=color, lw=1.8, label=label, drawstyle="steps-post")


def _draw_reliability(ax, c: dict, color: str, label: str) -> None:
    if not ax.lines:
        ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="perfectly calibrated")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted probability", ylabel="observed positive rate")
    pts = [(m, p, n) for m, p, n in zip(c["bin_mean_score"], c["bin_positive_rate"], c["bin_count"])
           if m is not None and n > 0]
    if not pts:
        return
    xs, ys, ns = zip(*pts)
    sizes = 12 + 120 * np.sqrt(np.array(ns) / max(ns))
    ax.plot(xs, ys, color=color, lw=1.4, label=label)
    ax.scatter(xs, ys, s=sizes, color=color, alpha=0.7, edgecolors="white", linewidths=0.5)


def pr_figure(data: dict) -> str | None:
    return _curve_figure(data, "auprc", "Precision-recall curves (threshold swept over the calibrated score)",
                         _draw_pr)


def reliability_figure(data: dict) -> str | None:
    return _curve_figure(data, "ece", "Reliability diagrams (15 equal-width bins; dot area = items in the bin)",
                         _draw_reliability)


def latency_figure(data: dict) -> str | None:
    stats = _pooled_latency(data)
    stats = {g: s for g, s in stats.items() if s["p50_ms"] is not None or s["throughput_per_s"]}
    if not stats:
        return None
    colors = _colors(data)
    guards = list(stats)
    fig = _figure(10, 0.9 + 0.55 * len(guards) + 1.2)
    left, right = fig.subplots(1, 2)
    y = np.arange(len(guards))
    p50 = [stats[g]["p50_ms"] or 0 for g in guards]
    p95 = [stats[g]["p95_ms"] or 0 for g in guards]
    left.barh(y + 0.2, p50, height=0.38, color=[colors[g] for g in guards], label="p50")
    left.barh(y - 0.2, p95, height=0.38, color=[colors[g] for g in guards], alpha=0.45, label="p95")
    for yi, a, b in zip(y, p50, p95):
        left.text(a, yi + 0.2, f" {a:.2f}", va="center", fontsize=8)
        left.text(b, yi - 0.2, f" {b:.2f}", va="center", fontsize=8)
    positive = [v for v in p50 + p95 if v > 0]
    if positive and max(positive) / min(positive) > 30:
        # Guards that differ by orders of magnitude: a log axis keeps the fast one's bar visible.
        from matplotlib.ticker import FuncFormatter

        left.set_xscale("log")
        left.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        left.set_xlim(min(positive) / 2, max(positive) * 4)
        unit = "milliseconds per single item, log scale (lower is better)"
    else:
        left.set_xlim(0, max(p95 + p50) * 1.25 or 1)
        unit = "milliseconds per single item (lower is better)"
    left.set(yticks=y, yticklabels=guards, xlabel=unit, title="Latency, one item per call")
    left.legend(fontsize=8, loc="lower right")
    tput = [stats[g]["throughput_per_s"] or 0 for g in guards]
    right.barh(y, tput, color=[colors[g] for g in guards])
    for yi, t in zip(y, tput):
        right.text(t, yi, f" {t:,.0f}", va="center", fontsize=8)
    right.set(yticks=y, yticklabels=guards, xlabel="items per second (higher is better)",
              title=f"Throughput, batches of {data.get('settings', {}).get('batch_size', '?')}")
    right.set_xlim(0, max(tput) * 1.25 or 1)
    for ax in (left, right):
        ax.grid(axis="x", alpha=0.3)
        ax.invert_yaxis()
    return _png(fig)


def tradeoff_figure(data: dict) -> str | None:
    """F1 against single-item latency: one small point per benchmark, one large point per guard (mean)."""
    results = [r for r in _results(data) if r.f1 is not None]
    lat = {(t["guard"], t["benchmark"]): t["p50_ms"] for t in data.get("latency", []) if t["p50_ms"]}
    pooled = _pooled_latency(data)
    if not results or not lat:
        return None
    colors = _colors(data)
    fig = _figure(7.5, 4.8)
    ax = fig.subplots()
    for g in _guards(data):
        pts = [(lat[(g, r.benchmark)], r.f1, r.benchmark) for r in results
               if r.guard == g and (g, r.benchmark) in lat]
        if not pts:
            continue
        xs, ys, names = zip(*pts)
        ax.scatter(xs, ys, color=colors[g], alpha=0.45, s=28)
        for x, yv, name in zip(xs, ys, names):
            ax.annotate(name, (x, yv), fontsize=6, alpha=0.7, xytext=(3, 2), textcoords="offset points")
        if pooled[g]["p50_ms"]:
            ax.scatter([pooled[g]["p50_ms"]], [float(np.mean(ys))], color=colors[g], s=160, marker="D",
                       edgecolors="black", linewidths=0.8, label=f"{g}: mean F1 {np.mean(ys):.3f}")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="p50 latency per single item, ms (log scale)", ylabel="F1", ylim=(0, 1.02),
           title="F1 vs latency (benchmarks with both classes; diamond = guard mean)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def cascade_markdown(data: dict) -> list[str]:
    """The cascade cost tables, one per cascade evaluated (empty when none was)."""
    from .cascade import markdown as cascade_table

    out: list[str] = []
    for total in data.get("cascade_summary", []):
        reports = [r for r in data.get("cascade", []) if r["guard"] == total["guard"]]
        out += [f"## Cascade: {total['guard']}", "", cascade_table(reports, total)]
    return out


def cascade_figure(data: dict) -> str | None:
    """Score against escalation rate for every swept routing setting: one panel per benchmark."""
    reports = data.get("cascade") or []
    if not reports:
        return None
    fig, axes_list = _panels(len(reports))
    for ax, r in zip(axes_list, reports):
        metric = r["metric"]
        for route, color, marker in (("margin", "#888888", "s"), ("hesitation", "#1f77b4", "o")):
            pts = sorted((p["escalation_rate"], p[metric]) for p in r["sweep"]
                         if p["route"] == route and p[metric] is not None)
            if pts:
                xs, ys = zip(*pts)
                ax.scatter(xs, ys, s=14, color=color, marker=marker, alpha=0.7, label=route)
        for tier, color in zip(r["tiers"], ("#2ca02c", "#d62728")):
            value = r["tiers"][tier][metric]
            if value is not None:
                ax.axhline(value, color=color, lw=1, ls="--", label=f"{tier} alone")
        c = r["cascade"]
        if c[metric] is not None:
            ax.scatter([c["escalation_rate"]], [c[metric]], s=90, marker="*", color="black", label="configured")
        ax.set(title=f"{r['benchmark']} ({metric})", xlabel="escalation rate", ylabel=metric, xlim=(0, 1))
        ax.grid(alpha=0.3)
    axes_list[0].legend(fontsize=7, loc="lower right")
    return _png(fig)


# --- html ------------------------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1300px;padding:0 1rem;
color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;font-size:.82rem;margin:.6rem 0 1rem;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.25rem .5rem;vertical-align:top}th{background:#f4f6f8;text-align:left}
td.num,th.num{text-align:right;white-space:nowrap}th.group{text-align:center}
td.reported,th.reported{background:#fbf7ec;color:#5b4a1e}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5rem 0}ul{padding-left:1.2rem}
code{background:#f4f4f4;padding:0 .2rem}.muted{color:#666;font-size:.85rem}
"""


def _ul(lines: Iterable[str]) -> str:
    items = "".join(f"<li>{html.escape(line).replace('**', '')}</li>" for line in lines)
    return f"<ul>{items}</ul>" if items else ""


def _plot(figure, data: dict, alt: str, plots: bool) -> str:
    if not plots:
        return f'<p class="muted">No plot ({html.escape(alt)}): {html.escape(NO_PLOTS)}.</p>'
    return _img(figure(data), alt)


def _img(b64: str | None, alt: str) -> str:
    if b64 is None:
        return f'<p class="muted">No data for: {html.escape(alt)}.</p>'
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def build_html(data: dict, *, plots: bool = True) -> str:
    """The self-contained HTML page; ``plots=False`` leaves the plots out (a line in their place says why)."""
    head = headline_table(data)
    n_guards = len(_guards(data))
    n_reported = len(head.header) - 3 - n_guards
    classes = [""] * (3 + n_guards) + ["reported"] * n_reported
    spans = [("", 3), ("run here", n_guards)] + ([(published.REPORTED_LABEL, n_reported)] if n_reported else [])
    body = [
        "<h1>railguard evaluation report</h1>", _ul(_provenance_lines(data)),
        "<h2>Headline</h2>", head.html(classes, spans), _ul(READING_NOTES),
    ]
    if data.get("skipped"):
        body += [_ul(_skipped_lines(data))]
    body += [
        "<h2>F1 against latency</h2>", _plot(tradeoff_figure, data, "F1 vs latency", plots),
        "<h2>Precision-recall curves</h2>", _plot(pr_figure, data, "precision-recall curves", plots),
        "<h2>Calibration</h2>", _plot(reliability_figure, data, "reliability diagrams", plots),
        calibration_table(data).html(),
        "<h2>Latency</h2>", _plot(latency_figure, data, "latency and throughput", plots),
        "<p class='muted'>Single-item calls on the first items of each benchmark, after its batched pass; "
        "throughput = items / seconds inside check() over the batched pass.</p>",
        latency_table(data).html(), latency_detail_table(data).html(),
        "<h2>All metrics</h2>", _md_results_html(data),
    ]
    if data.get("published"):
        body += [f"<h2>Published figures ({html.escape(published.REPORTED_LABEL)})</h2>", published_table(data).html()]
    if data.get("cascade"):
        body += ["<h2>Cascade: cost and routing</h2>",
                 *(f"<pre>{html.escape(block)}</pre>" for block in cascade_markdown(data)[2:]),
                 _plot(cascade_figure, data, "score vs escalation rate", plots)]
    body += ["<h2>Provenance</h2>", "<p>Guards:</p>", _ul(_guard_lines(data)), "<p>Data files:</p>",
             _ul(_data_lines(data))]
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>railguard evaluation report</title>"
            f"<style>{_CSS}</style></head><body>" + "\n".join(body) + "</body></html>\n")


def _md_results_html(data: dict) -> str:
    lines = markdown_table(_results(data)).strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")] for line in lines[2:]]
    return Table(header, rows, align_right_from=3).html()


# --- files -----------------------------------------------------------------------------------------

def write_report(data: dict, out_dir: str | Path, *, plots: bool | None = None) -> dict[str, Path]:
    """Write results.json, report.md and report.html into ``out_dir`` (created if missing); report.html has its
    plots when ``plots`` (default: when matplotlib is installed, see :func:`can_plot`)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the report")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / RESULTS_JSON, "markdown": out / REPORT_MD, "html": out / REPORT_HTML}
    paths["results"].write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(build_markdown(data), encoding="utf-8")
    plots = can_plot() if plots is None else plots
    paths["html"].write_text(build_html(data, plots=plots), encoding="utf-8")
    return paths


def read_results(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no results file at {path}; run `railguard eval --out DIR` first") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "results" not in data:
        raise ConfigError(f"{path} is not a railguard results.json (no 'results')")
    return data
