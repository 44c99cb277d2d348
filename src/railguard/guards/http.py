"""The HTTP side of remote guards (``endpoint:``, ``openai-moderation:``): one JSON client with a timeout,
retries with exponential backoff, a concurrency limit for a batch and an API key from the environment.

What is retried: connection failures and answers 429 or 5xx, ``retries`` times, waiting ``backoff``,
then twice that, and so on (or the server's ``Retry-After``, up to ``MAX_WAIT_S``). What is not: a
timeout (the guard sits in a request path and must answer in bounded time) and other 4xx answers
(asking again will not help). Either way the failure is a :class:`RemoteError` whose message never
quotes the texts sent, so the caller can put it into a verdict and a log.

The API key is read from the environment variable ``api_key_env``; by default ``OPENAI_API_KEY`` for
api.openai.com and ``RAILGUARD_ENDPOINT_API_KEY`` for every other host, so that an OpenAI key is never
sent to a third party unless asked for.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..errors import ConfigError, RailguardError, require

log = logging.getLogger(__name__)

EXTRA = "remote"
DEFAULT_KEY_ENV = "RAILGUARD_ENDPOINT_API_KEY"
OPENAI_KEY_ENV = "OPENAI_API_KEY"
MAX_WAIT_S = 30.0
_ERROR_CHARS = 200

T = TypeVar("T")
R = TypeVar("R")


class RemoteError(RailguardError):
    """A remote guard gave no usable answer; the message is safe to show (it quotes no user text)."""


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Options every remote guard takes (``?timeout=5&retries=1``)."""

    timeout: float = 30.0  # seconds for one request (connect, send, answer)
    retries: int = 2  # further attempts after a connection failure, 429 or 5xx
    backoff: float = 0.5  # seconds before the first retry; doubled for each next one
    concurrency: int = 8  # requests in flight at once for one batch
    api_key_env: str | None = None  # environment variable holding the API key (see the module docstring)

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ConfigError(f"timeout must be more than 0 seconds, got {self.timeout}")
        if self.retries < 0:
            raise ConfigError(f"retries must be 0 or more, got {self.retries}")
        if self.backoff < 0:
            raise ConfigError(f"backoff must be 0 or more seconds, got {self.backoff}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {self.concurrency}")


def api_base(url: str) -> str:
    """``http://host:8000`` or ``http://host:8000/v1/`` -> ``http://host:8000/v1`` (a version path is kept)."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"'{url}' is not an http:// or https:// URL such as http://localhost:8000/v1")
    if parts.query or parts.fragment:
        raise ConfigError(f"the base URL '{url}' must not carry a query or fragment")
    if not re.search(r"/v\d+$", parts.path):
        url += "/v1"
    return url


def _retry_after(value: str | None) -> float | None:
    try:
        return min(MAX_WAIT_S, max(0.0, float(value))) if value else None
    except ValueError:
        return None


def _error_detail(response: Any) -> str:
    """The server's own error message, shortened (OpenAI style ``{"error": {"message": ...}}`` or text)."""
    try:
        body = response.json()
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message") or error.get("detail") if isinstance(error, dict) else error
        text = str(message)
    except ValueError:
        text = response.text
    text = " ".join(text.split())
    return text[:_ERROR_CHARS] + ("..." if len(text) > _ERROR_CHARS else "")


class JsonClient:
    """POSTs JSON to ``base_url`` + path with the retry policy above; thread-safe, one per guard."""

    def __init__(self, base_url: str, options: HttpOptions, *, name: str) -> None:
        self.httpx = require("httpx", EXTRA)
        self.base_url = api_base(base_url)
        self.options = options
        self.name = name
        host = urlsplit(self.base_url).hostname or ""
        key_env = options.api_key_env or (OPENAI_KEY_ENV if host == "api.openai.com" else DEFAULT_KEY_ENV)
        key = os.environ.get(key_env, "").strip()
        if options.api_key_env and not key:
            raise ConfigError(f"{name}: the environment variable {key_env} holding the API key is not set")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = self.httpx.Client(
            timeout=options.timeout, headers=headers, follow_redirects=False,
            limits=self.httpx.Limits(max_connections=options.concurrency,
                                     max_keepalive_connections=options.concurrency))
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON object the server answered; RemoteError when it gave none after the allowed attempts."""
        httpx, opts = self.httpx, self.options
        url = f"{self.base_url}/{path.lstrip('/')}"
        failure = ""
        for attempt in range(opts.retries + 1):
            wait = opts.backoff * (2 ** attempt)
            try:
                response = self._client.post(url, json=body)
            except httpx.ConnectTimeout:
                failure = f"could not connect within {opts.timeout:g} s"
            except httpx.TimeoutException:
                raise RemoteError(f"{self.name}: no answer within {opts.timeout:g} s") from None
            except httpx.TransportError as exc:
                failure = f"cannot reach {self.base_url} ({type(exc).__name__})"
            else:
                status = response.status_code
                if status == 429 or status >= 500:
                    failure = f"HTTP {status} {_error_detail(response)}".rstrip()
                    wait = _retry_after(response.headers.get("retry-after")) or wait
                elif status >= 400:
                    raise RemoteError(f"{self.name}: HTTP {status} {_error_detail(response)}".rstrip())
                else:
                    try:
                        data = response.json()
                    except ValueError:
                        raise RemoteError(f"{self.name}: the answer is not JSON") from None
                    if not isinstance(data, dict):
                        raise RemoteError(f"{self.name}: the answer is not a JSON object")
                    return data
            if attempt < opts.retries:
                log.warning("%s: %s; retry %d of %d in %.2f s", self.name, failure, attempt + 1, opts.retries, wait)
                time.sleep(min(wait, MAX_WAIT_S))
        attempts = opts.retries + 1
        raise RemoteError(f"{self.name}: {failure} (after {attempts} attempt{'s' * (attempts > 1)})")

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | RemoteError]:
        """``fn`` over ``items`` with at most ``concurrency`` at once, in order; a RemoteError is returned in its
        item's place instead of raised, so one failed request fails one input, not the batch."""

        def one(item: T) -> R | RemoteError:
            try:
                return fn(item)
            except RemoteError as exc:
                return exc

        if len(items) <= 1 or self.options.concurrency == 1:
            return [one(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.options.concurrency,
                                                thread_name_prefix=f"railguard-{self.name.split(':')[0]}")
        return list(self._pool.map(one, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._client.close()
