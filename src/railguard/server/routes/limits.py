"""Size limits from the settings; over them a request gets 413 before any model work."""

from __future__ import annotations

from ..errors import APIError
from ..settings import ServerSettings


def check_items(n: int, settings: ServerSettings, *, param: str | None) -> None:
    if n > settings.max_items:
        raise APIError(413, f"{n:,} inputs in one request; the limit is {settings.max_items:,}: split the request",
                       code="too_many_inputs", param=param)


def check_text(text: str, settings: ServerSettings, *, param: str) -> None:
    if len(text) > settings.max_input_chars:
        raise APIError(413, f"a text of {len(text):,} characters; the limit is {settings.max_input_chars:,}: "
                            "split or shorten it", code="input_too_large", param=param)
