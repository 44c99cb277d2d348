"""ASGI middleware at the edge: a size limit on request bodies, and JSON bodies whatever their content type."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

ORIGINAL_CONTENT_TYPE = "railguard.original_content_type"  # scope key: the client's Content-Type of a POST


class JsonBodies:
    """Every POST body is read as JSON, also when the client labels it otherwise (``curl -d`` sends a form type).

    The API has no other body format, so a wrong label should not turn a valid request into a confusing 422.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            original = [v for k, v in scope.get("headers") or () if k == b"content-type"]
            headers = [(k, v) for k, v in scope.get("headers") or () if k != b"content-type"]
            # The proxy's pass-through forwards the client's own label (an upload is multipart).
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")],
                     ORIGINAL_CONTENT_TYPE: original[0] if original else None}
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` (or the limit ``paths`` gives its path) gets 413
    before it is read whole."""

    def __init__(self, app: ASGIApp, max_bytes: int, paths: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = dict(paths or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            return
        received = 0
        too_large = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    return {"type": "http.disconnect"}  # the app stops reading; we answer below
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return  # the app's answer to a cut-off body is replaced by our 413
            started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
        if too_large and not started:
            await self._reject(send, limit)

    async def _reject(self, send: Send, limit: int) -> None:
        response = error_response(413, f"the request body is larger than {limit:,} bytes; "
                                       "send fewer or shorter inputs per request", code="request_too_large")
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})
