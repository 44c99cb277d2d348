"""The audit store's interface and the one function that opens a store by URL.

- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (WAL mode, ``synchronous=FULL``: a row
  whose request got an answer survives a crash of the server process and of the machine);
- ``postgresql://user:password@host:port/dbname`` (psycopg 3, in the ``server`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from ..errors import ConfigError
from .records import AuditRecord, ReviewLabel
from .sql import PostgresStore, SqliteStore, redact, sqlite_path


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
        return SqliteStore(sqlite_path(url), create=create)
    if scheme.split("+")[0] in ("postgresql", "postgres"):
        return PostgresStore(url, create=create)
    raise ConfigError(f"audit store URL must start with sqlite:/// or postgresql://, got {redact(url)!r}")
