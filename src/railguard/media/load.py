"""Reading images and audio from bytes or paths, with clear errors for everything a user can get wrong.

Nothing here runs a model: an image is opened with Pillow (its header first, so that the size limits apply
before any pixel is decoded), audio is decoded with PyAV (through faster-whisper) to 16 kHz mono.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MediaSettings
from ..errors import MediaError, require

IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
AUDIO_FORMATS = ("WAV", "MP3", "FLAC", "OGG", "M4A/MP4", "WebM")
SAMPLE_RATE = 16_000


def read_bytes(item: bytes | str | os.PathLike, *, limit: int, source: str) -> bytes:
    """The bytes of a media item, refusing missing files and anything over ``limit`` bytes before reading it."""
    if isinstance(item, bytes):
        data = item
    else:
        path = Path(item)
        try:
            size = path.stat().st_size
            if size > limit:
                raise MediaError(f"{path} is {size:,} bytes; the limit is {limit:,}", code="too_large",
                                 source=source)
            data = path.read_bytes()
        except IsADirectoryError:
            raise MediaError(f"{path} is a folder, not a file", code="unreadable", source=source) from None
        except OSError as exc:
            raise MediaError(f"cannot read {path}: {exc.strerror or exc}", code="unreadable",
                             source=source) from None
    if len(data) > limit:
        raise MediaError(f"{len(data):,} bytes; the limit is {limit:,}", code="too_large", source=source)
    if not data:
        raise MediaError("the file is empty", code="corrupt", source=source)
    return data


@dataclass(frozen=True, slots=True)
class Picture:
    pixels: np.ndarray  # height x width x 3, uint8, BGR (what OpenCV and RapidOCR expect)
    format: str


def load_image(item: bytes | str | os.PathLike, settings: MediaSettings, *, source: str = "image") -> Picture:
    """Decode one image; MediaError (with a code) for a missing, corrupt, unsupported or oversized one."""
    image_module = require("PIL.Image", "vision")
    data = read_bytes(item, limit=settings.max_image_bytes, source=source)
    try:
        image = image_module.open(io.BytesIO(data))
    except image_module.UnidentifiedImageError:
        raise MediaError(f"not a supported image; send {', '.join(IMAGE_FORMATS)}", code="unsupported_format",
                         source=source) from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for broken headers
        raise MediaError(f"the image is corrupt ({type(exc).__name__})", source=source) from None
    if image.format not in IMAGE_FORMATS:
        raise MediaError(f"{image.format} images are not supported; send {', '.join(IMAGE_FORMATS)}",
                         code="unsupported_format", source=source)
    width, height = image.size
    if width * height > settings.max_image_pixels:
        raise MediaError(f"{width}x{height} pixels; the limit is {settings.max_image_pixels:,} pixels",
                         code="too_large", source=source)
    if width < 1 or height < 1:
        raise MediaError("the image has no pixels", source=source)
    try:
        image.load()
        image = _flatten(image, image_module)
    except Exception as exc:  # noqa: BLE001 - truncated or broken pixel data
        raise MediaError(f"the image is corrupt or truncated ({type(exc).__name__})", source=source) from None
    return Picture(np.ascontiguousarray(np.asarray(image)[:, :, ::-1]), image.format or "")


def _flatten(image: Any, image_module: Any) -> Any:
    """RGB on white: transparent text (a common screenshot case) must not turn black on black."""
    fmt = image.format
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = image_module.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = image_module.alpha_composite(background, rgba)
    image = image.convert("RGB")
    image.format = fmt
    return image


_AUDIO_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"RIFF", "WAV"), (0, b"ID3", "MP3"), (0, b"fLaC", "FLAC"), (0, b"OggS", "OGG"),
    (4, b"ftyp", "M4A/MP4"), (0, b"\x1a\x45\xdf\xa3", "WebM"), (0, b"FORM", "AIFF"),
)


def audio_format(data: bytes) -> str | None:
    """The container a clip's first bytes announce (None when none we read)."""
    for offset, magic, name in _AUDIO_MAGIC:
        if data[offset:offset + len(magic)] == magic:
            return name
    if len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:  # an MPEG audio frame without ID3
        return "MP3"
    return None


@dataclass(frozen=True, slots=True)
class Clip:
    samples: np.ndarray  # float32 mono at SAMPLE_RATE
    format: str

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def load_audio(item: bytes | str | os.PathLike, settings: MediaSettings, *, source: str = "audio") -> Clip:
    """Decode one clip to 16 kHz mono; MediaError for a missing, corrupt, unsupported, large or long one."""
    data = read_bytes(item, limit=settings.max_audio_bytes, source=source)
    fmt = audio_format(data)
    if fmt is None:
        raise MediaError(f"not a supported audio file; send {', '.join(AUDIO_FORMATS)}",
                         code="unsupported_format", source=source)
    decode = require("faster_whisper.audio", "audio").decode_audio
    declared = _declared_seconds(data)
    if declared is not None and declared > settings.max_audio_seconds:
        raise MediaError(f"{declared:.1f} s of audio; the limit is {settings.max_audio_seconds:g} s",
                         code="too_long", source=source)
    try:
        samples = decode(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # noqa: BLE001 - PyAV raises its own error types for broken streams
        raise MediaError(f"the {fmt} audio is corrupt or cannot be decoded ({type(exc).__name__})",
                         source=source) from None
    clip = Clip(np.asarray(samples, dtype=np.float32), fmt)
    if clip.seconds > settings.max_audio_seconds:
        raise MediaError(f"{clip.seconds:.1f} s of audio; the limit is {settings.max_audio_seconds:g} s",
                         code="too_long", source=source)
    if clip.samples.size == 0:
        raise MediaError(f"the {fmt} file holds no audio", source=source)
    return clip


def _declared_seconds(data: bytes) -> float | None:
    """The duration a container declares, read without decoding (None when it declares none or is broken:
    decoding then says what is wrong, and the decoded length is checked)."""
    av = require("av", "audio")
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if container.duration:
                return float(container.duration) / av.time_base
    except Exception:  # noqa: BLE001 - reported by the decoder with a clearer message
        return None
    return None
