"""JSON at the server's edge: orjson (in the ``server`` extra) where it can, the standard library where orjson
refuses (a number past 64 bits, ``NaN``, a lone surrogate; an object it cannot encode), so what is accepted and
what is answered stay exactly as with :mod:`json` alone, only faster. One encode per answer."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # the server still runs, on the standard library
    orjson = None


def loads(raw: bytes | str) -> Any:
    """Parse JSON; ValueError when it is not JSON."""
    if orjson is not None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # json decides: it accepts a few things orjson does not
    return json.loads(raw)


def loads_forwardable(raw: bytes) -> tuple[Any, bytes]:
    """A request body parsed, and the bytes to send on in its place: ``raw`` itself when it is plain UTF-8 JSON
    (what orjson reads), else its value encoded again (a BOM, UTF-16, ``NaN``: the standard library read it)."""
    if orjson is not None:
        try:
            return orjson.loads(raw), raw
        except orjson.JSONDecodeError:
            pass
    value = json.loads(raw)
    return value, dumps(value)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as Starlette's JSONResponse writes it."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError: e.g. an int past 64 bits
            pass
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def with_field(raw: bytes, answer: Any, name: str, value: Any) -> bytes:
    """The JSON object ``raw`` (parsed: ``answer``) with one more top-level field, without encoding it again: the
    field is spliced in before the closing brace. Re-encoded when that cannot be done safely (not an object, an
    empty one, or one that already has the field)."""
    body = raw.rstrip()
    if isinstance(answer, dict) and answer and name not in answer and body.endswith(b"}"):
        return body[:-1] + b',"' + name.encode() + b'":' + dumps(value) + b"}"
    return dumps({**answer, name: value}) if isinstance(answer, dict) else dumps(answer)
