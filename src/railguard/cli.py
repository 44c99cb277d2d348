"""The ``railguard`` command: parses arguments, calls the library, prints. No model logic lives here.

Every RailguardError (and every unreadable path) ends the command with one line ``error: <message>`` on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from . import __version__, load_guard
from .errors import ConfigError, MissingExtraError, ModelError, RailguardError
from .types import FLAG_TASKS, TASKS, GuardInput, Verdict

EXIT_ERROR = 2
_TOP_CATEGORIES = 3


class _Group(TyperGroup):
    """Turns the errors we raise on purpose into one line on stderr instead of a traceback."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RailguardError as exc:
            _fail(str(exc))
        except OSError as exc:
            _fail(f"{exc.strerror}: {exc.filename}" if exc.filename and exc.strerror else str(exc))


def _fail(message: str) -> None:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(EXIT_ERROR)


app = typer.Typer(
    cls=_Group,
    help="Offline, CPU-fast guardrails: harm, refusal, jailbreak and prompt-injection checks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals would print the user's prompts
)

GuardName = Annotated[str, typer.Option("--guard", help="guard to run, by registry name (see `railguard info`)")]
DataDir = Annotated[Path | None, typer.Option("--data", help="the datasets folder [default: RAILGUARD_DATA "
                                                              "or the shared data folder]")]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="show a progress bar on stderr")]
PolicyOption = Annotated[str | None, typer.Option(
    "--policy", help="a policy preset (default, strict, permissive, children, enterprise) or a YAML policy file")]


