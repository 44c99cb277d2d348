"""The audit log: one row per decision, in SQLite (WAL) or PostgreSQL behind one interface.

A row holds when, which request and item, which API key (its short id, never the key), which guard, the
verdict and its scores, the latencies, the input's length and a salted SHA-256 of its text. The raw text
is kept only when the operator turns ``store_text`` on. The store is chosen by URL:

- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (WAL mode, ``synchronous=FULL``: a row
  whose request got an answer survives a crash of the server process and of the machine);
- ``postgresql://user:password@host:port/dbname`` (psycopg 3, in the ``server`` extra).

Rows written by the guarding proxy (``/v1/chat/completions``) also say which rail decided (``direction``:
``input`` or ``output``), whether the upstream LLM was called, and the streaming mode. A store made before
these columns existed gets them on open (``ALTER TABLE ... ADD COLUMN``; old rows keep their data, with
the new fields empty).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError, require
from ..types import GuardInput, Verdict

TABLE = "railguard_audit"
META_TABLE = "railguard_audit_meta"
LABELS_TABLE = "railguard_labels"  # moderators' reviews of audited decisions (schema version 3)
SCHEMA_VERSION = "3"
_COLUMNS = ("time", "request_id", "item", "endpoint", "key_id", "guard", "tier", "flagged", "error",
            "decisions", "scores", "categories", "guard_ms", "latency_ms", "input_chars", "text_sha256", "text",
            "direction", "upstream_called", "stream_output")
# Columns added after schema version 1, with their SQL types (by dialect attribute); added on open when missing.
_ADDED_COLUMNS = {"direction": "TEXT", "upstream_called": "_bool_type", "stream_output": "TEXT"}
_JSON_COLUMNS = frozenset({"decisions", "scores", "categories"})


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One decision as the audit log keeps it."""

    time: float  # seconds since the epoch
    request_id: str
    item: int  # the input's position in its request
    endpoint: str  # "moderations" or "guard"
    key_id: str | None  # short hash of the API key; None when the server runs without keys
    guard: str
    tier: str
    flagged: bool
    error: str | None
    decisions: Mapping[str, bool | None] = field(default_factory=dict)
    scores: Mapping[str, float] = field(default_factory=dict)
    categories: Mapping[str, float] = field(default_factory=dict)
    guard_ms: float = 0.0  # the guard's own time for this input
    latency_ms: float = 0.0  # request received -> verdict ready, as the server saw it
    input_chars: int = 0
    text_sha256: str = ""
    text: str | None = None
    direction: str | None = None  # "input" or "output" for the proxy's rails; None for the moderation endpoints
    upstream_called: bool | None = None  # proxy only: whether the request reached the upstream LLM
    stream_output: str | None = None  # proxy streams only: "live", "window" or "buffer"
    id: int | None = None  # the store's row number, once written

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``time`` as an ISO 8601 UTC string."""
        out = asdict(self)
        out["time"] = iso_time(self.time)
        out["decisions"], out["scores"], out["categories"] = (
            dict(self.decisions), dict(self.scores), dict(self.categories))
        return out


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="milliseconds")


def audit_text(item: GuardInput) -> str:
    """The text an input's hash covers: the prompt alone, or a JSON object when a response or context is there."""
    if item.response is None and not item.context and item.action is None and not item.trajectory:
        return item.prompt
    data = {"prompt": item.prompt, "response": item.response, "context": list(item.context)}
    if item.action is not None or item.trajectory:  # agents: the action and the turns are part of the input
        data["action"] = item.action.to_dict() if item.action is not None else None
        data["trajectory"] = [{k: getattr(t, k) for k in t.__slots__} for t in item.trajectory]
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def input_chars(item: GuardInput) -> int:
    return len(item.prompt) + len(item.response or "") + sum(len(doc) for doc in item.context)


def text_digest(salt: bytes, text: str) -> str:
    """Salted SHA-256 of a text (hex); equal texts give equal digests under one salt."""
    return hashlib.sha256(salt + text.encode("utf-8", "surrogatepass")).hexdigest()


def make_record(*, item: GuardInput, verdict: Verdict, index: int, request_id: str, endpoint: str,
                key_id: str | None, guard: str, salt: bytes, received: float, latency_ms: float,
                store_text: bool, direction: str | None = None, upstream_called: bool | None = None,
                stream_output: str | None = None) -> AuditRecord:
    text = audit_text(item)
    return AuditRecord(
        time=received, request_id=request_id, item=index, endpoint=endpoint, key_id=key_id, guard=guard,
        tier=verdict.tier, flagged=verdict.flagged, error=verdict.error,
        decisions={t: getattr(verdict, t) for t in ("prompt_harmful", "response_harmful", "refusal",
                                                    "jailbreak", "injection")},
        scores={k: float(v) for k, v in verdict.scores.items()},
        categories={k: float(v) for k, v in verdict.categories.items()},
        guard_ms=float(verdict.latency_ms), latency_ms=latency_ms, input_chars=input_chars(item),
        text_sha256=text_digest(salt, text), text=text if store_text else None,
        direction=direction, upstream_called=upstream_called, stream_output=stream_output,
    )


