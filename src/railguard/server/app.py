"""The app factory: ``create_app(settings)`` builds a FastAPI app whose lifespan loads the guard and opens the store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from .. import __version__
from ..audit import AuditStore
from ..config import CoreSettings
from ..guard import Guard
from .deps import get_key_id
from .errors import install_error_handlers
from .middleware import BodyLimit, JsonBodies
from .proxy.apis import RAILED
from .routes import guard as guard_routes
from .routes import health, models, moderations, review
from .runtime import Runtime
from .settings import ServerSettings


def create_app(settings: ServerSettings | None = None, *, guard: Guard | None = None,
               store: AuditStore | None = None, core: CoreSettings | None = None) -> FastAPI:
    """A moderation server. ``guard`` and ``store`` replace the ones the settings name (tests, embedding).
    ``settings`` and ``core`` (what its guards are built with) are read from the environment here unless given."""
    settings = settings or ServerSettings.load()
    core = core if core is not None else CoreSettings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings, guard=guard, store=store, core=core)
        app.state.runtime = runtime
        proxy = None
        try:
            await runtime.start()
            if settings.upstream_url:
                from .proxy import Proxy, Upstream

                proxy = app.state.proxy = Proxy(runtime, Upstream(settings, keys_enabled=runtime.keys.enabled))
            yield
        finally:
            if proxy is not None:
                await proxy.aclose()
            await runtime.stop()

    # The docs are served below with the API keys' check (unless public_docs), not by FastAPI's open defaults.
    app = FastAPI(title="railguard", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None,
                  description="Offline guardrails: OpenAI-compatible /v1/moderations and the native /v1/guard.")
    install_error_handlers(app)
    app.add_middleware(JsonBodies)
    proxy_limits = {}
    if settings.upstream_url:
        proxy_limits = dict.fromkeys(RAILED, settings.proxy_max_body_bytes)
    # Added last: runs first.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s,
                       paths=proxy_limits)
    _add_docs(app, public=settings.public_docs)
    for router in (moderations.router, guard_routes.router, models.router, health.router, review.router):
        app.include_router(router)
    from .routes import actions as action_routes  # agents: POST /v1/guard/actions

    app.include_router(action_routes.router)
    if settings.upstream_url:  # the guarding proxy; its pass-through of other /v1/* paths goes last
        from .routes import chat

        app.include_router(chat.router)
        app.include_router(chat.passthrough_router)
    else:  # without an upstream, /v1/models is railguard's own guard list (a proxy passes it to the LLM)
        app.include_router(models.openai_router)
    return app


def _add_docs(app: FastAPI, *, public: bool) -> None:
    """``/openapi.json``, ``/docs`` and ``/redoc``, behind the API keys like every other route unless ``public``."""
    dependencies = [] if public else [Depends(get_key_id)]

    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")

    for path, endpoint in (("/openapi.json", openapi), ("/docs", docs), ("/redoc", redoc)):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False, dependencies=dependencies)
