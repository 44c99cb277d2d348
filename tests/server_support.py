"""Helpers for the server tests: test guards, an app on a temporary audit store, a real server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed: pip install 'railguard[server]'")
uvicorn = pytest.importorskip("uvicorn", reason="the server extra is not installed: pip install 'railguard[server]'")

from conftest import FakeGuard  # noqa: E402 - after the skips

from railguard.server import ServerSettings, create_app  # noqa: E402
from railguard.types import GuardInput, Verdict  # noqa: E402


class CountingGuard(FakeGuard):
    """The fake guard, counting its calls; each call takes ``delay_s`` so that requests pile up."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls: list[int] = []  # batch size of each call
        self._lock = threading.Lock()

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        with self._lock:
            self.calls.append(len(inputs))
        time.sleep(self.delay_s)
        return super().check(inputs)


class RaisingGuard:
    """Fails on every input that mentions "poison"; otherwise the fake guard's answer."""

    name = "raising"

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        if any("poison" in x.prompt for x in inputs):
            raise RuntimeError("backend exploded on poison")  # the message must not reach logs or answers
        return FakeGuard().check(inputs)


class SlowGuard(FakeGuard):
    """Sleeps on prompts containing "slow" (longer than any test timeout)."""

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        if any("slow" in x.prompt for x in inputs):
            time.sleep(2.0)
        return super().check(inputs)


def wait_until(condition, seconds: float = 3.0) -> bool:
    """Whether ``condition()`` became true within ``seconds`` (polled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def settings(tmp_path: Path, **overrides: Any) -> ServerSettings:
    values: dict[str, Any] = {"guard": "fake", "audit_url": f"sqlite:///{tmp_path / 'audit.db'}",
                              "api_keys": [], "audit_salt": "test-salt", "store_text": False, "fail_open": False}
    values.update(overrides)
    return ServerSettings.load(**values)


def make_app(tmp_path: Path, guard: Any = None, **overrides: Any):
    return create_app(settings(tmp_path, **overrides), guard=guard if guard is not None else FakeGuard())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(app: Any, **options: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn (``options``: more uvicorn settings) on a free loopback port in a thread; yields
    the base URL; always stops it."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
