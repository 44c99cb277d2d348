"""Reading rows to moderate from JSONL, CSV and Parquet files, one row at a time.

:func:`iter_inputs` yields ``(row_id, GuardInput | error_message)`` for every row of a file, in order and
in constant memory. A malformed row (invalid JSON or UTF-8, a missing or non-string prompt, a blank
line) is yielded as its error message instead of a GuardInput, so a caller never loses or reorders
rows. A row's id is its ``id`` field, or its 0-based row number as a string when it has none. Messages
count from 1 as a person does: "line 2" is a file's second line, "row 2" the second data row of a CSV
(after its header; its line is given too) or a Parquet file, "column 5" the fifth character of the line.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import itertools
import json
import math
import sys
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import InputError
from ..types import GuardInput

#: File name endings :func:`iter_inputs` understands (``.gz`` is gzip-compressed).
SUPPORTED: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".csv", ".csv.gz", ".parquet", ".pq")
_JSONL, _CSV, _PARQUET = "jsonl", "csv", "parquet"
_FORMATS = {".jsonl": _JSONL, ".ndjson": _JSONL, ".csv": _CSV, ".parquet": _PARQUET, ".pq": _PARQUET}
_PARQUET_BATCH = 1024
# Documents moderated as context easily exceed the csv module's default 128 KiB field limit.
_CSV_FIELD_LIMIT = 2**31 - 1

Row = tuple[str, GuardInput | str]


@dataclass(frozen=True, slots=True)
class Fields:
    """Which field (JSON key, CSV or Parquet column) of a row holds what."""

    text: str = "prompt"
    response: str = "response"
    id: str = "id"
    context: str = "context"


def file_format(path: str | Path) -> tuple[str, bool]:
    """``(format, gzipped)`` of a file from its name; InputError for a name we cannot read."""
    name = Path(path).name.lower()
    gzipped = name.endswith(".gz")
    stem = name[: -len(".gz")] if gzipped else name
    fmt = _FORMATS.get(Path(stem).suffix)
    if fmt is None or (gzipped and fmt == _PARQUET):
        raise InputError(f"cannot read {path}: supported files end in {', '.join(SUPPORTED)}")
    return fmt, gzipped


def _open_binary(path: Path, gzipped: bool) -> IO[bytes]:
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


@contextlib.contextmanager
def _gzip_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(f"{path} is not a readable gzip file: {exc}") from None


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a .jsonl, .csv or .parquet file")


def iter_inputs(path: str | Path, fields: Fields = Fields()) -> Iterator[Row]:
    """Every row of ``path`` as ``(row_id, GuardInput)``, or ``(row_id, error_message)`` when malformed."""
    path = Path(path)
    fmt, gzipped = file_format(path)
    _check_readable(path)
    if fmt == _JSONL:
        return _jsonl_rows(path, gzipped, fields)
    if fmt == _CSV:
        return _csv_rows(path, gzipped, fields)
    return _parquet_rows(path, fields)


def count_rows(path: str | Path) -> int:
    """How many rows :func:`iter_inputs` will yield, read without keeping the file in memory."""
    path = Path(path)
    fmt, gzipped = file_format(path)
    _check_readable(path)
    if fmt == _PARQUET:
        return _parquet_file(path).metadata.num_rows
    if fmt == _CSV:
        with _gzip_errors(path), _open_csv(path, gzipped) as f:
            return sum(1 for _ in _csv_records(csv.DictReader(f)))
    lines, last = 0, b"\n"
    with _gzip_errors(path), _open_binary(path, gzipped) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def _row_id(value: Any, index: int) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return str(index)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _is_utf8(text: str) -> bool:
    # Lone surrogates come from invalid bytes decoded with surrogateescape or from JSON "\ud800" escapes.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _to_input(row: Mapping[str, Any], index: int, fields: Fields, *, where: str | None = None,
              empty_is_none: bool = False) -> Row:
    return row_to_input(row, _row_id(row.get(fields.id), index), where or f"row {index + 1}", fields,
                        empty_is_none=empty_is_none)


def row_to_input(row: Mapping[str, Any], row_id: str | None, where: str, fields: Fields = Fields(), *,
                 empty_is_none: bool = False) -> tuple[str | None, GuardInput | str]:
    """``(row_id, GuardInput)`` for one record, or ``(row_id, error_message)`` when it is malformed;
    ``where`` names the row in that message (``"row 12"``)."""
    if fields.text not in row:
        return row_id, f"{where} has no '{fields.text}' field"
    prompt = row[fields.text]
    if not isinstance(prompt, str):
        kind = "null" if prompt is None else type(prompt).__name__
        return row_id, f"{where}: '{fields.text}' must be a string, got {kind}"
    response = row.get(fields.response)
    context = row.get(fields.context)
    if empty_is_none:  # a CSV cannot tell an empty cell from a missing value
        response = response or None
        context = context or None
    try:
        item = GuardInput(prompt=prompt, response=response, context=context, id=row_id)
    except InputError as exc:
        return row_id, f"{where}: {exc}"
    texts = (item.prompt, item.response or "", *item.context)
    if not all(_is_utf8(t) for t in texts):
        return row_id, f"{where}: text is not valid UTF-8"
    return row_id, item


def _jsonl_rows(path: Path, gzipped: bool, fields: Fields, start: int = 0, offset: int = 0,
                limit: int | None = None) -> Iterator[Row]:
    """Rows from line ``start`` on (found at byte ``offset``), at most ``limit`` of them."""
    with _gzip_errors(path), _open_binary(path, gzipped) as f:
        if offset:
            f.seek(offset)
        for index, raw in enumerate(itertools.islice(f, limit), start):
            where = f"line {index + 1}"  # messages count lines from 1, as editors do; the row id stays 0-based
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield str(index), f"{where} is not valid UTF-8 (byte {exc.start + 1} of the line)"
                continue
            if index == 0:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                yield str(index), f"{where} is blank"
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield str(index), f"{where} is not valid JSON: {exc.msg} at column {exc.colno}"
                continue
            if not isinstance(row, dict):
                yield str(index), f"{where} is not a JSON object"
                continue
            yield _to_input(row, index, fields, where=where)


def _open_csv(path: Path, gzipped: bool) -> IO[str]:
    csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, _CSV_FIELD_LIMIT)))
    # surrogateescape keeps reading past invalid bytes; _to_input turns them into a row error.
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="surrogateescape", newline="")
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _csv_records(reader: csv.DictReader) -> Iterator[tuple[int, dict[str, Any] | csv.Error]]:
    """``(first line, record)`` for the reader's records (a quoted cell may span lines); a record the csv module
    rejects comes as its error, and reading goes on."""
    while True:
        first = reader.line_num + 1
        try:
            yield first, next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield first, exc


def _csv_rows(path: Path, gzipped: bool, fields: Fields) -> Iterator[Row]:
    with _gzip_errors(path), _open_csv(path, gzipped) as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            return
        if fields.text not in reader.fieldnames:
            raise InputError(f"{path} has no column '{fields.text}'; its columns are: "
                             f"{', '.join(reader.fieldnames)}")
        for index, (line, record) in enumerate(_csv_records(reader)):
            where = f"row {index + 1} (line {line})"
            if isinstance(record, csv.Error):
                yield str(index), f"{where} is not valid CSV: {record}"
            else:
                yield _to_input(record, index, fields, where=where, empty_is_none=True)


@contextlib.contextmanager
def _parquet_errors(path: Path) -> Iterator[None]:
    from pyarrow import ArrowException

    try:
        yield
    except ArrowException as exc:
        raise InputError(f"{path} is not a readable Parquet file: {exc}") from None


def _parquet_file(path: Path):
    import pyarrow.parquet as pq

    with _parquet_errors(path):
        return pq.ParquetFile(path)


def _parquet_rows(path: Path, fields: Fields, start: int = 0, limit: int | None = None) -> Iterator[Row]:
    """Rows ``start`` to ``start + limit``, read one record batch at a time from the row groups holding them."""
    parquet = _parquet_file(path)
    names = parquet.schema_arrow.names
    if fields.text not in names:
        raise InputError(f"{path} has no column '{fields.text}'; its columns are: {', '.join(names)}")
    wanted = [c for c in dict.fromkeys((fields.text, fields.response, fields.id, fields.context)) if c in names]
    meta = parquet.metadata
    stop = meta.num_rows if limit is None else min(meta.num_rows, start + limit)
    groups, index, first = [], 0, 0  # the row groups overlapping [start, stop); index: first row of the first
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if first + n > start and first < stop:
            index = index if groups else first
            groups.append(g)
        first += n
    if not groups:
        return
    with _parquet_errors(path):
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, row_groups=groups, columns=wanted):
            if index + batch.num_rows <= start:
                index += batch.num_rows
                continue
            for row in batch.to_pylist():
                if start <= index < stop:
                    yield _to_input(row, index, fields)
                index += 1
            if index >= stop:
                return


@dataclass(frozen=True, slots=True)
class Shard:
    """Rows ``start`` to ``start + count`` of a file, a unit of work for a worker that reads it itself.

    ``offset`` is the byte at which row ``start`` begins (JSONL); Parquet shards find their row groups.
    """

    path: str
    start: int
    count: int
    offset: int = 0


#: Files a worker can start reading in the middle of, so shards of them can be read in parallel.
SHARDABLE = (".jsonl", ".ndjson", ".parquet", ".pq")


def plan_shards(path: str | Path, rows_per_shard: int, skip: int = 0) -> list[Shard]:
    """Cut a Parquet or uncompressed JSONL file into shards of ``rows_per_shard`` rows, from row ``skip``.

    JSONL is scanned once for line starts (at disk speed, keeping only one offset per shard).
    """
    path = Path(path)
    fmt, gzipped = file_format(path)
    _check_readable(path)
    if gzipped or fmt == _CSV:
        raise InputError(f"cannot split {path.name} for parallel workers: they read files ending in "
                         f"{', '.join(SHARDABLE)}; convert it (or decompress it) first, or use the local engine")
    if fmt == _PARQUET:
        total = _parquet_file(path).metadata.num_rows
        return [Shard(str(path), s, min(rows_per_shard, total - s)) for s in range(skip, total, rows_per_shard)]
    starts: list[tuple[int, int]] = []  # (row, byte offset)
    target, lines, pos, last = skip, 0, 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            newlines = block.count(b"\n")
            while target <= lines + newlines:
                # row `target` starts after newline number `target` (1-based) of the file
                if target == 0:
                    starts.append((0, 0))
                else:
                    k, at = lines, -1
                    while k < target:
                        at = block.find(b"\n", at + 1)
                        k += 1
                    starts.append((target, pos + at + 1))
                target += rows_per_shard
            lines += newlines
            pos += len(block)
            last = block[-1:]
    total = lines + (last != b"\n")
    starts = [(row, offset) for row, offset in starts if row < total]
    return [Shard(str(path), row, min(rows_per_shard, total - row), offset) for row, offset in starts]


def iter_shard(shard: Shard, fields: Fields = Fields()) -> Iterator[Row]:
    """The rows of one shard, exactly as :func:`iter_inputs` yields them for the whole file."""
    path = Path(shard.path)
    fmt, _ = file_format(path)
    _check_readable(path)
    if fmt == _PARQUET:
        return _parquet_rows(path, fields, shard.start, shard.count)
    return _jsonl_rows(path, False, fields, shard.start, shard.offset, shard.count)
