"""railguard: offline, CPU-fast guardrails for LLM applications and agents.

>>> import railguard
>>> guard = railguard.load_guard()
>>> guard.check([railguard.GuardInput(prompt="How do I kill a Python process?")])[0].flagged
False
"""

from __future__ import annotations

from functools import lru_cache

from .config import Settings
from .errors import ConfigError, InputError, MissingExtraError, ModelError, RailguardError
from .agent.actions import Action, Turn
from .guard import Guard
from .load import resolve as _resolve
from .batch.local import moderate_dataset
from .types import TASKS, GuardInput, Task, Verdict


__version__ = "0.1.0"

__all__ = [
    "Guard", "GuardInput", "Verdict", "Task", "TASKS", "Action", "Turn",
    "RailguardError", "InputError", "ConfigError", "ModelError", "MissingExtraError",
    "load_guard", "check", "moderate_dataset", "__version__",
]


def load_guard(name: str = "default", *, policy=None, settings: Settings | None = None, **options) -> Guard:
    """Build a guard by registry name. ``default`` judges English with ``embedded`` (the shipped offline model)
    and every other language with ``e5`` (the multilingual tier), routed by language.

    ``policy`` (a preset such as ``"strict"``, a YAML file path, a mapping or a Policy) puts the guard
    under a policy: thresholds, actions, PII and secrets, custom categories (:mod:`railguard.policy`).
    ``settings`` (a :class:`railguard.config.Settings`) are what its parts are built with; read from the
    environment, once, when not given.
    """
    return _resolve(name, policy=policy, settings=settings, **options)


@lru_cache(maxsize=4)
def _cached(name: str) -> Guard:
    return load_guard(name)


def check(prompt: str, response: str | None = None, *, guard: str = "default") -> Verdict:
    """Check one prompt (and optionally the model's response) with a cached guard."""
    return _cached(guard).check([GuardInput(prompt=prompt, response=response)])[0]
