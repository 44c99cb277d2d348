"""The audit log: one row per decision, in SQLite (WAL) or PostgreSQL behind one interface.

Written by the server, read by ``railguard audit``, the review page and feedback training. ``records`` holds what
a row is, ``store`` the interface and :func:`open_store`, ``sql`` the two stores, ``export`` JSONL / Parquet.
"""

from .export import export_jsonl, export_parquet
from .records import AuditRecord, ReviewLabel, audit_text, input_chars, iso_time, make_record, text_digest
from .sql import SCHEMA_VERSION, PostgresStore, SqliteStore, redact
from .store import AuditStore, open_store

__all__ = ["SCHEMA_VERSION", "AuditRecord", "AuditStore", "PostgresStore", "ReviewLabel", "SqliteStore",
           "audit_text", "export_jsonl", "export_parquet", "input_chars", "iso_time", "make_record", "open_store",
           "redact", "text_digest"]
