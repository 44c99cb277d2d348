"""The upstream LLM API behind the proxy: one connection pool, its headers, its faults as 502 / 504 answers, and
its server-sent events read as bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from fastapi.responses import JSONResponse

from ..encoding import loads
from ..errors import SERVER_ERROR, error_body
from ..settings import ServerSettings

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                         "transfer-encoding", "upgrade", "host", "content-length", "authorization", "content-type"})
_RESPONSE_DROP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"})


class UpstreamError(Exception):
    """The upstream failed; ``status`` (502 or 504) and ``code`` are what the client gets."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return error_body(self.message, code=self.code, type=SERVER_ERROR)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


class Upstream:
    """The upstream LLM API: one connection pool for the whole server."""

    def __init__(self, settings: ServerSettings, *, keys_enabled: bool) -> None:
        self.base_url = settings.upstream_url or ""
        self.timeout_s = settings.upstream_timeout_s
        self._key = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else None
        # With railguard keys on, the client's Authorization is a railguard key: never sent on.
        self._pass_client_key = self._key is None and not keys_enabled
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s),
                                        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))

    async def aclose(self) -> None:
        await self.client.aclose()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def headers(self, client_headers: Mapping[str, str], *, content_type: str | None = "application/json",
                forward_all: bool = False) -> dict[str, str]:
        """Headers for the upstream: the key (the operator's, or the client's own), plus, for pass-through,
        the client's other end-to-end headers."""
        out = {k: v for k, v in client_headers.items() if k.lower() not in _HOP_BY_HOP} if forward_all else {}
        if content_type:
            out["content-type"] = content_type
        if self._key is not None:
            out["authorization"] = f"Bearer {self._key}"
        elif self._pass_client_key and client_headers.get("authorization"):
            out["authorization"] = client_headers["authorization"]
        return out

    def fault(self, exc: Exception, what: str) -> UpstreamError:
        """An httpx failure as the error the client gets."""
        where = self.base_url
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamError(504, "upstream_timeout",
                                 f"the upstream LLM at {where} did not {what} within {self.timeout_s:g} s")
        if isinstance(exc, httpx.ConnectError):
            return UpstreamError(502, "upstream_unreachable", f"cannot connect to the upstream LLM at {where}")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return UpstreamError(502, "upstream_stream_broken",
                                 f"the upstream LLM at {where} closed the connection before its answer was complete")
        return UpstreamError(502, "upstream_error", f"the upstream LLM at {where} failed ({type(exc).__name__})")

    async def check_status(self, response: httpx.Response) -> None:
        """5xx is the upstream's fault (502); 4xx is the client's, relayed as the upstream sent it."""
        if response.status_code >= 500:
            await response.aread()
            raise UpstreamError(502, "upstream_error",
                                f"the upstream LLM answered HTTP {response.status_code}; try again later")

    def relayed_headers(self, response: httpx.Response) -> dict[str, str]:
        """The headers of a passed-through answer that go back to the client."""
        return {k: v for k, v in response.headers.items() if k.lower() not in _RESPONSE_DROP}


def json_or_fault(raw: bytes | str, what: str) -> Any:
    try:
        return loads(raw)
    except ValueError:
        raise UpstreamError(502, "upstream_bad_response", f"the upstream LLM sent {what} that is not JSON") from None


async def sse_payloads(response: httpx.Response) -> AsyncIterator[bytes]:
    """The ``data`` of each server-sent event, as the bytes between ``data:`` and the blank line (read as bytes:
    nothing is decoded that is relayed unchanged). Lines end in CR LF, LF or CR."""
    data: list[bytes] = []
    pending = b""
    async for chunk in response.aiter_bytes():
        pending += chunk
        lines = pending.splitlines(keepends=True)
        # A last line without its LF waits for more (a CR at its end may be the first half of CR LF).
        pending = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        for line in lines:
            line = line.rstrip(b"\r\n")
            if line == b"":
                if data:
                    yield b"\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                data.append(line[5:].removeprefix(b" "))
            # "event:", "id:", "retry:" and ":" comments carry nothing a chat stream needs
    if pending.rstrip(b"\r\n").startswith(b"data:"):
        data.append(pending.rstrip(b"\r\n")[5:].removeprefix(b" "))
    if data:
        yield b"\n".join(data)


def relay(response: httpx.Response, headers: Mapping[str, str]) -> JSONResponse:
    """An upstream 4xx as it came (it is about the client's request), as JSON when it is JSON."""
    try:
        content = response.json()
    except ValueError:
        content = error_body(response.text[:1000] or f"upstream answered HTTP {response.status_code}",
                             code="upstream_rejected")
    return JSONResponse(content, status_code=response.status_code, headers=dict(headers))
