"""The PostgreSQL audit store, on a throwaway local cluster (skipped where PostgreSQL is not installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from server_support import make_app

from fastapi.testclient import TestClient
from railguard.audit import AuditRecord, open_store

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'railguard[server]'")


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


@pytest.fixture(scope="module")
def postgres_url():
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode:
            pytest.skip("running as root without a 'postgres' user to start PostgreSQL as")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="railguard-pg-"))
    os.chmod(root, 0o777)
    data = root / "data"
    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)

    try:
        run(str(bin_dir / "initdb"), "--no-sync", "-D", str(data), "-A", "trust", "-U", "railguard")
        # Unix socket only: nothing listens on the network.
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
            "-o", f"-k {root} -c listen_addresses='' -c fsync=off", "-w", "start")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        _stop(as_user, bin_dir, data, root)
        pytest.skip(f"could not start a local PostgreSQL: {exc}")
    try:
        yield f"postgresql://railguard@/postgres?host={root}"
    finally:
        _stop(as_user, bin_dir, data, root)


def _stop(as_user: list[str], bin_dir: Path, data: Path, root: Path) -> None:
    if (data / "postmaster.pid").exists():
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    shutil.rmtree(root, ignore_errors=True)


def test_postgres_store_round_trip(postgres_url):
    store = open_store(postgres_url)
    try:
        salt = store.salt()
        assert len(salt) == 16 and store.salt() == salt  # created once, then kept
        store.check_writable()
        before = store.count()
        record = AuditRecord(time=1.5, request_id="r1", item=0, endpoint="guard", key_id="key_abc", guard="fake",
                             tier="fake", flagged=True, error=None, decisions={"prompt_harmful": True},
                             scores={"prompt_harmful": 0.9}, categories={"weapons": 0.9}, guard_ms=0.1,
                             latency_ms=2.0, input_chars=4, text_sha256="ab", text="nul\x00byte")
        store.write([record, record])
        assert store.count() == before + 2
        last = store.tail(1)[0]
        assert last.flagged is True and last.categories == {"weapons": 0.9} and last.text == "nul\ufffdbyte"
        assert [r.id for r in store.iter_records(batch=1)][-2:] == [last.id - 1, last.id]
    finally:
        store.close()


def test_server_writes_its_audit_rows_to_postgres(postgres_url, tmp_path):
    with TestClient(make_app(tmp_path, audit_url=postgres_url)) as client:
        response = client.post("/v1/moderations", json={"input": ["bomb", "hi"]})
        assert response.status_code == 200
        assert client.get("/readyz").status_code == 200
    store = open_store(postgres_url, create=False)
    try:
        rows = [r for r in store.tail(10) if r.request_id == response.headers["X-Request-ID"]]
    finally:
        store.close()
    assert [(r.item, r.flagged) for r in rows] == [(0, True), (1, False)]
    assert "password" not in store.url
