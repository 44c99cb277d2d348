"""Images and audio at the edge: base64 / data-URL decoding, limits checked before any model runs, and
OpenAI's ``category_applied_input_types`` for multi-modal moderation inputs."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Mapping

from ..errors import MediaError, MissingExtraError
from ..media import validate
from ..taxonomy import OPENAI_CATEGORIES, to_openai
from ..types import GuardInput, Verdict
from .errors import APIError
from .settings import ServerSettings

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,",
                       re.IGNORECASE)
# OpenAI's name for each of our sources' kinds.
_INPUT_TYPE = {"text": "text", "ocr": "image", "speech": "audio"}


def decode(value: str, *, kind: str, param: str, limit: int) -> bytes:
    """The bytes of a base64 string or a ``data:`` URL; a web URL is refused (railguard never downloads)."""
    text = value.strip()
    if text.lower().startswith(("http://", "https://")):
        raise APIError(400, f"{kind} URLs are not fetched (railguard never downloads); send the {kind} inline as "
                            f"a data: URL (data:{'image/png' if kind == 'image' else 'audio/wav'};base64,...)",
                       code="unsupported_input_type", param=param)
    match = _DATA_URL.match(text)
    if text.lower().startswith("data:"):
        if match is None or not match.group("b64"):
            raise APIError(400, f"the {kind} data URL must be base64: data:<type>;base64,<data>",
                           code=f"invalid_{kind}", param=param)
        text = text[match.end():]
    if len(text) * 3 // 4 > limit + 3:
        raise APIError(413, f"the {kind} is larger than {limit:,} bytes", code=f"{kind}_too_large", param=param)
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, f"the {kind} is not valid base64; send base64 or a data:...;base64, URL",
                       code=f"invalid_{kind}", param=param) from None
    if not data:
        raise APIError(400, f"the {kind} is empty", code=f"invalid_{kind}", param=param)
    return data


async def check_media(inputs: list[GuardInput], settings: ServerSettings, params: list[str]) -> None:
    """Open every image and clip (no model): 400 for corrupt or unsupported ones, 413 over the limits."""
    if not any(x.has_media for x in inputs):
        return
    for x, param in zip(inputs, params):
        if not x.has_media:
            continue
        try:
            await asyncio.to_thread(validate, x, settings.media)
        except MediaError as exc:
            kind = "audio" if exc.source.startswith("audio") else "image"
            status = 413 if exc.code in ("too_large", "too_long") else 400
            code = {"too_large": f"{kind}_too_large", "too_long": "audio_too_long",
                    "unsupported_format": f"unsupported_{kind}_format"}.get(exc.code, f"invalid_{kind}")
            where = exc.source.replace("image[", "images[")
            raise APIError(status, str(exc), code=code, param=f"{param}.{where}".lstrip(".")) from None
        except MissingExtraError as exc:
            raise APIError(400, f"this server cannot read {'audio' if x.audio else 'images'}: {exc}",
                           code="unsupported_input_type", param=param or None) from None


def applied_input_types(verdict: Verdict, categories: Mapping[str, bool], score: float
                        ) -> dict[str, list[str]]:
    """Per OpenAI category: the input types (text, image, audio) it fired on when it is true, else the types
    it was applied to. Uses the per-part results the media guard puts in the verdict's explanation."""
    parts = [(r.extraction, to_openai(r.extraction.categories)) for r in verdict.explanation or ()
             if r.extraction is not None]
    applied = sorted({_INPUT_TYPE.get(e.kind, e.kind) for e, _ in parts}) or ["text"]
    out: dict[str, list[str]] = {}
    for name in OPENAI_CATEGORIES:
        if not categories.get(name):
            out[name] = applied
            continue
        best = max((s.get(name, 0.0) for _, s in parts), default=0.0)
        fired = {_INPUT_TYPE.get(e.kind, e.kind) for e, s in parts
                 if s.get(name, 0.0) >= score or (s.get(name, 0.0) == best and best > 0)}
        out[name] = sorted(fired) or applied
    return out
