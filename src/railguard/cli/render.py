"""Verdicts and training manifests as tables on the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ..types import FLAG_TASKS, TASKS, Verdict
from .common import fmt

TOP_CATEGORIES = 3


def print_verdict(verdict: Verdict) -> None:
    console = Console(highlight=False)
    if verdict.error is not None:
        console.print(f"[bold red]could not decide[/] ({verdict.error}); treated as flagged: {verdict.flagged}")
    else:
        console.print("[bold red]FLAGGED[/]" if verdict.flagged else "[bold green]not flagged[/]")
    table = Table("task", "decision", "score")
    for task in TASKS:
        decision = getattr(verdict, task)
        if decision is None:
            shown = "n/a"
        elif task in FLAG_TASKS:
            shown = "[red]yes[/]" if decision else "[green]no[/]"
        else:
            shown = "yes" if decision else "no"
        table.add_row(task, shown, fmt(verdict.scores.get(task)))
    console.print(table)
    top = sorted(verdict.categories.items(), key=lambda kv: kv[1], reverse=True)[:TOP_CATEGORIES]
    if top:
        console.print("top categories: " + ", ".join(f"{name} {score:.2f}" for name, score in top))
    if verdict.action is not None:
        console.print(f"policy action: [bold]{verdict.action}[/]")
        for reason in verdict.explanation or ():
            if reason.extraction is not None:
                continue  # printed below with the text read
            score = "" if reason.score is None else f" score {reason.score:.2f}"
            threshold = "" if reason.threshold is None else f" >= {reason.threshold:.2f}"
            detail = f" ({reason.detail})" if reason.detail else ""
            console.print(f"  {reason.action}: {reason.rule}{score}{threshold}{detail}", markup=False)
    if verdict.pii:
        console.print("found: " + ", ".join(f"{f.type} {f.field}[{f.start}:{f.end}]" for f in verdict.pii),
                      markup=False)
    if verdict.redacted_text is not None:
        console.print(f"redacted: {verdict.redacted_text}", markup=False)
    if verdict.route is not None:
        why = f": {verdict.route.reason}" if verdict.route.reason else ""
        went = "escalated" if verdict.route.escalated else "not escalated"
        console.print(f"cascade: answered by {verdict.route.answered_by} ({went}{why})", markup=False)
    print_sources(console, verdict)
    console.print(f"[dim]guard {verdict.tier}, {verdict.latency_ms:.1f} ms[/]")


def print_sources(console: Console, verdict: Verdict) -> None:
    """What was read from each image and clip, where (OCR box, seconds), and what the guard said on it."""
    for reason in verdict.explanation or ():
        found = reason.extraction
        if found is None or found.kind == "text":
            continue
        mark = "[red]flagged[/]" if found.flagged else "[green]not flagged[/]"
        redacted = ", redacted" if found.redacted else ""
        console.print(f"{found.source} ({reason.detail}{redacted}, {found.ms:.0f} ms): {mark}")
        for span in found.spans:
            if span.box is not None:
                xs, ys = [p[0] for p in span.box], [p[1] for p in span.box]
                where = f"x {min(xs)}-{max(xs)} y {min(ys)}-{max(ys)}"
            else:
                where = f"{span.seconds[0]:.1f}-{span.seconds[1]:.1f} s" if span.seconds else ""
            console.print(f"  [{where}] {span.text}", markup=False)


def print_manifest(manifest: dict[str, Any]) -> None:
    metrics: dict[str, Any] = manifest.get("heldout_metrics") or {}
    thresholds: dict[str, float] = manifest.get("thresholds") or {}
    tasks = [t for t in TASKS if isinstance(metrics.get(t), dict) or t in thresholds]
    names = list(dict.fromkeys(k for t in tasks for k in metrics.get(t) or {}))
    table = Table("task", "threshold", *names, title="held-out metrics")
    for task in tasks:
        row = metrics.get(task) or {}
        table.add_row(task, fmt(thresholds.get(task)), *(fmt(row.get(k)) for k in names))
    console = Console(highlight=False)
    console.print(table)
    for key, value in metrics.items():
        if key not in TASKS:
            shown = ", ".join(f"{k} {fmt(v)}" for k, v in value.items()) if isinstance(value, dict) else fmt(value)
            console.print(f"{key}: {shown}", soft_wrap=True)
