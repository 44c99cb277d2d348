"""OpenAI-style error bodies, ``{"error": {"message", "type", "param", "code"}}``, for every failure.

Client mistakes are 4xx with a message that says what to fix; nothing a client sends may produce a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class APIError(Exception):
    """An error answer: HTTP status plus the OpenAI error fields."""

    def __init__(self, status: int, message: str, *, code: str, type: str = INVALID_REQUEST,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.type, self.param = status, message, code, type, param

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, code=self.code, type=self.type, param=self.param)


def error_body(message: str, *, code: str, type: str = INVALID_REQUEST, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(status: int, message: str, *, code: str, type: str = INVALID_REQUEST,
                   param: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, code=code, type=type, param=param), status_code=status, headers=headers)


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # Drop "body" and pydantic's union-branch tags ("list[str]", "GuardItem", "function-after[...]").
    return tuple(p for p in loc if isinstance(p, int)
                 or (p != "body" and "[" not in p and "(" not in p and not p[:1].isupper()))


def _param(loc: tuple[Any, ...]) -> str | None:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or None


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "the request body is not valid JSON", code="invalid_json")
    if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
        return error_response(400, "the request body is empty; send a JSON object", code="empty_body")
    if not errors:
        return error_response(422, "the request body is not valid", code="invalid_value")
    # With unions every branch reports; the deepest location is the branch the client meant.
    located = [(_clean_loc(tuple(e.get("loc", ()))), str(e.get("msg", "invalid value"))) for e in errors]
    deepest = max(len(loc) for loc, _ in located)
    loc = next(loc for loc, _ in located if len(loc) == deepest)
    messages = list(dict.fromkeys(msg for where, msg in located if where == loc))
    param = _param(loc)
    where = f"'{param}'" if param else "the request body"
    return error_response(422, f"{where}: {'; or '.join(messages[:3])}", code="invalid_value", param=param)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not decode the body (e.g. bytes that are not UTF-8)
            return error_response(400, "the request body is not valid JSON in UTF-8", code="invalid_json")
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        kind = SERVER_ERROR if exc.status_code >= 500 else INVALID_REQUEST
        return error_response(exc.status_code, message, code=code, type=kind, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The message may quote user text, so only the exception type is logged.
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return error_response(500, "internal error; the server logged it", code="internal_error", type=SERVER_ERROR)
