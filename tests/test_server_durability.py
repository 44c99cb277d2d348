"""kill -9 under load: every request that got a 200 has its audit rows after a restart; logs hold no user text."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import HAS_EMBEDDED_MODEL
from server_support import free_port

from railguard.audit import SqliteStore

pytestmark = pytest.mark.skipif(not HAS_EMBEDDED_MODEL, reason="no embedded model shipped yet")

MARKER = "zebra-marker"  # in every prompt; must never reach a log


@contextmanager
def server_process(tmp_path: Path, log_name: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`railguard serve` in a fresh process on a free loopback port; always stopped (SIGKILL at the latest)."""
    port = free_port()
    env = {**os.environ, "RAILGUARD_AUDIT_URL": f"sqlite:///{tmp_path / 'audit.db'}",
           "RAILGUARD_AUDIT_SALT": "durability", "RAILGUARD_API_KEYS": "", "RAILGUARD_STORE_TEXT": "false"}
    log = open(tmp_path / log_name, "wb")
    proc = subprocess.Popen([sys.executable, "-c", "from railguard.cli import app; app()", "serve",
                             "--host", "127.0.0.1", "--port", str(port), "--guard", "embedded"],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}: {(tmp_path / log_name).read_text()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not become ready in 60 s")
            time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


def _load(url: str, answered: list[tuple[str, int]], stop: threading.Event, worker: int) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        i = 0
        while not stop.is_set() and i < 500:  # bounded even if the kill never comes
            i += 1
            texts = [f"{MARKER} worker {worker} request {i} item {k}" for k in range(1 + i % 3)]
            try:
                response = client.post("/v1/moderations", json={"input": texts})
            except httpx.TransportError:
                return  # the server died under us
            if response.status_code == 200:
                answered.append((response.headers["X-Request-ID"], len(texts)))


def test_kill_9_mid_load_loses_no_answered_request(tmp_path):
    answered: list[tuple[str, int]] = []
    stop = threading.Event()
    with server_process(tmp_path, "first.log") as (proc, url):
        workers = [threading.Thread(target=_load, args=(url, answered, stop, w), daemon=True) for w in range(8)]
        for w in workers:
            w.start()
        deadline = time.monotonic() + 30
        while len(answered) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        proc.wait(timeout=10)
        stop.set()
        for w in workers:
            w.join(timeout=15)
    assert len(answered) >= 60, "the server answered too few requests before the kill"

    with server_process(tmp_path, "second.log") as (proc, url):  # restarts on the same store
        after = httpx.post(f"{url}/v1/moderations", json={"input": f"{MARKER} after restart"}, timeout=10)
        assert after.status_code == 200
        store = SqliteStore(tmp_path / "audit.db", create=False)
        try:
            rows: dict[str, int] = {}
            for record in store.iter_records():
                rows[record.request_id] = rows.get(record.request_id, 0) + 1
        finally:
            store.close()
    missing = [(rid, n) for rid, n in answered if rows.get(rid) != n]
    assert not missing, f"{len(missing)} answered requests lack audit rows"
    assert rows[after.headers["X-Request-ID"]] == 1
    logs = (tmp_path / "first.log").read_text() + (tmp_path / "second.log").read_text()
    assert "moderations request=" in logs  # the server does log decisions...
    assert MARKER not in logs  # ...but never the text
