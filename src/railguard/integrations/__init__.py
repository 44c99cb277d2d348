"""Adapters that put railguard's rails into the libraries LLM apps already use, one module (and one extra) each.

Each is a thin layer over the one Guard contract (``load_guard(...).check(inputs)``) and the shared rail
decisions of :mod:`railguard.rails`; none holds model logic.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..guard import Guard


def resolve_guard(guard: Guard | str, policy: Any = None) -> Guard:
    """The guard an integration runs: a Guard as it is, or a registry name (``embedded``, ``cascade``, ...) loaded
    under ``policy`` (a preset, a YAML file or a mapping)."""
    if isinstance(guard, str):
        from .. import load_guard

        return load_guard(guard, policy=policy)
    if policy is not None:
        raise InputError("give policy= with a guard name; a Guard object already has its policy "
                         "(load_guard(name, policy=...))")
    return guard
