"""``railguard feedback``: moderators' reviews out of the audit store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .audit import AuditConfig, AuditUrl, open_audit_store
from .common import Group, import_extra

app = typer.Typer(cls=Group, help="Moderators' reviews from the audit store (see /review).",
                           no_args_is_help=True)


@app.command("export")
def feedback_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write: .jsonl or .parquet")],
    all_items: Annotated[bool, typer.Option("--all", help="also the audited items nobody reviewed")] = False,
    url: AuditUrl = None,
    config: AuditConfig = None,
) -> None:
    """Write the reviewed items (text, verdict, scores and every review) to JSONL or Parquet."""
    feedback = import_extra("railguard.train.feedback", "train")
    _, store = open_audit_store(url, config)
    try:
        n = feedback.export(store, out, reviewed_only=not all_items)
    finally:
        store.close()
    typer.echo(f"exported {n:,} {'audited' if all_items else 'reviewed'} items to {out}", err=True)
