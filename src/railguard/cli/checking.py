"""``check``, ``moderate``, ``redact`` and ``check-action``: texts, files and agent actions through a guard."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .. import load_guard
from ..agent.io import action_from_options, inputs_from_lines
from ..config import Settings
from ..errors import ConfigError
from ..types import GuardInput
from .common import GuardName, PolicyOption, Progress, import_extra
from .render import print_verdict


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
    settings = Settings.from_env()
    if item.has_media:
        from ..media import validate  # here, not at the top: every `railguard` command would load numpy

        validate(item, settings.media)  # a bad file fails in a second, before any model loads
    verdict = load_guard(guard, policy=policy, settings=settings).check([item])[0]
    if as_json:
        typer.echo(json.dumps(verdict.to_dict(), ensure_ascii=False))
    else:
        print_verdict(verdict)


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
    from ..batch.local import moderate_file

    summary = moderate_file(in_path, out, guard, batch_size=batch_size, text_field=text_field,
                            response_field=response_field, id_field=id_field, context_field=context_field,
                            progress=progress, resume=resume, engine=engine, workers=workers, address=address,
                            policy=policy, settings=Settings.from_env())
    skipped = f", skipped (already in {summary.out_path.name}): {summary.skipped:,}" if summary.skipped else ""
    typer.echo(f"rows: {summary.rows:,}, flagged: {summary.flagged:,}, errors: {summary.errors:,}{skipped}, "
               f"{summary.rows_per_s:,.1f} rows/s -> {summary.out_path}", err=True)


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
    rules = import_extra("railguard.guards.rules", "pii")
    names = [e.strip() for e in entities.split(",") if e.strip()] if entities else None
    if names is not None:
        from ..policy import PII_ENTITIES

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
