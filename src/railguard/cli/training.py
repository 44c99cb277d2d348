"""``train`` and ``improve``: model folders from the datasets, and from moderators' feedback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..config import Settings
from ..errors import ConfigError
from .audit import AuditConfig, open_audit_store
from .common import DataDir, Progress, data_dir, fmt, import_extra
from .render import print_manifest


def train(
    data: DataDir = None,
    out: Annotated[Path | None, typer.Option("--out", help="model folder to write [default: runs/model, "
                                                          "runs/agent for the agent tasks]")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 13,
    epochs: Annotated[int | None, typer.Option(
        min=0, help="encoder fine-tuning epochs (0: train the heads only) [default: 1; 0 for e5]")] = None,
    freeze_layers: Annotated[int, typer.Option(
        min=0, help="keep the embeddings and this many first encoder layers fixed while fine-tuning")] = 0,
    encoder_from: Annotated[Path | None, typer.Option(
        help="reuse this model folder's fine-tuned encoder (e.g. src/railguard/models/embedded) and train only "
             "the heads, calibration, thresholds and probes")] = None,
    keep_head: Annotated[list[str] | None, typer.Option(
        "--keep-head", help="with --encoder-from: keep that folder's head of this name as it is (repeat; the "
                            "shipped model keeps refusal)")] = None,
    sources: Annotated[str | None, typer.Option(help="comma-separated datasets to train on [default: all]")] = None,
    max_examples: Annotated[int | None, typer.Option(min=1, help="train on at most this many examples")] = None,
    progress: Progress = True,
    encoder: Annotated[str, typer.Option(
        help="minilm (the embedded default) or e5 (multilingual, frozen; needs railguard[multilingual])")] = "minilm",
    task: Annotated[str, typer.Option(help="embedded (the text model), or an agent head: action_risk (webguard) "
                                           "or trajectory (rjudge, assebench_security)")] = "embedded",
    augment: Annotated[str, typer.Option(help="synthetic examples: 'default', or 'crome' to add neutral and causal "
                                              "augmentations against spurious cues")] = "default",
    licenses: Annotated[str, typer.Option(help="'all' sources, or 'permissive': only sources whose licenses set no "
                                               "conditions beyond attribution (no NC, SA or GPL data)")] = "all",
) -> None:
    """Train a model folder from the datasets; use it with --guard embedded:OUT (e5:OUT for --encoder e5,
    agent:OUT for the agent tasks)."""
    tree = Settings.from_env()
    if task != "embedded":
        agent = import_extra("railguard.train.agent", "train")
        if task not in agent.TASKS:
            raise ConfigError(f"unknown task '{task}'; use embedded, {', '.join(agent.TASKS)}")
        out = out or Path("runs/agent")
        manifest = agent.TASKS[task](data_dir(data, tree), out, seed=seed, progress=progress, settings=tree.core)
        part = manifest["action" if task == "action_risk" else "trajectory"]
        typer.echo(json.dumps({"task": task, "heldout_metrics": part["heldout_metrics"]}, indent=1))
        typer.echo(f"agent model written to {out}; try it with: railguard check-action --guard agent:{out} ...")
        return
    out = out or Path("runs/model")
    pipeline = import_extra("railguard.train.pipeline", "train")
    names = [s.strip() for s in sources.split(",") if s.strip()] if sources else None
    manifest = pipeline.train(data_dir(data, tree), out, seed=seed, epochs=epochs, sources=names,
                              max_examples=max_examples, progress=progress, encoder=encoder, licenses=licenses,
                              **({"augment_mode": augment} if augment != "default" else {}),
                              **({"freeze_layers": freeze_layers} if freeze_layers else {}),
                              **({"encoder_from": encoder_from} if encoder_from is not None else {}),
                              **({"keep_heads": keep_head} if keep_head else {}))
    print_manifest(manifest)
    kind = "e5" if encoder == "e5" else "embedded"
    typer.echo(f"model written to {out}; try it with: railguard check --guard {kind}:{out} \"...\"")


def improve(
    out: Annotated[Path, typer.Option("--out", help="model folder to write (used as --guard embedded:OUT)")],
    from_store: Annotated[str | None, typer.Option(
        "--from-store", help="audit store URL with the reviews (default: the server's, as for `audit`)")] = None,
    config: AuditConfig = None,
    model: Annotated[Path | None, typer.Option("--model", help="model folder to improve [default: shipped]")] = None,
    data: DataDir = None,
    flip_rate: Annotated[float | None, typer.Option(
        min=0.0, max=0.49, help="moderators' label flip rate [default: from --gold or items reviewed twice]")] = None,
    gold: Annotated[Path | None, typer.Option(help="JSONL of prompts with known labels ({\"prompt\", \"prompt_harmful\"})"
                                                   " to estimate the flip rates")] = None,
    noise_aware: Annotated[bool, typer.Option("--noise-aware/--no-noise-aware", help="noise-corrected loss")] = True,
    propensity: Annotated[bool, typer.Option("--propensity/--no-propensity",
                                             help="inverse-propensity weights for the reviewed items")] = True,
    clip: Annotated[float, typer.Option(min=0.001, max=1.0, help="lowest propensity (caps each weight)")] = 0.02,
    feedback_weight: Annotated[float, typer.Option(min=0.0, help="weight of a reviewed item vs a training "
                                                                 "example")] = 1.0,
    max_f1_drop: Annotated[float, typer.Option(min=0.0, help="refuse the model when a benchmark's F1 drops "
                                                             "by more than this")] = 0.01,
    force: Annotated[bool, typer.Option("--force", help="write the model even when it is worse")] = False,
    progress: Progress = True,
) -> None:
    """Retrain the heads from the training pool plus moderator feedback (noise-aware, propensity-weighted)."""
    improve_module = import_extra("railguard.train.improve", "train")
    tree = Settings.from_env()
    settings = improve_module.ImproveConfig(
        flip_rate=flip_rate, gold=gold, noise_aware=noise_aware, propensity=propensity, propensity_clip=clip,
        feedback_weight=feedback_weight, max_f1_drop=max_f1_drop, force=force)
    _, store = open_audit_store(from_store, config)
    try:
        report = improve_module.improve(store, out, data_dir=data_dir(data, tree), base_model=model, config=settings,
                                        progress=progress)
    finally:
        store.close()
    table = Table("benchmark", "old F1", "new F1", "old FPR", "new FPR", title="old vs new (test benchmarks)")
    for name, m in report["benchmarks"].items():
        table.add_row(name, fmt(m["old"]["f1"]), fmt(m["new"]["f1"]), fmt(m["old"]["fpr"]), fmt(m["new"]["fpr"]))
    for task, m in report["heldout_feedback"].items():
        table.add_row(f"held-out feedback: {task}", fmt(m["old"]["f1"]), fmt(m["new"]["f1"]),
                      fmt(m["old"]["fpr"]), fmt(m["new"]["fpr"]))
    console = Console(highlight=False)
    console.print(table)
    rates = ", ".join(f"{t} {r['pos']:.2f}/{r['neg']:.2f} ({r['source']})" for t, r in report["noise_rates"].items())
    console.print(f"flip rates: {rates}", soft_wrap=True)
    p = report["propensity"]
    console.print(f"reviewed items in training: {report['feedback_train_items']}; effective sample size after "
                  f"propensity weighting: {p['effective_sample_size']}", soft_wrap=True)
    typer.echo(f"model written to {out}; serve it with: railguard serve --guard embedded:{out}")
