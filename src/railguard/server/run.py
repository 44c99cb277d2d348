"""``railguard serve``: uvicorn on the app, with logs that carry request ids and counts, never user text."""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import logging
import os
from typing import Any

from .. import load, registry
from ..audit import open_store
from ..config import CoreSettings, Settings
from ..errors import ConfigError, require
from .settings import ServerSettings

log = logging.getLogger(__name__)

# With several workers each process builds its app from these settings (CLI flags included).
_SETTINGS_ENV = "_RAILGUARD_SERVE_SETTINGS"


def log_config() -> dict[str, Any]:
    """uvicorn's logging set-up plus our own ``railguard`` logger on stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["railguard"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["railguard"] = {"class": "logging.StreamHandler", "formatter": "railguard",
                                       "stream": "ext://sys.stderr"}
    config["loggers"]["railguard"] = {"handlers": ["railguard"], "level": "INFO", "propagate": False}
    return config


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(settings: ServerSettings) -> None:
    """Run the server until interrupted. The guard and the store are checked before the port opens."""
    uvicorn = require("uvicorn", "server")
    require("fastapi", "server")
    if not _is_loopback(settings.host) and not settings.api_keys:
        log.warning("listening on %s without API keys: anyone who can reach it can use it", settings.host)
    kind = settings.guard.partition(":")[0]
    if kind not in registry.available():
        raise ConfigError(f"unknown guard '{kind}'; known guards: {', '.join(registry.available())}")
    # One worker gets the guard built here, so a bad model fails now; several workers load their own.
    core = CoreSettings.from_env()
    tree = Settings(core=core, media=settings.media, server=settings)
    guard = load.resolve(settings.guard, policy=settings.policy, settings=tree) if settings.workers == 1 else None
    open_store(settings.audit_url).close()
    common = dict(host=settings.host, port=settings.port, log_config=log_config(), **connection_options(settings))
    if guard is not None:
        from .app import create_app

        uvicorn.run(create_app(settings, guard=guard, core=core), **common)
        return
    os.environ[_SETTINGS_ENV] = json.dumps(_plain(settings))
    uvicorn.run("railguard.server.run:app_from_environment", factory=True, workers=settings.workers, **common)


def connection_options(settings: ServerSettings) -> dict[str, Any]:
    """uvicorn's options for the connection limits: keep-alive, header size and time, concurrency.

    The header timeout is one value per process (a process serves one set of settings); the protocol is named by
    its import path so that worker processes find it too.
    """
    HeaderTimeoutProtocol.header_timeout_s = settings.header_timeout_s
    return dict(http=HeaderTimeoutProtocol, timeout_keep_alive=settings.keep_alive_s,
                h11_max_incomplete_event_size=settings.max_header_bytes, limit_concurrency=settings.max_connections,
                server_header=False)


def _h11_protocol() -> type:
    try:
        from uvicorn.protocols.http.h11_impl import H11Protocol
    except ImportError:  # no server extra: serve() says so before this class is used
        return object
    return H11Protocol


class HeaderTimeoutProtocol(_h11_protocol()):  # type: ignore[misc]
    """uvicorn's h11 protocol, closing a connection whose request head has not all arrived ``header_timeout_s``
    after it opened or after its previous answer (uvicorn itself waits for headers for ever)."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # noqa: ANN001 - asyncio.Transport, as in the base class
        super().connection_made(transport)
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        import h11

        # IDLE: no complete request head in this cycle yet (an idle keep-alive connection is closed too).
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closed a connection whose request head took over %g s", self.header_timeout_s)
            self.transport.close()


def _plain(settings: ServerSettings) -> dict[str, Any]:
    out = settings.model_dump(mode="json", exclude={"config_file"})
    out["api_keys"] = [k.get_secret_value() for k in settings.api_keys]
    out["audit_salt"] = settings.audit_salt.get_secret_value() if settings.audit_salt else None
    out["upstream_api_key"] = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else None
    return out


def app_from_environment():
    """The app of one worker process of a multi-worker ``railguard serve``."""
    from .app import create_app

    raw = os.environ.get(_SETTINGS_ENV)
    settings = ServerSettings.model_validate(json.loads(raw)) if raw else ServerSettings.load()
    connection_options(settings)  # this process's header timeout
    return create_app(settings)