def _import(module: str, extra: str):
    """Import a heavy part of railguard only when its command runs, with a clear message when it cannot be."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise ConfigError(f"{module} is not part of this railguard installation") from None
        raise MissingExtraError(extra, (exc.name or "a dependency").split(".")[0]) from None


def _data_dir(data: Path | None) -> Path:
    from .config import Settings

    return data if data is not None else Settings.from_env().data_dir


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


@app.command()
def check(
    text: Annotated[str | None, typer.Argument(
        help="the prompt (the user's message) to check; may be left out with --image or --audio")] = None,
    response: Annotated[str | None, typer.Option(help="the model's answer to the prompt, to check as well")] = None,
    context: Annotated[list[str] | None, typer.Option(
        help="a document the model reads (retrieved text, email, tool output); repeat for several")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict as one JSON object")] = False,
    guard: GuardName = "default",
    policy: PolicyOption = None,
    image: Annotated[list[Path] | None, typer.Option(
        "--image", help="an image whose text (OCR) is checked too; repeat for several (extra: vision)")] = None,
    audio: Annotated[list[Path] | None, typer.Option(
        "--audio", help="an audio clip whose speech is checked too; repeat for several (extra: audio)")] = None,
) -> None:
    """Check one prompt (and optionally a response, context documents, images and audio)."""
    if text is None and not image and not audio:
        raise ConfigError("give the prompt to check, or an --image or --audio file")
    item = GuardInput(prompt=text or "", response=response, context=tuple(context or ()),
                      images=tuple(image or ()), audio=tuple(audio or ()))
    if item.has_media:
        from .media import validate

        validate(item)  # a bad file fails in a second, before any model loads
    verdict = load_guard(guard, policy=policy).check([item])[0]
    if as_json:
        typer.echo(json.dumps(verdict.to_dict(), ensure_ascii=False))
    else:
        _print_verdict(verdict)


def _print_verdict(verdict: Verdict) -> None:
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
        table.add_row(task, shown, _fmt(verdict.scores.get(task)))
    console.print(table)
    top = sorted(verdict.categories.items(), key=lambda kv: kv[1], reverse=True)[:_TOP_CATEGORIES]
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
        why = f": {verdict.route['reason']}" if verdict.route.get("reason") else ""
        went = "escalated" if verdict.route.get("escalated") else "not escalated"
        console.print(f"cascade: answered by {verdict.route.get('answered_by')} ({went}{why})", markup=False)
    _print_sources(console, verdict)
    console.print(f"[dim]guard {verdict.tier}, {verdict.latency_ms:.1f} ms[/]")


def _print_sources(console: Console, verdict: Verdict) -> None:
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


@app.command()
def moderate(
    in_path: Annotated[Path, typer.Argument(metavar="IN", help="rows to check: .jsonl, .jsonl.gz, .csv or .parquet")],
    out: Annotated[Path, typer.Option("--out", "-o", help="where to write one verdict per row: .jsonl (JSON "
                                                          "lines), .jsonl.gz or .parquet (columns)")],
    guard: GuardName = "default",
    batch_size: Annotated[int, typer.Option(min=1, help="rows per guard call")] = 64,
    text_field: Annotated[str, typer.Option(help="field holding the prompt")] = "prompt",
    response_field: Annotated[str, typer.Option(help="field holding the model's response")] = "response",
    id_field: Annotated[str, typer.Option(help="field holding the row id")] = "id",
    context_field: Annotated[str, typer.Option(help="field holding context documents")] = "context",
    progress: Progress = True,
    policy: PolicyOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="keep the rows an interrupted run wrote to OUT "
                                                          "(.jsonl) and append the rest")] = False,
    engine: Annotated[str, typer.Option(help="local (this process) or ray (an actor pool on Ray)")] = "local",
    workers: Annotated[int | None, typer.Option(min=1, help="ray: actors, one CPU each (default: all CPUs)")] = None,
    address: Annotated[str | None, typer.Option(help="ray: an existing cluster's HOST:PORT (or auto) "
                                                     "(default: start a local Ray)")] = None,
) -> None:
    """Check every row of a file; malformed rows come out as errors, in order, never dropped."""
    from .batch.local import moderate_file

    summary = moderate_file(in_path, out, guard, batch_size=batch_size, text_field=text_field,
                            response_field=response_field, id_field=id_field, context_field=context_field,
                            progress=progress, resume=resume, engine=engine, workers=workers, address=address,
                            policy=policy)
    skipped = f", skipped (already in {summary.out_path.name}): {summary.skipped:,}" if summary.skipped else ""
    typer.echo(f"rows: {summary.rows:,}, flagged: {summary.flagged:,}, errors: {summary.errors:,}{skipped}, "
               f"{summary.rows_per_s:,.1f} rows/s -> {summary.out_path}", err=True)


@app.command()
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
    if task != "embedded":
        agent = _import("railguard.train.agent", "train")
        if task not in agent.TASKS:
            raise ConfigError(f"unknown task '{task}'; use embedded, {', '.join(agent.TASKS)}")
        out = out or Path("runs/agent")
        manifest = agent.TASKS[task](_data_dir(data), out, seed=seed, progress=progress)
        part = manifest["action" if task == "action_risk" else "trajectory"]
        typer.echo(json.dumps({"task": task, "heldout_metrics": part["heldout_metrics"]}, indent=1))
        typer.echo(f"agent model written to {out}; try it with: railguard check-action --guard agent:{out} ...")
        return
    out = out or Path("runs/model")
    pipeline = _import("railguard.train.pipeline", "train")
    names = [s.strip() for s in sources.split(",") if s.strip()] if sources else None
    manifest = pipeline.train(_data_dir(data), out, seed=seed, epochs=epochs, sources=names,
                              max_examples=max_examples, progress=progress, encoder=encoder, licenses=licenses,
                              **({"augment_mode": augment} if augment != "default" else {}),
                              **({"freeze_layers": freeze_layers} if freeze_layers else {}),
                              **({"encoder_from": encoder_from} if encoder_from is not None else {}))
    _print_manifest(manifest)
    kind = "e5" if encoder == "e5" else "embedded"
    typer.echo(f"model written to {out}; try it with: railguard check --guard {kind}:{out} \"...\"")


def _print_manifest(manifest: dict[str, Any]) -> None:
    metrics: dict[str, Any] = manifest.get("heldout_metrics") or {}
    thresholds: dict[str, float] = manifest.get("thresholds") or {}
    tasks = [t for t in TASKS if isinstance(metrics.get(t), dict) or t in thresholds]
    names = list(dict.fromkeys(k for t in tasks for k in metrics.get(t) or {}))
    table = Table("task", "threshold", *names, title="held-out metrics")
    for task in tasks:
        row = metrics.get(task) or {}
        table.add_row(task, _fmt(thresholds.get(task)), *(_fmt(row.get(k)) for k in names))
    console = Console(highlight=False)
    console.print(table)
    for key, value in metrics.items():
        if key not in TASKS:
            shown = ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()) if isinstance(value, dict) else _fmt(value)
            console.print(f"{key}: {shown}", soft_wrap=True)


@app.command(name="eval")
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
    runner = _import("railguard.eval.runner", "train")
    benches = [b.strip() for item in bench for b in item.split(",") if b.strip()] if bench else None
    if out is None and readme is None:
        if not _wants_details(benches):
            results = runner.evaluate(guard or ["default"], benches=benches, data_dir=_data_dir(data), limit=limit,
                                      progress=progress)
            typer.echo(runner.markdown_table(results))
            return
        quick = runner.run(guard or ["default"], benches=benches, data_dir=_data_dir(data), limit=limit,
                           progress=progress, latency_samples=0)
        typer.echo(runner.markdown_table(quick.results))
        typer.echo(_import("railguard.eval.agent", "train").details_markdown(quick.details))
        return
    import sys
    import time

    report = _import("railguard.eval.report", "eval")
    plots = report.can_plot()
    if out is not None and not plots:  # said before the run, so a long evaluation is not a surprise at its end
        typer.echo(f"note: {report.NO_PLOTS}; the tables and results.json are written as usual", err=True)
    start = time.perf_counter()
    run = runner.run(guard or ["default"], benches=benches, data_dir=_data_dir(data), limit=limit,
                     progress=progress)
    results = report.results_dict(run, command=" ".join(["railguard", *sys.argv[1:]]),
                                  wall_seconds=time.perf_counter() - start)
    typer.echo(runner.markdown_table(run.results))
    if run.details:
        typer.echo(_import("railguard.eval.agent", "train").details_markdown(run.details))
    if out is not None:
        paths = report.write_report(results, out, plots=plots)
        typer.echo(f"report: {paths['html']}{'' if plots else ' (no plots)'}, {paths['markdown']}, "
                   f"{paths['results']}", err=True)
    if readme is not None:
        _import("railguard.eval.readme", "eval").update_readme(readme, results)
        typer.echo(f"results section of {readme} rewritten", err=True)


@app.command(name="model-card")
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
    card = _import("railguard.eval.model_card", "train")
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
    from .eval.benchmarks import BENCHMARKS

    return any(BENCHMARKS[name].details is not None for name in benches or () if name in BENCHMARKS)


@app.command()
def info() -> None:
    """Show the version, the model files in use, the settings and the available guards."""
    from .config import Settings
    from .models.artifacts import EMBEDDED_DIR, MANIFEST, read_manifest
    from .registry import available

    settings = Settings.from_env()
    model_dir = settings.model_dir or EMBEDDED_DIR
    typer.echo(f"railguard {__version__}")
    origin = "from RAILGUARD_MODEL_DIR" if settings.model_dir else "shipped"
    typer.echo(f"model dir: {model_dir} ({origin})")
    try:
        files = read_manifest(model_dir).get("files") or {}
    except ModelError as exc:
        typer.echo(f"  no usable model: {exc}")
        files = {}
    for name, sha256 in files.items():
        missing = "" if (model_dir / name).is_file() else "  (missing)"
        typer.echo(f"  {name}  sha256 {sha256}{missing}")
    if files:
        typer.echo(f"  ({MANIFEST} lists {len(files)} files)")
    typer.echo("settings:")
    for field in dataclasses.fields(settings):
        typer.echo(f"  {field.name}: {getattr(settings, field.name)}")
    typer.echo("guards:")
    for name, description in available().items():
        typer.echo(f"  {name}  {description}".rstrip())


class _ServeCommand(TyperCommand):
    """``serve --help`` lists every server setting; read from the settings model when help is asked for."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        try:
            from .server.settings import setting_help

            lines = [f"{env}  {desc} (default {default})" for env, default, desc in setting_help()]
            self.epilog = ("Settings: environment variables, or the same names in lower case without the prefix "
                           "as keys of --config FILE (.yaml or .toml):\n\n\b\n" + "\n".join(lines))
        except ImportError:
            self.epilog = "The server needs its extra: pip install 'railguard[server]'"
        super().format_help(ctx, formatter)


