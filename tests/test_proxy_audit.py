"""The audit store's proxy columns: an audit log written before they existed is upgraded without losing a row."""

from __future__ import annotations

import sqlite3

from railguard.audit import SCHEMA_VERSION, AuditRecord, SqliteStore

_VERSION_1 = """
CREATE TABLE railguard_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, request_id TEXT NOT NULL,
  item INTEGER NOT NULL, endpoint TEXT NOT NULL, key_id TEXT, guard TEXT NOT NULL, tier TEXT NOT NULL,
  flagged INTEGER NOT NULL, error TEXT, decisions TEXT, scores TEXT, categories TEXT, guard_ms REAL,
  latency_ms REAL, input_chars INTEGER, text_sha256 TEXT, text TEXT);
CREATE TABLE railguard_audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO railguard_audit_meta VALUES ('salt', '00112233445566778899aabbccddeeff'), ('schema_version', '1');
INSERT INTO railguard_audit (time, request_id, item, endpoint, key_id, guard, tier, flagged, error, decisions,
  scores, categories, guard_ms, latency_ms, input_chars, text_sha256, text)
VALUES (1.5, 'old-request', 0, 'moderations', NULL, 'embedded', 'embedded', 1, NULL,
  '{"prompt_harmful": true}', '{"prompt_harmful": 0.9}', '{"weapons": 0.9}', 2.0, 3.0, 12, 'abc', 'old text');
"""


def _old_store(path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(_VERSION_1)
    conn.commit()
    conn.close()


def test_a_version_1_audit_log_is_readable_before_and_upgraded_on_open(tmp_path):
    path = tmp_path / "audit.db"
    _old_store(path)
    reader = SqliteStore(path, create=False)  # `railguard audit` on an old log, before any server opened it
    (old,) = list(reader.iter_records())
    reader.close()
    assert old.request_id == "old-request" and old.direction is None and old.upstream_called is None

    store = SqliteStore(path)
    try:
        assert store.salt() == bytes.fromhex("00112233445566778899aabbccddeeff")  # the old salt stays
        store.write([AuditRecord(time=2.0, request_id="new", item=0, endpoint="chat.completions", key_id=None,
                                 guard="fake", tier="fake", flagged=True, error=None, direction="output",
                                 upstream_called=True, stream_output="window")])
        old_again, new = store.tail(2)
    finally:
        store.close()
    assert old_again.text == "old text" and old_again.flagged and old_again.scores == {"prompt_harmful": 0.9}
    assert old_again.direction is None and old_again.upstream_called is None and old_again.stream_output is None
    assert (new.direction, new.upstream_called, new.stream_output) == ("output", True, "window")
    conn = sqlite3.connect(path)
    version = conn.execute("SELECT value FROM railguard_audit_meta WHERE key = 'schema_version'").fetchone()[0]
    conn.close()
    assert version == SCHEMA_VERSION == "3"  # 3: the reviews table (review page)


def test_moderation_rows_leave_the_proxy_columns_empty(tmp_path):
    store = SqliteStore(tmp_path / "audit.db")
    try:
        store.write([AuditRecord(time=1.0, request_id="r", item=0, endpoint="moderations", key_id=None,
                                 guard="fake", tier="fake", flagged=False, error=None)])
        (row,) = store.tail(1)
    finally:
        store.close()
    assert (row.direction, row.upstream_called, row.stream_output) == (None, None, None)
    assert row.to_dict()["direction"] is None
