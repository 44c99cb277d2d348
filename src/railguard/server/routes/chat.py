"""The guarding proxy's routes (only with an upstream): the railed generation routes ``POST /v1/chat/completions``,
``POST /v1/completions`` and ``POST /v1/responses``, and the pass-through of the other ``/v1/*`` calls that
``upstream_passthrough`` allows (403 for the rest). railguard's own ``/v1/moderations``, ``/v1/guard`` and
``/v1/railguard/models`` keep answering themselves; the pass-through is registered after them."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ...errors import RailguardError
from ..deps import KeyIdDep
from ..encoding import loads_forwardable
from ..errors import APIError
from ..middleware import ORIGINAL_CONTENT_TYPE
from ..proxy import Proxy
from ..proxy.apis import RAILED

router = APIRouter(tags=["proxy"])
passthrough_router = APIRouter(tags=["proxy"])


def _proxy(request: Request) -> Proxy:
    proxy = getattr(request.app.state, "proxy", None)
    if proxy is None:
        raise RailguardError("the proxy is not running")  # create_app only adds these routes with an upstream
    return proxy


async def _railed(request: Request, key_id: KeyIdDep):
    api = RAILED[request.url.path]
    raw = await request.body()
    if not raw:
        raise APIError(400, f"the request body is empty; send a {api.endpoint} request", code="empty_body")
    try:
        body, forward = loads_forwardable(raw)
    except ValueError:
        raise APIError(400, "the request body is not valid JSON", code="invalid_json") from None
    return await _proxy(request).generate(api, body, request.headers, key_id, raw=forward)


for _path in RAILED:
    router.add_api_route(_path, _railed, methods=["POST"], name=_path.removeprefix("/v1/").replace("/", "_"))


@passthrough_router.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                              include_in_schema=False)
async def passthrough(path: str, request: Request, key_id: KeyIdDep):
    if ORIGINAL_CONTENT_TYPE in request.scope:  # a POST: the body-reading middleware relabelled it JSON
        original = request.scope[ORIGINAL_CONTENT_TYPE]
        content_type = original.decode("latin-1") if original else None
    else:
        content_type = request.headers.get("content-type")
    return await _proxy(request).passthrough(request.method, path, request.url.query.encode("latin-1"),
                                             await request.body(), request.headers, content_type)
