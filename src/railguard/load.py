"""A guard name -> the guard it stands for, with its policy and media wrappers, built explicitly.

:mod:`railguard.registry` knows the factories; this module puts the wrappers around what they build.
"""

from __future__ import annotations

from .guard import Guard
from .registry import _split, build


def resolve(name: str, *, policy=None, **options) -> Guard:
    """Build the guard a name stands for; with ``policy`` (a preset name, a YAML path, a mapping or a
    :class:`railguard.policy.Policy`) wrapped so that the policy decides (see :mod:`railguard.policy`)."""
    # The wrappers are imported here, not at the top: ``import railguard`` stays light (no numpy).
    from .guards.policy import PolicyGuard
    from .media.guard import with_media  # the OCR and speech models load on the first image or clip
    from .policy import load_policy

    kind, _ = _split(name)
    if policy is not None:
        policy = load_policy(policy)  # a bad policy fails before any model loads
        if kind == "cascade":  # a policy may say how its cascade routes
            options = {**policy.cascade_options(), **options}
    guard = build(name, **options)
    if policy is None:
        return with_media(guard)
    return with_media(PolicyGuard(guard, policy))
