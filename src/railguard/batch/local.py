"""Moderating whole datasets: files (JSONL, CSV, Parquet) in, one verdict per row out, in order.

Two engines run the same guard over the same rows and write the same output:

- ``local`` streams the file through ``guard.check`` in batches in this process, in constant memory;
- ``ray`` cuts the file into shards and runs them as a Ray Data ``map_batches`` on an actor pool, one
  guard per actor, on a local Ray or an existing cluster (:mod:`railguard.batch.ray`).

A row that cannot be judged (malformed, or the guard failed on it) becomes a failed, fail-closed verdict
that keeps the row's id: the output always has exactly one row per input row, in the input's order, so
an interrupted JSONL run can be resumed where it stopped (``resume=True``).

:func:`moderate_dataset` is the Python entry point for files and for data already in memory.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigError
from ..guard import Guard
from ..load import resolve, under_policy
from ..policy import load_policy
from ..progress import progress_bar
from ..registry import known_guard
from ..types import GuardInput, Verdict
from .core import judged_batches
from .ray import moderate_ray_dataset, ray_batches  # Ray itself is imported only when a run uses it
from .sinks import completed_rows, open_sink, output_format, output_ids, output_row
from .sources import Fields, Row, count_rows, iter_inputs, row_to_input

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
#: A guard, its registry name, or a function of no arguments that builds one (what Ray workers call).
GuardSpec = Guard | str | Callable[[], Guard]


@dataclass(frozen=True, slots=True)
class ModerateSummary:
    """What a :func:`moderate_file` run did. ``flagged`` counts every flagged row, failed rows included;
    ``skipped`` counts rows a resumed run found already done in the output (not in ``rows``)."""

    rows: int
    flagged: int
    errors: int
    seconds: float
    out_path: Path
    skipped: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def guard_factory(guard: GuardSpec, policy=None, settings: Settings | None = None) -> Callable[[], Guard]:
    """A function of no arguments that builds the guard; it is what each Ray actor calls once.

    A registry name travels as the name (each worker loads its own model) with the settings tree, read here
    when not given: every actor builds with the job's settings, not its own process's environment. A Guard
    object travels as itself, so it must be picklable to run on Ray.
    """
    if policy is not None:
        policy = load_policy(policy)  # a bad policy fails here, before any input is read
    if settings is None and (isinstance(guard, str) or policy is not None):  # read only where something is built
        settings = Settings.from_env()
    if isinstance(guard, str):
        known_guard(guard)  # an unknown name fails here, not later inside every Ray actor
        return functools.partial(resolve, guard, policy=policy, settings=settings)
    if isinstance(guard, Guard):
        return (functools.partial(_with_policy, guard, policy, settings) if policy is not None
                else functools.partial(_same, guard))
    if callable(guard):
        return guard if policy is None else functools.partial(_built_with_policy, guard, policy, settings)
    raise ConfigError(f"guard must be a registry name, a Guard or a function building one, "
                      f"got {type(guard).__name__}")


def _same(guard: Guard) -> Guard:
    return guard


def _with_policy(guard: Guard, policy, settings: Settings) -> Guard:
    return under_policy(guard, policy, settings=settings)  # it builds the scanner and scorer the policy needs


def _built_with_policy(build: Callable[[], Guard], policy, settings: Settings) -> Guard:
    return _with_policy(build(), policy, settings)


def moderate_file(in_path: str | Path, out_path: str | Path, guard: GuardSpec, *, batch_size: int = 64,
                  text_field: str = "prompt", response_field: str = "response", id_field: str = "id",
                  context_field: str = "context", progress: bool = True, resume: bool = False,
                  engine: str = "local", workers: int | None = None, address: str | None = None,
                  policy=None, settings: Settings | None = None) -> ModerateSummary:
    """Check every row of ``in_path`` with ``guard``; write one output row per input row to ``out_path``.

    ``out_path`` ending in ``.jsonl`` (``.gz``: compressed) gets ``Verdict.to_dict()`` plus the row's
    ``id`` (its 0-based row number when the row has none) per line; ``.parquet`` gets the same as typed
    columns (:func:`railguard.batch.sinks.parquet_schema`). ``resume=True`` keeps the rows an interrupted
    run already wrote to a ``.jsonl`` output and appends the rest. ``engine="ray"`` runs on Ray with
    ``workers`` actors (default: all CPUs), on a new local Ray or the cluster at ``address``. ``settings``: the
    tree the guard is built with (read from the environment, once, when not given).
    """
    in_path, out_path = Path(in_path), Path(out_path)
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine '{engine}'; choose one of: {', '.join(ENGINES)}")
    if engine == "local" and (workers is not None or address is not None):
        raise ConfigError("workers and address go with the ray engine (--engine ray)")
    if out_path.exists() and in_path.exists() and out_path.resolve() == in_path.resolve():
        raise ConfigError(f"the output {out_path} would overwrite the input; choose another output path")
    if not out_path.parent.is_dir():
        raise ConfigError(f"output folder {out_path.parent} does not exist")
    output_format(out_path)
    fields = Fields(text=text_field, response=response_field, id=id_field, context=context_field)
    rows = iter_inputs(in_path, fields)
    # Take the first row before loading the guard or touching the output, so a file we cannot read
    # fails fast and leaves no empty output behind.
    first = list(itertools.islice(rows, 1))
    factory = guard_factory(guard, policy, settings)
    done = _resume_point(in_path, out_path, fields) if resume and out_path.exists() else 0
    total = count_rows(in_path) - done if progress else None
    # A resumed run judges again the rows of the interrupted batch that were written, and drops them:
    # every batch is then the one an uninterrupted run judges (a model's scores may depend on its batch).
    aligned = done - done % batch_size
    if engine == "ray":
        batches = ray_batches(in_path, factory, fields=fields, batch_size=batch_size, skip=aligned,
                              workers=workers, address=address)
    else:
        rows = itertools.islice(itertools.chain(first, rows), aligned, None)
        batches = (list(itertools.starmap(output_row, b)) for b in judged_batches(rows, factory(), batch_size))
    batches = _drop_first(batches, done - aligned)

    start = time.perf_counter()
    n = flagged = errors = 0
    title = f"moderating {in_path.name}" + (f" (resuming after {done:,} rows)" if done else "")
    sink = open_sink(out_path, append=done > 0)
    try:
        with progress_bar(title, total, enabled=progress) as bar:
            for out_rows in batches:
                sink.write(out_rows)
                n += len(out_rows)
                flagged += sum(r["flagged"] for r in out_rows)
                errors += sum(r["error"] is not None for r in out_rows)
                bar.advance(len(out_rows))
    except BaseException:
        sink.close()
        if n == 0 and not done:  # a run that failed before its first row leaves no empty output behind
            out_path.unlink(missing_ok=True)
        raise
    sink.close()
    return ModerateSummary(rows=n, flagged=flagged, errors=errors, seconds=time.perf_counter() - start,
                           out_path=out_path, skipped=done)


def _resume_point(in_path: Path, out_path: Path, fields: Fields) -> int:
    """How many rows of ``in_path`` are already in ``out_path``, checking that they are its first rows."""
    done = completed_rows(out_path)
    seen = 0
    for (row_id, _), out_id in zip(iter_inputs(in_path, fields), itertools.islice(output_ids(out_path), done)):
        if row_id != out_id:
            raise ConfigError(f"cannot resume: line {seen + 1} of {out_path} is row '{out_id}' but row "
                              f"{seen} of {in_path} is '{row_id}'; the output belongs to another input "
                              "(choose a new output, or run without --resume to overwrite it)")
        seen += 1
    if seen < done:
        raise ConfigError(f"cannot resume: {out_path} has {done:,} rows but {in_path} only {seen:,}; "
                          "the output belongs to another input")
    return done


def _drop_first(batches: Iterable[list[Any]], n: int) -> Iterator[list[Any]]:
    for batch in batches:
        if n:
            batch, n = batch[n:], max(0, n - len(batch))
        if batch:
            yield batch


def moderate_dataset(data: Any, *, guard: GuardSpec = "default", policy=None, engine: str = "local",
                     out: str | Path | None = None, resume: bool = False, batch_size: int = 64,
                     text_field: str = "prompt", response_field: str = "response", id_field: str = "id",
                     context_field: str = "context", workers: int | None = None, address: str | None = None,
                     progress: bool = False, settings: Settings | None = None):
    """Moderate a dataset with ``guard`` (a registry name, a Guard, or a function building one).

    What comes back depends on what goes in:

    - a file path (JSONL, CSV, Parquet) and ``out``: the output file is written (see
      :func:`moderate_file`; ``resume`` and both engines apply) and a :class:`ModerateSummary` returned;
      a file path without ``out`` (local engine): an iterator of verdicts, as below;
    - a ``ray.data.Dataset`` with ``engine="ray"``: a new Dataset, lazily computed, with the verdict
      columns of :func:`railguard.batch.sinks.parquet_schema` (all but ``id``) added to each row's own;
    - anything else iterable, row by row (a list, a generator, a ``ray.data.Dataset`` with the local
      engine, a pyarrow Table or a pandas DataFrame): a lazy iterator of one :class:`Verdict` per row,
      in order, whose ``id`` is the row's id (its ``id_field``, else its 0-based position). A row is a
      prompt string, a :class:`GuardInput`, or a mapping with ``text_field`` (and optionally
      ``response_field``, ``context_field``, ``id_field``); anything else becomes a failed verdict.

    ``settings``: the tree a named guard is built with, here and in every Ray actor (read from the environment,
    once, when not given).
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine '{engine}'; choose one of: {', '.join(ENGINES)}")
    fields = Fields(text=text_field, response=response_field, id=id_field, context=context_field)
    if isinstance(data, (str, Path)):
        if out is not None:
            return moderate_file(data, out, guard, batch_size=batch_size, text_field=text_field,
                                 response_field=response_field, id_field=id_field, context_field=context_field,
                                 progress=progress, resume=resume, engine=engine, workers=workers,
                                 address=address, policy=policy, settings=settings)
        if engine == "ray":
            raise ConfigError("with engine='ray' a file is moderated into a file: give out=PATH")
        return _verdicts(iter_inputs(data, fields), guard_factory(guard, policy, settings)(), batch_size)
    if out is not None or resume:
        raise ConfigError("out= and resume= go with a file path; for data in memory, write the verdicts yourself")
    if engine == "ray":
        return moderate_ray_dataset(data, guard_factory(guard, policy, settings), fields=fields, batch_size=batch_size,
                                    workers=workers)
    return _verdicts(_memory_rows(_records(data), fields), guard_factory(guard, policy, settings)(), batch_size)


