"""Images and audio into the same guard: OCR and speech-to-text, offline (extras ``vision`` and ``audio``).

``railguard.load_guard()`` already returns a guard that takes ``GuardInput(images=[...], audio=[...])``;
see :mod:`railguard.media.guard` for which task each part feeds and how the verdict explains it.
"""

from __future__ import annotations

from ..config import MediaSettings
from .guard import MediaGuard, extract, validate, with_media

__all__ = ["MediaGuard", "MediaSettings", "extract", "validate", "with_media"]
