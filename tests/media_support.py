"""Synthetic media for the tests and bench/media.py: text drawn on noisy images (Pillow), sentences spoken by espeak-ng.

Nothing here is used to judge anything; it makes inputs whose true text is known.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import textwrap
from functools import lru_cache
from pathlib import Path

import numpy as np

from railguard.errors import ConfigError, require

# TrueType fonts found on common Linux machines (Debian fonts-dejavu-core, fonts-liberation).
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts", "C:/Windows/Fonts")
_PREFERRED = ("DejaVuSans.ttf", "LiberationSerif-Regular.ttf", "DejaVuSansMono.ttf", "LiberationSans-Bold.ttf",
              "DejaVuSerif.ttf", "LiberationSans-Regular.ttf")


@lru_cache(maxsize=1)
def font_files() -> tuple[Path, ...]:
    """Up to six distinct TrueType fonts on this machine, preferred ones first (empty when there are none)."""
    found: dict[str, Path] = {}
    for folder in FONT_DIRS:
        root = Path(folder)
        if root.is_dir():
            for path in sorted(root.rglob("*.ttf")):
                found.setdefault(path.name, path)
    ordered = [found[name] for name in _PREFERRED if name in found]
    return tuple(ordered or sorted(found.values())[:6])


def _font(index: int, size: int):
    font_module = require("PIL.ImageFont", "vision")
    files = font_files()
    if files:
        return font_module.truetype(str(files[index % len(files)]), size)
    return font_module.load_default(size=size)  # Pillow's own scalable font


def text_image(text: str, *, width: int = 1024, height: int = 768, font: int = 0, size: int = 28,
               noise: float = 40.0, seed: int = 0, fmt: str = "PNG", wrap: int | None = None) -> bytes:
    """``text`` drawn dark on a light, noisy background with coloured blobs; PNG (or ``fmt``) bytes."""
    image_module = require("PIL.Image", "vision")
    draw_module = require("PIL.ImageDraw", "vision")
    rng = np.random.default_rng(seed)
    base = rng.integers(175, 235, size=3)
    pixels = base + rng.normal(0.0, noise, size=(height, width, 3))
    image = image_module.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = draw_module.Draw(image)
    for _ in range(6):  # soft shapes behind the text, as in a meme or a web page
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(20, 120))
        colour = tuple(int(c) for c in rng.integers(150, 255, size=3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    face = _font(font, size)
    chars = wrap or max(12, int(width * 0.9 / (size * 0.55)))
    y = int(height * 0.12)
    ink = tuple(int(c) for c in rng.integers(0, 60, size=3))
    for line in textwrap.wrap(text, chars):
        draw.text((int(width * 0.05), y), line, font=face, fill=ink)
        y += int(size * 1.5)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speech_wav(text: str, *, voice: str = "en-us", speed: int = 160) -> bytes:
    """``text`` spoken by espeak-ng, as WAV bytes (ConfigError when espeak-ng is not installed)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ConfigError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(path), "--", text], check=True,
                       capture_output=True, timeout=60)
        return path.read_bytes()


def silence_wav(seconds: float, rate: int = 16_000) -> bytes:
    """A WAV of silence (for the length limit)."""
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
    return out.getvalue()
