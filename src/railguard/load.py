"""A guard name -> the guard it stands for, with its policy and media wrappers, built explicitly.

:mod:`railguard.registry` knows the factories; this module puts the wrappers around what they build, and builds
the layers a policy wrapper holds (:func:`under_policy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .guard import Guard, HasEncoder
from .registry import _split, build

if TYPE_CHECKING:
    from .custom_categories import CustomCategoryScorer
    from .guards.policy import PolicyGuard
    from .policy import Policy


def resolve(name: str, *, policy=None, **options) -> Guard:
    """Build the guard a name stands for; with ``policy`` (a preset name, a YAML path, a mapping or a
    :class:`railguard.policy.Policy`) wrapped so that the policy decides (see :mod:`railguard.policy`)."""
    # The wrappers are imported here, not at the top: ``import railguard`` stays light (no numpy).
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
    return with_media(under_policy(guard, policy))


def under_policy(guard: Guard, policy: Policy | str | dict, *, encoder: Any = None) -> PolicyGuard:
    """``guard`` under ``policy``, with the layers the policy needs built here and handed in: the PII/secrets
    scanner (``guard`` itself when it is the ``rules`` guard, else one made from the policy's ``pii`` and
    ``secrets`` sections, when either is on) and the custom-category scorer (on ``encoder``; by default the
    guard's own encoder, or the shipped embedded model's for a guard without one)."""
    from .guards.policy import PolicyGuard
    from .guards.rules import RulesGuard
    from .policy import load_policy

    policy = load_policy(policy)
    if isinstance(guard, RulesGuard):
        rules: RulesGuard | None = guard  # the guard is the scanner: one scan, not two
    else:
        rules = RulesGuard.from_policy(policy) if policy.needs_rules else None
    return PolicyGuard(guard, policy, rules=rules, custom=_custom_scorer(policy, guard, encoder))


def _custom_scorer(policy: Policy, guard: Guard, encoder: Any) -> CustomCategoryScorer | None:
    if not policy.custom_categories:
        return None
    from .custom_categories import CustomCategoryScorer, encoder_sha256

    if encoder is not None:
        return CustomCategoryScorer(policy.custom_categories, encoder)
    source = guard if isinstance(guard, HasEncoder) else build("embedded")  # a guard without one borrows it
    return CustomCategoryScorer(policy.custom_categories, source.encoder, encoder_id=encoder_sha256(source))
