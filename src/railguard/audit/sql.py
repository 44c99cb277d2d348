"""The two audit stores, SQLite (WAL) and PostgreSQL, over one shared SQL layer.

Rows written by the guarding proxy (``/v1/chat/completions``) also say which rail decided (``direction``:
``input`` or ``output``), whether the upstream LLM was called, and the streaming mode. A store made before
these columns existed gets them on open (``ALTER TABLE ... ADD COLUMN``; old rows keep their data, with
the new fields empty).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError, require
from .records import AuditRecord, ReviewLabel

TABLE = "railguard_audit"
META_TABLE = "railguard_audit_meta"
LABELS_TABLE = "railguard_labels"  # moderators' reviews of audited decisions (schema version 3)
SCHEMA_VERSION = "3"
COLUMNS = ("time", "request_id", "item", "endpoint", "key_id", "guard", "tier", "flagged", "error",
            "decisions", "scores", "categories", "guard_ms", "latency_ms", "input_chars", "text_sha256", "text",
            "direction", "upstream_called", "stream_output")
# Columns added after schema version 1, with their SQL types (by dialect attribute); added on open when missing.
ADDED_COLUMNS = {"direction": "TEXT", "upstream_called": "_bool_type", "stream_output": "TEXT"}
JSON_COLUMNS = frozenset({"decisions", "scores", "categories"})


def redact(url: str) -> str:
    """The URL without its password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def sqlite_path(url: str) -> str:
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix):
        raise ConfigError(f"a SQLite audit URL looks like sqlite:///audit.db or sqlite:////abs/audit.db, got {url!r}")
    path = url[len(prefix):]
    if not path:
        raise ConfigError("the SQLite audit URL names no file: use e.g. sqlite:///./railguard-audit.db")
    return path


