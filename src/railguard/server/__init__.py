"""The moderation server: ``create_app()`` for ASGI hosts, ``serve()`` for ``railguard serve``.

Needs the ``server`` extra (``pip install 'railguard[server]'``). Names are imported on first use, so
``railguard.server.audit`` (an old name of :mod:`railguard.audit`) works without the web framework installed.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["create_app", "serve", "ServerSettings"]
_HOMES = {"create_app": ".app", "serve": ".run", "ServerSettings": ".settings"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
