"""What every command shares: the error handling group, the common options, lazy imports of the extras."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ..config import Settings
from ..errors import ConfigError, MissingExtraError, RailguardError

EXIT_ERROR = 2


class Group(TyperGroup):
    """Turns the errors we raise on purpose into one line on stderr instead of a traceback."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RailguardError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{exc.strerror}: {exc.filename}" if exc.filename and exc.strerror else str(exc))


def fail(message: str) -> None:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(EXIT_ERROR)


GuardName = Annotated[str, typer.Option("--guard", help="guard to run, by registry name (see `railguard info`)")]
DataDir = Annotated[Path | None, typer.Option("--data", help="the datasets folder [default: RAILGUARD_DATA "
                                                              "or the shared data folder]")]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="show a progress bar on stderr")]
PolicyOption = Annotated[str | None, typer.Option(
    "--policy", help="a policy preset (default, strict, permissive, children, enterprise) or a YAML policy file")]


def import_extra(module: str, extra: str):
    """Import a heavy part of railguard only when its command runs, with a clear message when it cannot be."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise ConfigError(f"{module} is not part of this railguard installation") from None
        raise MissingExtraError(extra, (exc.name or "a dependency").split(".")[0]) from None


def data_dir(data: Path | None, settings: Settings) -> Path:
    """The datasets folder: ``--data``, else the settings' (RAILGUARD_DATA or the shared data folder)."""
    return data if data is not None else settings.core.data_dir


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