@dataclass(frozen=True, slots=True)
class ReviewLabel:
    """A moderator's review of one audited decision: per task, the label the moderator says is right."""

    audit_id: int  # the audit row reviewed
    time: float  # seconds since the epoch
    reviewer: str | None  # the reviewer's key id; None on a server without keys
    labels: Mapping[str, bool]  # task -> the true label, as the moderator sees it
    verdicts: Mapping[str, bool]  # task -> what the guard had decided (labels differ where it was wrong)
    categories: tuple[str, ...] = ()  # categories the moderator picked (empty: none picked)
    id: int | None = None

    def correct(self, task: str) -> bool | None:
        if task not in self.labels or task not in self.verdicts:
            return None
        return bool(self.labels[task]) == bool(self.verdicts[task])

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "audit_id": self.audit_id, "time": iso_time(self.time), "reviewer": self.reviewer,
                "labels": dict(self.labels), "verdicts": dict(self.verdicts), "categories": list(self.categories),
                "correct": {t: self.correct(t) for t in self.labels}}


class AuditStore(Protocol):
    """Where audit rows go. ``write`` returns only once the rows are durable."""

    url: str  # with any password removed

    def write(self, records: Sequence[AuditRecord]) -> None: ...
    def salt(self) -> bytes: ...
    def check_writable(self) -> None: ...
    def tail(self, n: int) -> list[AuditRecord]: ...
    def iter_records(self, batch: int = 1000) -> Iterator[AuditRecord]: ...
    def count(self) -> int: ...
    def close(self) -> None: ...
    def get(self, audit_id: int) -> AuditRecord | None: ...
    def write_label(self, label: ReviewLabel) -> int: ...
    def iter_labels(self, batch: int = 1000) -> Iterator[ReviewLabel]: ...
    def review_counts(self) -> dict[int, int]: ...
    def unreviewed(self, window: int) -> list[AuditRecord]: ...


def open_store(url: str, *, create: bool = True) -> AuditStore:
    """The store a URL names; ``create=False`` (reading tools) refuses to make a new, empty one."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        return SqliteStore(_sqlite_path(url), create=create)
    if scheme.split("+")[0] in ("postgresql", "postgres"):
        return PostgresStore(url, create=create)
    raise ConfigError(f"audit store URL must start with sqlite:/// or postgresql://, got {redact(url)!r}")


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


def _sqlite_path(url: str) -> str:
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
    _columns: tuple[str, ...] = _COLUMNS  # the columns the table has (an old store opened read-only lacks some)

    def _table_columns(self, conn: Any) -> set[str]:
        raise NotImplementedError

    def _migrate(self, conn: Any) -> None:
        """Add the columns a store made by an older version lacks; rows and their data stay as they are."""
        present = self._table_columns(conn)
        for name, sql_type in _ADDED_COLUMNS.items():
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
        values = ", ".join(self._json_param if c in _JSON_COLUMNS else self._param for c in _COLUMNS)
        return f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({values})"

    def _row(self, r: AuditRecord) -> tuple[Any, ...]:
        return (r.time, r.request_id, r.item, r.endpoint, r.key_id, r.guard, r.tier, bool(r.flagged), r.error,
                json.dumps(dict(r.decisions)), json.dumps(dict(r.scores)), json.dumps(dict(r.categories)),
                r.guard_ms, r.latency_ms, r.input_chars, r.text_sha256, self._clean_text(r.text), r.direction,
                None if r.upstream_called is None else bool(r.upstream_called), r.stream_output)

    def _clean_text(self, text: str | None) -> str | None:
        return None if text is None else text.encode("utf-8", "replace").decode("utf-8")

    def _record(self, row: Sequence[Any]) -> AuditRecord:
        values = dict(zip(("id", *self._columns), row))
        for name in _JSON_COLUMNS:
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
            if create:
                with self._transaction() as conn:
                    for statement in self._ddl():
                        conn.execute(statement)
                    self._migrate(conn)
                    self._salt_from(conn)
            else:
                present = self._table_columns(self._conn)
                self._columns = tuple(c for c in _COLUMNS if c in present)
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
            if create:
                with self._conn.transaction():
                    for statement in self._ddl():
                        self._conn.execute(statement)
                    self._migrate(self._conn)
                    self._salt_from(self._conn)
            else:
                present = self._table_columns(self._conn)
                self._columns = tuple(c for c in _COLUMNS if c in present)
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



# ---------------------------------------------------------------------------------------------- export

def export_jsonl(store: AuditStore, out: Any) -> int:
    """Write every row as one JSON line to the text stream ``out``; returns the number of rows."""
    n = 0
    for record in store.iter_records():
        out.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
        n += 1
    return n


def export_parquet(store: AuditStore, path: str | Path, *, rows_per_group: int = 10_000) -> int:
    """Write every row to a Parquet file (scores as maps, time as a UTC timestamp); returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("id", pa.int64()), ("time", pa.timestamp("ms", tz="UTC")), ("request_id", pa.string()),
        ("item", pa.int32()), ("endpoint", pa.string()), ("key_id", pa.string()), ("guard", pa.string()),
        ("tier", pa.string()), ("flagged", pa.bool_()), ("error", pa.string()),
        ("decisions", pa.map_(pa.string(), pa.bool_())), ("scores", pa.map_(pa.string(), pa.float64())),
        ("categories", pa.map_(pa.string(), pa.float64())), ("guard_ms", pa.float64()),
        ("latency_ms", pa.float64()), ("input_chars", pa.int64()), ("text_sha256", pa.string()),
        ("text", pa.string()), ("direction", pa.string()), ("upstream_called", pa.bool_()),
        ("stream_output", pa.string()),
    ])
    n = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        chunk: list[dict[str, Any]] = []
        for record in store.iter_records():
            row = asdict(record)
            row["time"] = datetime.fromtimestamp(record.time, tz=timezone.utc)
            for name in _JSON_COLUMNS:
                row[name] = list(row[name].items())
            chunk.append(row)
            if len(chunk) >= rows_per_group:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                n += len(chunk)
                chunk = []
        if chunk or n == 0:
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
            n += len(chunk)
    return n
