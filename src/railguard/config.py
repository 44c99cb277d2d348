"""Settings, read once from the environment (``RAILGUARD_*``) with sensible defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError


def _default_data_dir() -> Path:
    # The shared data folder sits next to a checkout of the repository.
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
        candidate = parent.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "data"


def _number(name: str, default, convert, what: str, minimum, above: bool = False):
    """An environment variable as a number (``convert``: int or float) at least ``minimum`` (above it when
    ``above``), else ``default`` when unset; ConfigError naming the variable otherwise."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = convert(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None
    if value < minimum or (above and value == minimum):
        raise ConfigError(f"{name} must be {'above' if above else 'at least'} {minimum}, got {raw}")
    return value


def _int(name: str, default: int) -> int:
    return _number(name, default, int, "a whole number", 1)


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = field(default_factory=_default_data_dir)
    threads: int = 2
    batch_size: int = 32
    model_dir: Path | None = None

    @classmethod
    def from_env(cls) -> Settings:
        data = os.environ.get("RAILGUARD_DATA")
        model = os.environ.get("RAILGUARD_MODEL_DIR")
        return cls(
            data_dir=Path(data) if data else _default_data_dir(),
            threads=_int("RAILGUARD_THREADS", 2),
            batch_size=_int("RAILGUARD_BATCH_SIZE", 32),
            model_dir=Path(model) if model else None,
        )


def settings() -> Settings:
    return Settings.from_env()
