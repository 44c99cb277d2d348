"""ASGI middleware at the edge: size and time limits on request bodies, and JSON bodies whatever their content type."""

from __future__ import annotations

import asyncio

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
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before it is read whole, and one that has not
    arrived whole ``timeout_s`` after its headers did gets 408 and the connection is closed (a client trickling
    its body a byte at a time would otherwise hold a connection, and the request's memory, for ever)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send, 413)
            return
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout_s is None else loop.time() + self.timeout_s
        received = 0
        rejected: int | None = None  # the status that replaces the app's answer
        body_done = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, rejected, body_done
            if body_done or deadline is None:  # after the body only a disconnect can come: no time limit
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    rejected = 408
                    return {"type": "http.disconnect"}  # the app stops reading; we answer below
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_bytes:
                    rejected = 413
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected is not None and not started:
                return  # the app's answer to a cut-off body is replaced by ours
            started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
        if rejected is not None and not started:
            await self._reject(send, rejected)

    async def _reject(self, send: Send, status: int) -> None:
        if status == 408:
            response = error_response(408, f"the request body did not arrive within {self.timeout_s:g} s of its "
                                           "headers; send it at once", code="request_timeout")
            headers = [*response.raw_headers, (b"connection", b"close")]  # the server then closes the connection
        else:
            response = error_response(413, f"the request body is larger than {self.max_bytes:,} bytes; "
                                           "send fewer or shorter inputs per request", code="request_too_large")
            headers = response.raw_headers
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
