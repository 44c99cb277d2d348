"""Guard names -> factories, and nothing else. Backends register themselves; :mod:`railguard.load` registers the
guards made of guards (``cascade``, ``default``: it composes them from guards built by name) and builds a name
with its wrappers.

This module imports no backend, no composition and no wrapper (they import it to register).

A name is ``kind`` or ``kind:argument`` (``embedded``, ``hf:path/to/model``, ``peer:svguardian``);
the part after the first colon is passed to the factory.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from .config import Settings
from .errors import ConfigError, installed
from .guard import Guard


Factory = Callable[..., Guard]
_FACTORIES: dict[str, Factory] = {}
_DESCRIPTIONS: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Needs:
    """What a guard kind needs beyond the core install: the ``extra`` holding its ``modules``, and whether its
    name needs an argument (``hf:/path``) to be built at all."""

    extra: str | None = None
    modules: tuple[str, ...] = ()
    argument: bool = False
    members: Callable[[str], list[str]] | None = None  # a guard made of guards: its argument -> their names
    settings: bool = False  # the factory takes the settings tree (``settings=``, a railguard.config.Settings)


_NEEDS: dict[str, Needs] = {}
# Backends that live in their own module, imported only when their name is asked for.
_LAZY_MODULES: dict[str, str] = {
    "cascade": "railguard.load",  # guards made of guards are composed by the loader
    "default": "railguard.load",
    "embedded": "railguard.guards.embedded",
    "e5": "railguard.guards.e5",
    "peer": "railguard.guards.peers",
    "rules": "railguard.guards.rules",
    "hf": "railguard.guards.hf_generative",
    "endpoint": "railguard.guards.endpoint",
    "openai-moderation": "railguard.guards.openai_moderation",
    "agent": "railguard.agent.guard",
}


def register(kind: str, description: str = "", *, extra: str | None = None, modules: tuple[str, ...] = (),
             argument: bool = False, members: Callable[[str], list[str]] | None = None, settings: bool = False
             ) -> Callable[[Factory], Factory]:
    """Decorator: make ``factory(argument: str | None, **options)`` resolvable as ``kind[:argument]``; ``extra``
    and ``modules`` declare the optional packages it needs, ``argument`` that a bare ``kind`` cannot be built,
    ``members`` (for a guard made of guards) the names of the guards its argument builds, ``settings`` that the
    factory takes the settings tree as ``settings=`` (the others are never handed it)."""

    def wrap(factory: Factory) -> Factory:
        _FACTORIES[kind] = factory
        _DESCRIPTIONS[kind] = description or (factory.__doc__ or "").strip().split("\n")[0]
        _NEEDS[kind] = Needs(extra, tuple(modules), argument, members, settings)
        return factory

    return wrap


def unregister(kind: str) -> None:
    """Forget a name :func:`register` made resolvable (a plugin unloaded, a test's own guard)."""
    for table in (_FACTORIES, _DESCRIPTIONS, _NEEDS):
        table.pop(kind, None)


def _factory(kind: str) -> Factory:
    if kind not in _FACTORIES and kind in _LAZY_MODULES:
        importlib.import_module(_LAZY_MODULES[kind])
    try:
        return _FACTORIES[kind]
    except KeyError:
        known = ", ".join(sorted(available()))
        raise ConfigError(f"unknown guard '{kind}'; known guards: {known}") from None


def _split(name: str) -> tuple[str, str | None]:
    """``kind[:argument]`` -> (kind, argument or None); ConfigError for a name that is not a string."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("a guard name must be a non-empty string such as 'embedded'")
    kind, _, argument = name.strip().partition(":")
    return kind, argument or None


def build(name: str, *, settings: Settings | None = None, **options) -> Guard:
    """The bare guard a name stands for: no policy, no media wrapper (for guards made of guards). ``settings`` go
    to a factory that declared it takes them (else it reads the environment itself, when it reads it at all)."""
    kind, argument = _split(name)
    factory = _factory(kind)
    if settings is not None and _NEEDS.get(kind, Needs()).settings:
        return factory(argument, settings=settings, **options)
    return factory(argument, **options)


def known_guard(name: str) -> None:
    """ConfigError unless ``name`` is a guard the registry can build (its model is not loaded)."""
    _factory(_split(name)[0])


def available() -> dict[str, str]:
    """Known guard kinds and a one-line description of each."""
    for kind in _LAZY_MODULES:
        if kind not in _FACTORIES:
            try:
                importlib.import_module(_LAZY_MODULES[kind])
            except ImportError:
                continue
    return dict(sorted(_DESCRIPTIONS.items()))


def needs(kind: str) -> Needs:
    """What a known guard kind declared it needs (ConfigError for an unknown kind)."""
    _factory(kind)
    return _NEEDS.get(kind, Needs())


def missing_extra(kind: str) -> str | None:
    """The extra to install before ``kind`` can be built here (None when its packages are all importable)."""
    declared = needs(kind)
    return declared.extra if not all(map(installed, declared.modules)) else None


def name_missing_extra(name: str) -> str | None:
    """The extra to install before the guard ``name`` (``kind[:argument]``) can be built here, its members' too
    for a guard made of guards (None when nothing is missing; ConfigError for an unknown kind or bad argument)."""
    kind, argument = _split(name)
    extra = missing_extra(kind)
    members = needs(kind).members
    if extra is not None or members is None or argument is None:
        return extra
    return next((e for m in members(argument) if (e := name_missing_extra(m)) is not None), None)