def _verdicts(rows: Iterable[Row], guard: Guard, batch_size: int) -> Iterator[Verdict]:
    for batch in judged_batches(rows, guard, batch_size):
        for row_id, verdict in batch:
            yield verdict if verdict.id == row_id else dataclasses.replace(verdict, id=row_id)


def _memory_rows(records: Iterable[Any], fields: Fields) -> Iterator[Row]:
    for index, item in enumerate(records):
        if isinstance(item, str):
            yield str(index), GuardInput(prompt=item, id=str(index))
        elif isinstance(item, GuardInput):
            row_id = item.id if item.id is not None else str(index)
            yield row_id, dataclasses.replace(item, id=row_id)
        elif isinstance(item, Mapping):
            raw_id = item.get(fields.id)
            yield row_to_input(item, str(index) if raw_id is None else str(raw_id), f"row {index}", fields)
        else:
            yield str(index), f"row {index} is a {type(item).__name__}, not a prompt, GuardInput or mapping"


def _records(data: Any) -> Iterable[Any]:
    """Rows of in-memory data: Ray Datasets, Arrow tables and DataFrames row by row, other iterables as they are."""
    if hasattr(data, "iter_rows") and hasattr(data, "map_batches"):  # a ray.data.Dataset
        return data.iter_rows()
    if type(data).__module__.startswith("pandas"):
        import pyarrow as pa

        data = pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "to_batches") and hasattr(data, "schema"):  # a pyarrow Table
        return (row for batch in data.to_batches() for row in batch.to_pylist())
    if isinstance(data, (bytes, Mapping)) or not isinstance(data, Iterable):
        raise ConfigError(f"cannot moderate a value of type {type(data).__name__}: give a file path, a "
                          "ray.data.Dataset, a pyarrow Table, a pandas DataFrame or an iterable of rows")
    return data
