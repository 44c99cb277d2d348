"""The audit log out of its store: JSON lines or Parquet."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .sql import JSON_COLUMNS
from .store import AuditStore


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
            for name in JSON_COLUMNS:
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