@app.command(cls=_ServeCommand)
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8000)")] = None,
    guard: Annotated[str | None, typer.Option("--guard", help="guard to serve (default embedded)")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML or TOML file with server settings")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="server processes (default 1)")] = None,
    upstream: Annotated[str | None, typer.Option(
        "--upstream", help="OpenAI-compatible LLM API to guard, e.g. http://localhost:8080/v1: adds the "
                           "guarding proxy /v1/chat/completions")] = None,
    policy: Annotated[str | None, typer.Option(
        "--policy", help="policy preset (strict, children, ...) or YAML file for the served guard")] = None,
) -> None:
    """Run the moderation server: OpenAI-compatible /v1/moderations, native /v1/guard, audit log; with
    --upstream also a guarding proxy for chat completions."""
    settings_module = _import("railguard.server.settings", "server")
    run = _import("railguard.server.run", "server")
    settings = settings_module.ServerSettings.load(config, host=host, port=port, guard=guard, workers=workers,
                                                   upstream_url=upstream, policy=policy)
    run.serve(settings)


@app.command()
def redact(
    text: Annotated[str, typer.Argument(help="the text to redact")],
    entities: Annotated[str | None, typer.Option(
        help="comma-separated Presidio entities, e.g. EMAIL_ADDRESS,CREDIT_CARD [default: the default policy's]")] = None,
    style: Annotated[str, typer.Option("--style", help="type: <EMAIL_ADDRESS>; hash: <EMAIL_ADDRESS_1a2b3c4d>, "
                                                       "the same value giving the same token")] = "type",
    secrets: Annotated[bool, typer.Option("--secrets/--no-secrets", help="also redact API keys, tokens, "
                                                                         "private keys and passwords")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the findings and the redacted text as JSON")] = False,
) -> None:
    """Replace personal data and secrets in a text (needs: pip install 'railguard[pii]')."""
    rules = _import("railguard.guards.rules", "pii")
    names = [e.strip() for e in entities.split(",") if e.strip()] if entities else None
    if names is not None:
        from .policy import PII_ENTITIES

        unknown = [e for e in names if e not in PII_ENTITIES]
        if unknown:
            raise ConfigError(f"unknown PII entity {', '.join(unknown)}; known: {', '.join(PII_ENTITIES)}")
    guard = rules.RulesGuard(entities=names, redaction=style, secrets=secrets)
    verdict = guard.check([GuardInput(prompt=text)])[0]
    if as_json:
        typer.echo(json.dumps({"redacted_text": verdict.redacted_text,
                               "findings": [f.to_dict() for f in verdict.pii or ()]}, ensure_ascii=False))
    else:
        typer.echo(verdict.redacted_text)


policy_app = typer.Typer(cls=_Group, help="Show policy presets and files.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("show")
def policy_show(
    name: Annotated[str, typer.Argument(help="a preset (default, strict, permissive, children, enterprise) "
                                             "or a YAML policy file")],
    raw: Annotated[bool, typer.Option("--raw", help="print the preset's file as written, not merged")] = False,
) -> None:
    """Print a policy with everything it extends merged in (as YAML), after validating it."""
    import yaml

    from .policy import PRESETS, load_policy, preset_text

    policy = load_policy(name)
    if raw and name in PRESETS:
        typer.echo(preset_text(name), nl=False)
        return
    typer.echo(f"# policy {policy.name}")
    typer.echo(yaml.safe_dump(policy.to_dict(), sort_keys=False, allow_unicode=True, width=110,
                              default_flow_style=None), nl=False)


@policy_app.command("list")
def policy_list() -> None:
    """List the shipped presets."""
    from .policy import PRESETS, load_policy

    for name in PRESETS:
        typer.echo(f"{name:<11} {load_policy(name).description}")


audit_app = typer.Typer(cls=_Group, help="Read the server's audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

AuditUrl = Annotated[str | None, typer.Option("--url", help="audit store URL (default: RAILGUARD_AUDIT_URL, "
                                                             "the config file, or sqlite:///./railguard-audit.db)")]
AuditConfig = Annotated[Path | None, typer.Option("--config", help="server config file naming the audit store")]


class ExportFormat(str, enum.Enum):
    jsonl = "jsonl"
    parquet = "parquet"


def _audit_store(url: str | None, config: Path | None):
    audit = _import("railguard.audit", "server")
    if url is None:
        url = _import("railguard.server.settings", "server").ServerSettings.load(config).audit_url
    return audit, audit.open_store(url, create=False)


@audit_app.command("tail")
def audit_tail(
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="how many of the latest rows")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per row instead of a table")] = False,
    url: AuditUrl = None,
    config: AuditConfig = None,
) -> None:
    """Show the latest decisions."""
    audit, store = _audit_store(url, config)
    try:
        records = store.tail(lines)
    finally:
        store.close()
    if as_json:
        for record in records:
            typer.echo(json.dumps(record.to_dict(), ensure_ascii=False))
        return
    table = Table("time (UTC)", "request#item", "key", "guard", "flagged", "top category", "ms", box=box.SIMPLE,
                  title=f"last {len(records)} decisions (--json for every field)")
    table.columns[0].no_wrap = True
    for r in records:
        top = max(r.categories.items(), key=lambda kv: kv[1], default=None)
        flagged = ("[red]yes[/]" if r.flagged else "no") + (" (error)" if r.error else "")
        table.add_row(audit.iso_time(r.time)[:19].replace("T", " "), f"{r.request_id[:8]}#{r.item}",
                      r.key_id or "-", r.guard, flagged, f"{top[0]} {top[1]:.2f}" if top else "-",
                      f"{r.latency_ms:.1f}")
    Console(highlight=False).print(table)


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write ('-' writes JSONL to stdout)")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="jsonl or parquet")] = ExportFormat.jsonl,
    url: AuditUrl = None,
    config: AuditConfig = None,
) -> None:
    """Write every audit row to a JSONL or Parquet file."""
    if fmt is ExportFormat.parquet and str(out) == "-":
        raise ConfigError("Parquet cannot go to stdout; give a file with --out")
    audit, store = _audit_store(url, config)
    try:
        if fmt is ExportFormat.parquet:
            n = audit.export_parquet(store, out)
        elif str(out) == "-":
            n = audit.export_jsonl(store, sys.stdout)
        else:
            with open(out, "w", encoding="utf-8") as handle:
                n = audit.export_jsonl(store, handle)
    finally:
        store.close()
    typer.echo(f"exported {n:,} audit rows to {out}", err=True)



@app.command(name="check-action")
def check_action(
    kind: Annotated[str | None, typer.Option(help="click, type, submit, navigate or tool_call")] = None,
    target: Annotated[str | None, typer.Option(help="the text or label of the element acted on")] = None,
    url: Annotated[str | None, typer.Option(help="the page's URL (navigate: where it goes)")] = None,
    tag: Annotated[str | None, typer.Option(help="the element's tag, e.g. 'button type=\"submit\"'")] = None,
    title: Annotated[str | None, typer.Option(help="the page title")] = None,
    tool: Annotated[str | None, typer.Option(help="tool_call: the tool's name")] = None,
    arguments: Annotated[str | None, typer.Option(help="tool_call: its arguments (JSON or text)")] = None,
    text: Annotated[str | None, typer.Option(help="type: the text entered")] = None,
    task: Annotated[str | None, typer.Option(help="what the user asked the agent to do")] = None,
    in_path: Annotated[Path | None, typer.Option(
        "--input", help="JSON lines to check instead ('-': stdin): an action object, or {action, trajectory, "
                        "prompt, id}; prints one verdict JSON per line")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict as one JSON object")] = False,
    guard: Annotated[str, typer.Option("--guard", help="guard to run (agent, or embedded for text checks too)")] = "agent",
    policy: PolicyOption = None,
) -> None:
    """Judge an agent's proposed action: SAFE, LOW (confirm first) or HIGH (block)."""
    from .agent_io import action_from_options, inputs_from_lines

    g = load_guard(guard, policy=policy)
    if in_path is not None:
        handle = sys.stdin if str(in_path) == "-" else open(in_path, encoding="utf-8")
        try:
            for batch in inputs_from_lines(handle):
                for v in g.check(batch):
                    typer.echo(json.dumps(v.to_dict(), ensure_ascii=False))
        finally:
            if handle is not sys.stdin:
                handle.close()
        return
    action = action_from_options(kind=kind, target=target, url=url, element_tag=tag, page_title=title, tool=tool,
                                 arguments=arguments, text=text, task=task)
    verdict = g.check([GuardInput(action=action)])[0]
    if as_json:
        typer.echo(json.dumps(verdict.to_dict(), ensure_ascii=False))
        return
    console = Console(highlight=False)
    colour = {"SAFE": "green", "LOW": "yellow", "HIGH": "red"}.get(verdict.action_risk or "", "white")
    probs = ", ".join(f"{k} {v:.2f}" for k, v in (verdict.action_risk_probs or {}).items())
    console.print(f"[bold {colour}]{verdict.action_risk}[/] ({probs}) -> {verdict.action}")
    for reason in verdict.explanation or ():
        detail = f" ({reason.detail})" if reason.detail else ""
        console.print(f"  {reason.action}: {reason.rule}{detail}", markup=False)
    console.print(f"[dim]guard {verdict.tier}, {verdict.latency_ms:.1f} ms[/]")


feedback_app = typer.Typer(cls=_Group, help="Moderators' reviews from the audit store (see /review).",
                           no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write: .jsonl or .parquet")],
    all_items: Annotated[bool, typer.Option("--all", help="also the audited items nobody reviewed")] = False,
    url: AuditUrl = None,
    config: AuditConfig = None,
) -> None:
    """Write the reviewed items (text, verdict, scores and every review) to JSONL or Parquet."""
    feedback = _import("railguard.train.feedback", "train")
    _, store = _audit_store(url, config)
    try:
        n = feedback.export(store, out, reviewed_only=not all_items)
    finally:
        store.close()
    typer.echo(f"exported {n:,} {'audited' if all_items else 'reviewed'} items to {out}", err=True)


@app.command()
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
    improve_module = _import("railguard.train.improve", "train")
    settings = improve_module.ImproveConfig(
        flip_rate=flip_rate, gold=gold, noise_aware=noise_aware, propensity=propensity, propensity_clip=clip,
        feedback_weight=feedback_weight, max_f1_drop=max_f1_drop, force=force)
    _, store = _audit_store(from_store, config)
    try:
        report = improve_module.improve(store, out, data_dir=_data_dir(data), base_model=model, config=settings,
                                        progress=progress)
    finally:
        store.close()
    table = Table("benchmark", "old F1", "new F1", "old FPR", "new FPR", title="old vs new (test benchmarks)")
    for name, m in report["benchmarks"].items():
        table.add_row(name, _fmt(m["old"]["f1"]), _fmt(m["new"]["f1"]), _fmt(m["old"]["fpr"]), _fmt(m["new"]["fpr"]))
    for task, m in report["heldout_feedback"].items():
        table.add_row(f"held-out feedback: {task}", _fmt(m["old"]["f1"]), _fmt(m["new"]["f1"]),
                      _fmt(m["old"]["fpr"]), _fmt(m["new"]["fpr"]))
    console = Console(highlight=False)
    console.print(table)
    rates = ", ".join(f"{t} {r['pos']:.2f}/{r['neg']:.2f} ({r['source']})" for t, r in report["noise_rates"].items())
    console.print(f"flip rates: {rates}", soft_wrap=True)
    p = report["propensity"]
    console.print(f"reviewed items in training: {report['feedback_train_items']}; effective sample size after "
                  f"propensity weighting: {p['effective_sample_size']}", soft_wrap=True)
    typer.echo(f"model written to {out}; serve it with: railguard serve --guard embedded:{out}")


@app.command(name="mcp")
def mcp_server(guard: GuardName = "default", policy: PolicyOption = None) -> None:
    """Serve railguard to MCP clients on stdio: tools moderate, check_action and redact (needs the mcp extra;
    redact also the pii extra)."""
    integration = _import("railguard.integrations.mcp", "mcp")
    integration.serve_guard(load_guard(guard, policy=policy), policy=policy)


@app.command(name="mcp-gateway")
def mcp_gateway(
    command: Annotated[list[str], typer.Argument(help="the MCP server to guard and its arguments, after --, e.g. "
                                                      "railguard mcp-gateway -- npx @modelcontextprotocol/server-everything")],
    guard: GuardName = "default",
    policy: PolicyOption = None,
) -> None:
    """Guard another MCP server (stdio): tools whose descriptions hide instructions are left out, tool results that
    hold prompt injections are withheld, or both annotated where the policy flags (needs the mcp extra)."""
    integration = _import("railguard.integrations.mcp", "mcp")
    import anyio

    g = load_guard(guard, policy=policy)
    anyio.run(integration.run_gateway, g, command)
