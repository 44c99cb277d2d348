"""``railguard audit``: the server's audit log, tailed or exported."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from .common import Group, import_extra

app = typer.Typer(cls=Group, help="Read the server's audit log.", no_args_is_help=True)

AuditUrl = Annotated[str | None, typer.Option("--url", help="audit store URL (default: RAILGUARD_AUDIT_URL, "
                                                             "the config file, or sqlite:///./railguard-audit.db)")]
AuditConfig = Annotated[Path | None, typer.Option("--config", help="server config file naming the audit store")]


class ExportFormat(str, enum.Enum):
    jsonl = "jsonl"
    parquet = "parquet"


def open_audit_store(url: str | None, config: Path | None):
    audit = import_extra("railguard.audit", "server")
    if url is None:
        url = import_extra("railguard.server.settings", "server").ServerSettings.load(config).audit_url
    return audit, audit.open_store(url, create=False)


@app.command("tail")
def audit_tail(
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="how many of the latest rows")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per row instead of a table")] = False,
    url: AuditUrl = None,
    config: AuditConfig = None,
) -> None:
    """Show the latest decisions."""
    audit, store = open_audit_store(url, config)
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


@app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write ('-' writes JSONL to stdout)")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="jsonl or parquet")] = ExportFormat.jsonl,
    url: AuditUrl = None,
    config: AuditConfig = None,
) -> None:
    """Write every audit row to a JSONL or Parquet file."""
    if fmt is ExportFormat.parquet and str(out) == "-":
        raise ConfigError("Parquet cannot go to stdout; give a file with --out")
    audit, store = open_audit_store(url, config)
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
