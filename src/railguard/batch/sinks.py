"""Where moderated rows go: one JSON line per row (``.jsonl``, ``.jsonl.gz``) or typed Parquet columns.

An output row is ``Verdict.to_dict()`` plus the input row's ``id``. In Parquet the same information is
one column per field (:data:`PARQUET_SCHEMA`), so a verdict file can be queried or joined back to its
input on ``id`` (rows also keep the input's order). :func:`completed_rows` finds where an interrupted
JSONL run stopped, cutting off a half-written last line, so ``--resume`` neither loses nor repeats a row.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import ConfigError
from ..types import TASKS, Verdict

#: Output file endings: JSON lines, optionally gzipped, or Parquet.
OUTPUT_FORMATS = (".jsonl", ".jsonl.gz", ".ndjson", ".parquet", ".pq")
_PARQUET_ROWS_PER_GROUP = 8192
# Fields of a verdict that only a policy or the rules guard sets; Parquet keeps them as one JSON column.
_POLICY_FIELDS = ("explanation", "pii", "redacted_text", "redacted_response")


def output_row(row_id: str | None, verdict: Verdict) -> dict[str, Any]:
    """What one output line holds: the verdict's fields and the input row's id."""
    return {**verdict.to_dict(), "id": row_id}


def parquet_schema():
    """Column names and types of a Parquet verdict file.

    ``id`` string; ``flagged`` bool; one nullable bool per task (null: not applicable or undecided);
    ``scores`` and ``categories`` map<string, double>; ``tier`` string; ``latency_ms`` double;
    ``error`` string (null unless the row failed); ``action`` string (set by a policy) and
    ``policy_details`` JSON text of the policy's explanation, PII findings and redactions (null without).
    """
    import pyarrow as pa

    return pa.schema([
        ("id", pa.string()), ("flagged", pa.bool_()), *[(t, pa.bool_()) for t in TASKS],
        ("scores", pa.map_(pa.string(), pa.float64())), ("categories", pa.map_(pa.string(), pa.float64())),
        ("tier", pa.string()), ("latency_ms", pa.float64()), ("error", pa.string()), ("action", pa.string()),
        ("policy_details", pa.string()),
    ])


def to_columns(rows: list[Mapping[str, Any]]) -> dict[str, list]:
    """Output rows as the columns of :func:`parquet_schema`."""
    details = [{k: r[k] for k in _POLICY_FIELDS if k in r} for r in rows]
    columns: dict[str, list] = {name: [r.get(name) for r in rows]
                                for name in ("id", "flagged", *TASKS, "tier", "latency_ms", "error", "action")}
    columns["scores"] = [list(r.get("scores", {}).items()) for r in rows]
    columns["categories"] = [list(r.get("categories", {}).items()) for r in rows]
    columns["policy_details"] = [json.dumps(d, ensure_ascii=False) if d else None for d in details]
    return columns


class Sink(Protocol):
    def write(self, rows: list[dict[str, Any]]) -> None: ...
    def close(self) -> None: ...


class JsonlSink:
    """JSON lines, flushed after every write so a crash loses at most the line being written."""

    def __init__(self, path: Path, append: bool = False) -> None:
        mode = "at" if append else "wt"
        self._f: IO[str] = (gzip.open(path, mode, encoding="utf-8") if path.name.lower().endswith(".gz")
                            else open(path, mode[0], encoding="utf-8"))

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._f.write("".join(json.dumps(r) + "\n" for r in rows))
        self._f.flush()

    def close(self) -> None:
        self._f.close()


class ParquetSink:
    """Parquet row groups of :data:`_PARQUET_ROWS_PER_GROUP` rows; memory holds one group at most."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self._schema = parquet_schema()
        self._writer = pq.ParquetWriter(path, self._schema)
        self._pending: list[dict[str, Any]] = []

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._pending.extend(rows)
        if len(self._pending) >= _PARQUET_ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending:
            self._writer.write_table(pa.Table.from_pydict(to_columns(self._pending), schema=self._schema))
            self._pending = []

    def close(self) -> None:
        self._flush()
        self._writer.close()


def output_format(path: Path) -> str:
    """``jsonl`` or ``parquet`` from the output file's name; ConfigError for anything else."""
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")):
        return "jsonl"
    raise ConfigError(f"cannot write {path.name}: the output must end in {', '.join(OUTPUT_FORMATS)}")


def open_sink(path: Path, append: bool = False) -> Sink:
    return ParquetSink(path) if output_format(path) == "parquet" else JsonlSink(path, append=append)


def completed_rows(path: Path) -> int:
    """How many complete rows a JSONL output holds, after cutting off a torn last line.

    A crash can leave the last line half-written (no newline, or not a whole verdict): it is truncated
    away here, so that row is judged again rather than lost or written twice.
    """
    if output_format(path) != "jsonl" or path.name.lower().endswith(".gz"):
        raise ConfigError(f"--resume appends to an uncompressed .jsonl output, not {path.name}; "
                          "write .jsonl (compress it afterwards) to be able to resume")
    rows = good = 0  # complete lines and the byte offset after the last of them
    last = b""
    with open(path, "rb") as f:
        for line in f:
            if last:
                rows, good = rows + 1, good + len(last)
            last = line
    if last and last.endswith(b"\n") and _row_id(last) is not None:
        rows, good = rows + 1, good + len(last)
    with open(path, "r+b") as f:
        f.truncate(good)
    return rows


def output_ids(path: Path) -> Iterator[str | None]:
    """The ``id`` of every line of a JSONL output, in order (None for a line that is not a verdict row)."""
    with open(path, "rb") as f:
        for line in f:
            yield _row_id(line)


def _row_id(line: bytes) -> str | None:
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return row.get("id") if isinstance(row, dict) and "flagged" in row else None