class _SqlStore:
    """The SQL shared by both stores; subclasses say how to connect and how their dialect differs."""

    url: str
    _conn: Any  # a DB-API connection (sqlite3 or psycopg), whose execute() returns a cursor
    _param = "?"
    _json_param = "?"
    _id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"
    _bool_type = "INTEGER"
    _float_type = "REAL"
    _json_type = "TEXT"
    _add_column = "ADD COLUMN"
    _columns: tuple[str, ...] = COLUMNS  # the columns the table has (an old store opened read-only lacks some)

    def _prepare(self, create: bool) -> None:
        """A store opened to write gets its tables, new columns and salt; one opened to read learns its columns."""
        if create:
            with self._write_transaction() as conn:
                for statement in self._ddl():
                    conn.execute(statement)
                self._migrate(conn)
                self._salt_from(conn)
        else:
            present = self._table_columns(self._conn)
            self._columns = tuple(c for c in COLUMNS if c in present)

    def _table_columns(self, conn: Any) -> set[str]:
        raise NotImplementedError

    def _migrate(self, conn: Any) -> None:
        """Add the columns a store made by an older version lacks; rows and their data stay as they are."""
        present = self._table_columns(conn)
        for name, sql_type in ADDED_COLUMNS.items():
            if name not in present:
                conn.execute(f"ALTER TABLE {TABLE} {self._add_column} {name} {getattr(self, sql_type, sql_type)}")
        p = self._param
        conn.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES ({p}, {p}) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value", ("schema_version", SCHEMA_VERSION))

    def _ddl(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id {self._id_column}, time {self._float_type} NOT NULL, "
            f"request_id TEXT NOT NULL, item INTEGER NOT NULL, endpoint TEXT NOT NULL, key_id TEXT, "
            f"guard TEXT NOT NULL, tier TEXT NOT NULL, flagged {self._bool_type} NOT NULL, error TEXT, "
            f"decisions {self._json_type}, scores {self._json_type}, categories {self._json_type}, "
            f"guard_ms {self._float_type}, latency_ms {self._float_type}, input_chars INTEGER, "
            f"text_sha256 TEXT, text TEXT, direction TEXT, upstream_called {self._bool_type}, stream_output TEXT)",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_time ON {TABLE} (time)",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_request ON {TABLE} (request_id)",
            f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {LABELS_TABLE} (id {self._id_column}, audit_id INTEGER NOT NULL, "
            f"time {self._float_type} NOT NULL, reviewer TEXT, labels {self._json_type} NOT NULL, "
            f"verdicts {self._json_type} NOT NULL, categories {self._json_type})",
            f"CREATE INDEX IF NOT EXISTS {LABELS_TABLE}_audit ON {LABELS_TABLE} (audit_id)",
        ]

    def _insert_sql(self) -> str:
        values = ", ".join(self._json_param if c in JSON_COLUMNS else self._param for c in COLUMNS)
        return f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({values})"

    def _row(self, r: AuditRecord) -> tuple[Any, ...]:
        return (r.time, r.request_id, r.item, r.endpoint, r.key_id, r.guard, r.tier, bool(r.flagged), r.error,
                json.dumps(dict(r.decisions)), json.dumps(dict(r.scores)), json.dumps(dict(r.categories)),
                r.guard_ms, r.latency_ms, r.input_chars, r.text_sha256, self._clean_text(r.text), r.direction,
                None if r.upstream_called is None else bool(r.upstream_called), r.stream_output)

    def _clean_text(self, text: str | None) -> str | None:
        return None if text is None else text.encode("utf-8", "replace").decode("utf-8")

    def _record(self, row: Sequence[Any]) -> AuditRecord:
        values = dict(zip(("id", *self._columns), row))
        for name in JSON_COLUMNS:
            raw = values[name]
            values[name] = json.loads(raw) if isinstance(raw, str) else (raw or {})
        values["flagged"] = bool(values["flagged"])
        if values.get("upstream_called") is not None:
            values["upstream_called"] = bool(values["upstream_called"])
        return AuditRecord(**values)

    def _select(self) -> str:
        return f"SELECT id, {', '.join(self._columns)} FROM {TABLE}"

    def tail(self, n: int) -> list[AuditRecord]:
        rows = self._conn.execute(f"{self._select()} ORDER BY id DESC LIMIT {self._param}", (n,)).fetchall()
        return [self._record(r) for r in reversed(rows)]

    def iter_records(self, batch: int = 1000) -> Iterator[AuditRecord]:
        last, p = 0, self._param
        while rows := self._conn.execute(f"{self._select()} WHERE id > {p} ORDER BY id LIMIT {p}",
                                         (last, batch)).fetchall():
            yield from (self._record(r) for r in rows)
            last = rows[-1][0]

    def count(self) -> int:
        return int(self._conn.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])

    def close(self) -> None:
        self._conn.close()

    # -- moderator reviews (see review.py) ------------------------------------------------------------
    def _has_labels(self) -> bool:
        return "audit_id" in self._label_columns()

    def _label_columns(self) -> set[str]:
        raise NotImplementedError

    def get(self, audit_id: int) -> AuditRecord | None:
        row = self._conn.execute(f"{self._select()} WHERE id = {self._param}", (audit_id,)).fetchone()
        return None if row is None else self._record(row)

    def write_label(self, label: ReviewLabel) -> int:
        """Store one review; returns its row number."""
        p, j = self._param, self._json_param
        sql = (f"INSERT INTO {LABELS_TABLE} (audit_id, time, reviewer, labels, verdicts, categories) "
               f"VALUES ({p}, {p}, {p}, {j}, {j}, {j}) RETURNING id")
        values = (label.audit_id, label.time, label.reviewer, json.dumps(dict(label.labels)),
                  json.dumps(dict(label.verdicts)), json.dumps(list(label.categories)))
        with self._write_transaction() as conn:
            return int(conn.execute(sql, values).fetchone()[0])

    def iter_labels(self, batch: int = 1000) -> Iterator[ReviewLabel]:
        if not self._has_labels():
            return
        last, p = 0, self._param
        columns = "id, audit_id, time, reviewer, labels, verdicts, categories"
        while rows := self._conn.execute(f"SELECT {columns} FROM {LABELS_TABLE} WHERE id > {p} ORDER BY id "
                                         f"LIMIT {p}", (last, batch)).fetchall():
            for r in rows:
                labels, verdicts, cats = (json.loads(v) if isinstance(v, str) else (v or {}) for v in r[4:7])
                yield ReviewLabel(audit_id=int(r[1]), time=float(r[2]), reviewer=r[3], labels=labels,
                                  verdicts=verdicts, categories=tuple(cats or ()), id=int(r[0]))
            last = rows[-1][0]

    def review_counts(self) -> dict[int, int]:
        """How many reviews each reviewed audit row has."""
        if not self._has_labels():
            return {}
        rows = self._conn.execute(f"SELECT audit_id, COUNT(*) FROM {LABELS_TABLE} GROUP BY audit_id").fetchall()
        return {int(a): int(n) for a, n in rows}

    def unreviewed(self, window: int) -> list[AuditRecord]:
        """The latest ``window`` audit rows that no one has reviewed yet, newest first."""
        p = self._param
        where = f"WHERE id NOT IN (SELECT audit_id FROM {LABELS_TABLE})" if self._has_labels() else ""
        rows = self._conn.execute(f"{self._select()} {where} ORDER BY id DESC LIMIT {p}", (window,)).fetchall()
        return [self._record(r) for r in rows]

    def _salt_from(self, conn: Any) -> bytes:
        p = self._param
        conn.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES ({p}, {p}) ON CONFLICT (key) DO NOTHING",
                     ("salt", secrets.token_hex(16)))
        conn.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES ({p}, {p}) ON CONFLICT (key) DO NOTHING",
                     ("schema_version", SCHEMA_VERSION))
        row = conn.execute(f"SELECT value FROM {META_TABLE} WHERE key = {p}", ("salt",)).fetchone()
        return bytes.fromhex(row[0])


