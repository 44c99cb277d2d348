"""The limits and reader settings for images and audio: :class:`railguard.config.MediaSettings`, a record of the
settings tree (read once from the environment, ``RAILGUARD_*``, at an entry point)."""

from __future__ import annotations

from ..config import MediaSettings

__all__ = ["MediaSettings"]
