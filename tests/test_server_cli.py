"""Server settings (env, YAML, TOML), `railguard serve --help`, and `railguard audit tail|export`."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from server_support import make_app
from typer.testing import CliRunner

from fastapi.testclient import TestClient
from railguard.cli import app
from railguard.errors import ConfigError
from railguard.server import ServerSettings

runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("RAILGUARD_PORT", "RAILGUARD_API_KEYS", "RAILGUARD_GUARD", "RAILGUARD_MAX_ITEMS",
                 "RAILGUARD_AUDIT_URL", "RAILGUARD_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_settings_from_env_with_comma_separated_keys(monkeypatch):
    monkeypatch.setenv("RAILGUARD_API_KEYS", "k1, k2,")
    monkeypatch.setenv("RAILGUARD_MAX_ITEMS", "7")
    s = ServerSettings.load()
    assert [k.get_secret_value() for k in s.api_keys] == ["k1", "k2"]
    assert s.max_items == 7 and s.host == "127.0.0.1" and s.port == 8000
    assert "k1" not in json.dumps(s.describe())  # keys never shown


@pytest.mark.parametrize("name,text", [
    ("server.yaml", "port: 9001\nmax_items: 5\nguard: fake\napi_keys: [a, b]\n"),
    ("server.toml", 'port = 9001\nmax_items = 5\nguard = "fake"\napi_keys = ["a", "b"]\n'),
])
def test_config_file_below_env_below_flags(tmp_path, monkeypatch, name, text):
    path = tmp_path / name
    path.write_text(text)
    s = ServerSettings.load(path)
    assert (s.port, s.max_items, s.guard, len(s.api_keys)) == (9001, 5, "fake", 2)
    monkeypatch.setenv("RAILGUARD_MAX_ITEMS", "9")
    monkeypatch.setenv("RAILGUARD_PORT", "9002")
    s = ServerSettings.load(path, port=9003, guard=None)
    assert (s.port, s.max_items, s.guard) == (9003, 9, "fake")


def test_config_file_from_env(tmp_path, monkeypatch):
    (tmp_path / "s.yaml").write_text("max_batch_size: 3\n")
    monkeypatch.setenv("RAILGUARD_CONFIG_FILE", str(tmp_path / "s.yaml"))
    assert ServerSettings.load().max_batch_size == 3


@pytest.mark.parametrize("name,text,message", [
    ("s.yaml", "prot: 1\n", "unknown setting 'prot'"),
    ("s.yaml", "port: [1\n", "not valid YAML"),
    ("s.toml", "port = \n", "not valid TOML"),
    ("s.yaml", "- a\n", "mapping"),
    ("s.ini", "port=1\n", ".yaml, .yml or .toml"),
    ("s.yaml", "port: -5\n", "port"),
])
def test_bad_config_file_is_a_clear_config_error(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        ServerSettings.load(tmp_path / name)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        ServerSettings.load(tmp_path / "nope.yaml")


def test_serve_help_documents_every_setting():
    result = runner.invoke(app, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    from railguard.config import MEDIA_LIMITS

    for name in [*(n for n in ServerSettings.model_fields if n != "media"), *MEDIA_LIMITS]:  # media: its limits
        assert f"RAILGUARD_{name.upper()}" in result.stdout
    for flag in ("--host", "--port", "--guard", "--config"):
        assert flag in result.stdout


def test_serve_with_unknown_guard_fails_before_listening():
    result = runner.invoke(app, ["serve", "--guard", "no-such-guard", "--port", "0"])
    assert result.exit_code == 2
    assert "unknown guard 'no-such-guard'" in result.stderr


def test_serve_with_unusable_audit_store_fails_before_listening(tmp_path):
    result = runner.invoke(app, ["serve", "--guard", "embedded", "--port", "0"],
                           env={"RAILGUARD_AUDIT_URL": f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"})
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_serve_with_bad_setting_is_one_line_error(monkeypatch):
    monkeypatch.setenv("RAILGUARD_PORT", "eighty")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2 and result.stderr.startswith("error: bad server settings: port")


@pytest.fixture
def audit_url(tmp_path):
    with TestClient(make_app(tmp_path)) as client:
        for text in ("hello", "a bomb", "third"):
            client.post("/v1/moderations", json={"input": text})
        client.post("/v1/guard", json=[{"prompt": "x"}, {"prompt": "bomb y"}])
    return f"sqlite:///{tmp_path / 'audit.db'}"


def test_audit_tail_shows_latest_rows(audit_url):
    result = runner.invoke(app, ["audit", "tail", "-n", "2", "--json", "--url", audit_url])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["endpoint"], r["item"], r["flagged"]) for r in rows] == [("guard", 0, False), ("guard", 1, True)]
    assert rows[0]["time"].endswith("+00:00") and "text_sha256" in rows[0]
    table = runner.invoke(app, ["audit", "tail", "--url", audit_url], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "last 5 decisions" in table.stdout and "weapons 0.90" in table.stdout


def test_audit_tail_reads_the_url_from_the_environment(audit_url, monkeypatch):
    monkeypatch.setenv("RAILGUARD_AUDIT_URL", audit_url)
    result = runner.invoke(app, ["audit", "tail", "--json"])
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 5


def test_audit_export_jsonl_and_parquet(audit_url, tmp_path):
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(app, ["audit", "export", "--format", "jsonl", "-o", str(out), "--url", audit_url])
    assert result.exit_code == 0 and "exported 5 audit rows" in result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["flagged"] for r in rows] == [False, True, False, False, True]
    parquet = tmp_path / "audit.parquet"
    result = runner.invoke(app, ["audit", "export", "--format", "parquet", "-o", str(parquet), "--url", audit_url])
    assert result.exit_code == 0, result.output
    table = pq.read_table(parquet).to_pylist()
    assert [r["request_id"] for r in table] == [r["request_id"] for r in rows]
    assert dict(table[1]["categories"]) == {"weapons": 0.9} and table[1]["time"].tzinfo is not None


def test_audit_export_of_a_missing_log_is_one_line_error(tmp_path):
    result = runner.invoke(app, ["audit", "export", "-o", str(tmp_path / "o.jsonl"),
                                 "--url", f"sqlite:///{tmp_path / 'none.db'}"])
    assert result.exit_code == 2 and result.stderr.startswith("error: no audit log at")
    assert not (tmp_path / "none.db").exists()


def test_audit_bad_url_is_one_line_error():
    result = runner.invoke(app, ["audit", "tail", "--url", "mysql://x/y"])
    assert result.exit_code == 2 and "sqlite:///" in result.stderr
