"""Limits and reader settings for images and audio, read from the environment (``RAILGUARD_*``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import _int, _number
from ..errors import ConfigError


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
class MediaSettings:
    """``max_image_bytes``/``max_image_pixels``: larger images are refused (the pixel limit also stops
    decompression bombs); ``max_audio_bytes``/``max_audio_seconds``: the same for audio.
    ``ocr_side``: the text detector sees the image scaled so that its longer side is at most this many
    pixels (speed against small print; 0 leaves RapidOCR's own sizing); ``ocr_angle``: also run the 180-degree text classifier (upside-down
    text; off for speed, screenshots are upright); ``speech_beam``: Whisper's beam width (5, faster-whisper's
default: fewer word errors than greedy 1 at about the same speed here); ``threads``: CPU threads of each reader."""

    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_audio_bytes: int = 50 * 1024 * 1024
    max_audio_seconds: float = 300.0
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
