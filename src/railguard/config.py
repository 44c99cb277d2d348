"""The settings tree: read from the environment (``RAILGUARD_*``, with sensible defaults) once, at an entry point,
and passed down.

:class:`Settings` holds one frozen record per concern: ``core`` (threads, batch size, the model and data folders),
``media`` (the limits on images and audio, the readers' settings) and, in a server, ``server``
(:class:`railguard.server.settings.ServerSettings`, whose media limits are the same ``media`` record). The entry
points read it (the CLI's commands, the server's app factory and ``railguard serve``, :func:`railguard.load_guard`
when given none); the guards and jobs they build take the record they need as a parameter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .server.settings import ServerSettings


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


def _float(name: str, default: float) -> float:
    return _number(name, default, float, "a number", 0, above=True)


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True, slots=True)
class CoreSettings:
    """What every guard and job reads: ``data_dir`` (the datasets), ``threads`` and ``batch_size`` (of an encoder),
    ``model_dir`` (a model folder in place of the shipped one)."""

    data_dir: Path = field(default_factory=_default_data_dir)
    threads: int = 2
    batch_size: int = 32
    model_dir: Path | None = None

    @classmethod
    def from_env(cls) -> CoreSettings:
        data = os.environ.get("RAILGUARD_DATA")
        model = os.environ.get("RAILGUARD_MODEL_DIR")
        return cls(
            data_dir=Path(data) if data else _default_data_dir(),
            threads=_int("RAILGUARD_THREADS", 2),
            batch_size=_int("RAILGUARD_BATCH_SIZE", 32),
            model_dir=Path(model) if model else None,
        )


def _limit(default: int | float, description: str):
    """A media limit: also a server setting of the same name (its description is the one ``serve --help`` shows);
    a whole number at least 1, or a number above 0."""
    return field(default=default, metadata={"limit": description})


@dataclass(frozen=True, slots=True)
class MediaSettings:
    """``max_image_bytes``/``max_image_pixels``: larger images are refused (the pixel limit also stops
    decompression bombs); ``max_audio_bytes``/``max_audio_seconds``: the same for audio.
    ``ocr_side``: the text detector sees the image scaled so that its longer side is at most this many
    pixels (speed against small print; 0 leaves RapidOCR's own sizing); ``ocr_angle``: also run the 180-degree text classifier (upside-down
    text; off for speed, screenshots are upright); ``speech_beam``: Whisper's beam width (5, faster-whisper's
default: fewer word errors than greedy 1 at about the same speed here); ``threads``: CPU threads of each reader."""

    max_image_bytes: int = _limit(20 * 1024 * 1024, "largest accepted image in bytes (else 413); raise "
                                                     "max_body_bytes to send large images")
    max_image_pixels: int = _limit(40_000_000, "largest accepted image in pixels (else 413)")
    max_audio_bytes: int = _limit(50 * 1024 * 1024, "largest accepted audio clip in bytes (else 413)")
    max_audio_seconds: float = _limit(300.0, "longest accepted audio clip in seconds (else 413)")
    ocr_side: int = 736
    ocr_angle: bool = False
    speech_beam: int = 5
    threads: int = 2

    @classmethod
    def from_env(cls) -> MediaSettings:
        d = cls()
        return cls(
            max_image_bytes=_int("RAILGUARD_MAX_IMAGE_BYTES", d.max_image_bytes),
            max_image_pixels=_int("RAILGUARD_MAX_IMAGE_PIXELS", d.max_image_pixels),
            max_audio_bytes=_int("RAILGUARD_MAX_AUDIO_BYTES", d.max_audio_bytes),
            max_audio_seconds=_float("RAILGUARD_MAX_AUDIO_SECONDS", d.max_audio_seconds),
            ocr_side=0 if os.environ.get("RAILGUARD_OCR_SIDE", "").strip() == "0"
            else _int("RAILGUARD_OCR_SIDE", d.ocr_side),
            ocr_angle=_bool("RAILGUARD_OCR_ANGLE", d.ocr_angle),
            speech_beam=_int("RAILGUARD_SPEECH_BEAM", d.speech_beam),
            threads=_int("RAILGUARD_THREADS", d.threads),
        )


#: The media limits, {name: description}: settings of the server too, each under its own name.
MEDIA_LIMITS: dict[str, str] = {f.name: f.metadata["limit"] for f in fields(MediaSettings) if "limit" in f.metadata}


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole tree (see the module docstring); ``server`` is set in a server only."""

    core: CoreSettings = field(default_factory=CoreSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    server: ServerSettings | None = None

    @classmethod
    def from_env(cls) -> Settings:
        """The tree as the environment says now: for an entry point, once."""
        return cls(core=CoreSettings.from_env(), media=MediaSettings.from_env())
