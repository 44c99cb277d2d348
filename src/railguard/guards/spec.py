"""Guard names with options: ``kind:target?key=value&key=value`` (``hf:/models/wildguard?batch_size=4``).

The options after ``?`` and the keyword options of :func:`railguard.load_guard` fill the same frozen
dataclass, so a backend declares its options once (with types and defaults) and both ways of giving
them are checked the same way: an unknown key or a value of the wrong type is a ConfigError naming it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from ..errors import ConfigError

T = TypeVar("T")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def split(argument: str | None, *, kind: str, example: str) -> tuple[str, dict[str, str]]:
    """``target?k=v&k2=v2`` -> (target, {k: v, k2: v2}); a missing target is a ConfigError showing ``example``."""
    target, _, query = (argument or "").partition("?")
    target = target.strip()
    if not target:
        raise ConfigError(f"name what the {kind} guard should use, e.g. {example}")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigError(f"cannot read the options '?{query}' of {kind}:{target}; write ?key=value&key=value") from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if key in options:
            raise ConfigError(f"option '{key}' is given twice in {kind}:{target}")
        options[key] = value
    return target, options


def _convert(kind: str, key: str, value: Any, hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    base = args[0] if args else hint
    if value is None and optional:
        return None
    if isinstance(value, str) and optional and value.strip().lower() in ("", "none"):
        return None
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError(value)
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        name = getattr(base, "__name__", str(base))
        raise ConfigError(f"option '{key}' of the {kind} guard must be a {name}, got {value!r}") from None


def options(cls: type[T], given: Mapping[str, Any], *, kind: str) -> T:
    """Fill the dataclass ``cls`` from ``given`` (strings from a name, or Python values), checking every key."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ConfigError(f"unknown option{'s' * (len(unknown) > 1)} {', '.join(unknown)} for the {kind} guard; "
                          f"known options: {', '.join(fields)}")
    values = {key: _convert(kind, key, value, hints[key]) for key, value in given.items()}
    return cls(**values)
