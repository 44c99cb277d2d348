"""``railguard serve``: uvicorn on the app, with logs that carry request ids and counts, never user text."""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import os
from typing import Any

from .. import registry
from ..errors import ConfigError, require
from .audit import open_store
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
    guard = registry.resolve(settings.guard) if settings.workers == 1 else None
    open_store(settings.audit_url).close()
    common = dict(host=settings.host, port=settings.port, log_config=log_config(),
                  timeout_keep_alive=settings.keep_alive_s, server_header=False)
    if guard is not None:
        from .app import create_app

        uvicorn.run(create_app(settings, guard=guard), **common)
        return
    os.environ[_SETTINGS_ENV] = json.dumps(_plain(settings))
    uvicorn.run("railguard.server.run:app_from_environment", factory=True, workers=settings.workers, **common)


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
    return create_app(settings)