class SqliteStore(_SqlStore):
    """SQLite in WAL mode; one connection, used by one thread at a time (the server's audit writer)."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{path}"
        if not create and not self.path.is_file():
            raise ConfigError(f"no audit log at {self.path}; start the server first or pass --url")
        if create and not self.path.parent.is_dir():
            raise ConfigError(f"the folder of the audit log {self.path} does not exist")
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._prepare(create)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the audit log {self.path}: {exc}") from None

    def _table_columns(self, conn: Any) -> set[str]:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})").fetchall()}

    def _label_columns(self) -> set[str]:
        return {row[1] for row in self._conn.execute(f"PRAGMA table_info({LABELS_TABLE})").fetchall()}

    def _write_transaction(self) -> contextlib.AbstractContextManager[Any]:
        return self._transaction()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")  # takes the write lock now, so a busy store waits, not fails later
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def write(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        with self._transaction() as conn:
            conn.executemany(self._insert_sql(), [self._row(r) for r in records])

    def salt(self) -> bytes:
        with self._transaction() as conn:
            return self._salt_from(conn)

    def check_writable(self) -> None:
        with self._transaction():  # BEGIN IMMEDIATE takes the write lock: proof enough, nothing written
            pass

class PostgresStore(_SqlStore):
    """PostgreSQL through psycopg 3; one connection, used by one thread at a time."""

    _param = "%s"
    _json_param = "%s::jsonb"
    _json_type = "JSONB"
    _id_column = "BIGSERIAL PRIMARY KEY"
    _bool_type = "BOOLEAN"
    _float_type = "DOUBLE PRECISION"
    _add_column = "ADD COLUMN IF NOT EXISTS"  # two workers may open an old store at once

    def __init__(self, url: str, *, create: bool = True) -> None:
        psycopg = require("psycopg", "server")
        scheme, rest = url.split(":", 1)
        self.url = redact(url)
        try:
            self._conn = psycopg.connect(scheme.split("+")[0] + ":" + rest, autocommit=True, connect_timeout=10)
            self._prepare(create)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot open the audit store {self.url}: {exc}") from None

    def _table_columns(self, conn: Any) -> set[str]:
        rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                            (TABLE,)).fetchall()
        return {row[0] for row in rows}

    def _label_columns(self) -> set[str]:
        return self._columns_of(LABELS_TABLE)

    def _columns_of(self, table: str) -> set[str]:
        rows = self._conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                                  (table,)).fetchall()
        return {row[0] for row in rows}

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[Any]:
        with self._conn.transaction():
            yield self._conn

    def _clean_text(self, text: str | None) -> str | None:
        cleaned = super()._clean_text(text)
        return None if cleaned is None else cleaned.replace("\x00", "\ufffd")  # PostgreSQL text has no NUL

    def write(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(self._insert_sql(), [self._row(r) for r in records])

    def salt(self) -> bytes:
        with self._conn.transaction():
            return self._salt_from(self._conn)

    def check_writable(self) -> None:
        row = self._conn.execute("SHOW transaction_read_only").fetchone()
        if row and row[0] != "off":
            raise ConfigError(f"the audit store {self.url} is read-only")
