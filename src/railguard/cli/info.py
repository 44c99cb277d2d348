"""``info``: the version, the model files, the settings and the guards."""

from __future__ import annotations

import dataclasses

import typer

from .. import __version__
from ..errors import ModelError


def info() -> None:
    """Show the version, the model files in use, the settings and the available guards."""
    from ..config import Settings
    from ..models.artifacts import EMBEDDED_DIR, MANIFEST, read_manifest
    from ..registry import available

    settings = Settings.from_env().core
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
