"""``eval`` and ``model-card``: guards on the benchmarks, and the model card from the results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import Settings
from .common import DataDir, Progress, data_dir, import_extra


def evaluate(
    guard: Annotated[list[str] | None, typer.Option(
        "--guard", help="guard to evaluate; repeat to compare several [default: embedded]")] = None,
    bench: Annotated[list[str] | None, typer.Option(
        help="benchmarks, comma-separated or repeated; NAME=PATH reads a published file such as "
             "toxicchat=toxic-chat_annotation_test.csv [default: all]")] = None,
    data: DataDir = None,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many rows per benchmark")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="write report.md, report.html (plots, with the eval extra) and results.json into this "
                        "folder")] = None,
    readme: Annotated[Path | None, typer.Option(
        help="rewrite this README's section between <!-- results:start --> and <!-- results:end -->")] = None,
    progress: Progress = True,
) -> None:
    """Evaluate guards on the benchmarks; prints a Markdown table (with --out, also a full report)."""
    runner = import_extra("railguard.eval.runner", "train")
    settings = Settings.from_env()
    benches = [b.strip() for item in bench for b in item.split(",") if b.strip()] if bench else None
    if out is None and readme is None:
        if not _wants_details(benches):
            results = runner.evaluate(guard or ["default"], benches=benches, data_dir=data_dir(data, settings),
                                      limit=limit, progress=progress, settings=settings)
            typer.echo(runner.markdown_table(results))
            return
        quick = runner.run(guard or ["default"], benches=benches, data_dir=data_dir(data, settings), limit=limit,
                           progress=progress, latency_samples=0, settings=settings)
        typer.echo(runner.markdown_table(quick.results))
        typer.echo(import_extra("railguard.eval.agent", "train").details_markdown(quick.details))
        return
    import sys
    import time

    report = import_extra("railguard.eval.report", "eval")
    plots = report.can_plot()
    if out is not None and not plots:  # said before the run, so a long evaluation is not a surprise at its end
        typer.echo(f"note: {report.NO_PLOTS}; the tables and results.json are written as usual", err=True)
    start = time.perf_counter()
    run = runner.run(guard or ["default"], benches=benches, data_dir=data_dir(data, settings), limit=limit,
                     progress=progress, settings=settings)
    results = report.results_dict(run, command=" ".join(["railguard", *sys.argv[1:]]),
                                  wall_seconds=time.perf_counter() - start)
    typer.echo(runner.markdown_table(run.results))
    if run.details:
        typer.echo(import_extra("railguard.eval.agent", "train").details_markdown(run.details))
    if out is not None:
        paths = report.write_report(results, out, plots=plots)
        typer.echo(f"report: {paths['html']}{'' if plots else ' (no plots)'}, {paths['markdown']}, "
                   f"{paths['results']}", err=True)
    if readme is not None:
        import_extra("railguard.eval.readme", "eval").update_readme(readme, results)
        typer.echo(f"results section of {readme} rewritten", err=True)


def model_card(
    out: Annotated[Path, typer.Option("--out", help="the card to write")] = Path("MODEL_CARD.md"),
    bench: Annotated[Path, typer.Option(
        "--bench", help="the checkout's bench/results folder (evaluation and failure-mode figures)")] = Path(
        "bench/results"),
    results: Annotated[Path | None, typer.Option(
        "--results", help="first refresh the card's evaluation figures from this results.json (railguard eval "
                          "--out DIR writes one)")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="write nothing; exit 1 if the card differs from what the files give")] = False,
) -> None:
    """Write MODEL_CARD.md from the shipped manifests and bench/results (never typed by hand)."""
    card = import_extra("railguard.eval.model_card", "train")
    if results is not None and not check:
        path = card.write_card_results(results, bench / card.CARD_RESULTS)
        typer.echo(f"evaluation figures written to {path}", err=True)
    text = card.render(bench)
    if check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            typer.echo(f"{out} is stale; run `railguard model-card --out {out}`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} is up to date", err=True)
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"model card written to {out}", err=True)


def _wants_details(benches: list[str] | None) -> bool:
    """Whether a benchmark named reports more than the binary table (agents: SAFE/LOW/HIGH metrics; with
    ``all`` they are in the --out report's results.json)."""
    from ..eval.benchmarks import BENCHMARKS

    return any(BENCHMARKS[name].details is not None for name in benches or () if name in BENCHMARKS)
