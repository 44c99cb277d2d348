"""Old import path of :mod:`railguard.audit`."""

from ..audit import (SCHEMA_VERSION, AuditRecord, AuditStore, PostgresStore, ReviewLabel, SqliteStore, audit_text,
                     export_jsonl, export_parquet, input_chars, iso_time, make_record, open_store, redact, text_digest)

__all__ = ["SCHEMA_VERSION", "AuditRecord", "AuditStore", "PostgresStore", "ReviewLabel", "SqliteStore",
           "audit_text", "export_jsonl", "export_parquet", "input_chars", "iso_time", "make_record", "open_store",
           "redact", "text_digest"]
