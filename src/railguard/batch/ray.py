"""The Ray engine: the same guard over the same rows, as a Ray Data ``map_batches`` on an actor pool.

The input file is cut into shards (:func:`railguard.batch.sources.plan_shards`: row ranges of a Parquet file, byte
ranges of a JSONL file) and each actor reads its shards itself with the very readers the local engine
uses, judging them with its own guard, loaded once per actor. Ray's own readers are not used because
they drop or reject malformed rows, where railguard keeps every row and turns a bad one into an error
row. Results come back to the driver in input order and go through the same writer, so the output is
the local engine's, row for row (only ``latency_ms``, a timing, differs). Workers must see the input
path (a shared file system on a cluster).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .. import errors
from ..errors import ConfigError, RailguardError, require
from ..guard import Guard
from .core import judged_batches
from .sinks import output_row, parquet_schema, to_columns
from .sources import Fields, Shard, iter_shard, plan_shards, row_to_input

log = logging.getLogger(__name__)

#: Shards hold this many batches: large enough that Ray's per-task overhead is small, small enough
#: that every worker gets many and the last ones finish together.
_BATCHES_PER_SHARD = 32
_CONNECT_TIMEOUT_S = 5.0


class _Moderator:
    """A callable class Ray Data runs on each actor of the pool: it builds the guard once per actor."""

    def __init__(self, factory: Callable[[], Guard], fields: Fields, batch_size: int, threads: int) -> None:
        # The embedded encoder's threads: one actor per CPU, so one thread each unless told otherwise.
        os.environ.setdefault("RAILGUARD_THREADS", str(threads))
        self.guard = factory()
        self.fields, self.batch_size = fields, batch_size


class ShardModerator(_Moderator):
    """Reads and judges whole shards of a file; returns their output rows as JSON lines."""

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        lines: list[str] = []
        for path, start, count, offset in zip(batch["path"], batch["start"], batch["count"], batch["offset"]):
            shard = Shard(str(path), int(start), int(count), int(offset))
            for judged in judged_batches(iter_shard(shard, self.fields), self.guard, self.batch_size):
                lines.extend(json.dumps(output_row(row_id, verdict)) for row_id, verdict in judged)
        return {"row": lines}


class RowModerator(_Moderator):
    """For a Ray Dataset given in memory: adds the verdict columns to each batch of its rows."""

    def __call__(self, table):
        records = table.to_pylist()
        rows = [row_to_input(r, None if r.get(self.fields.id) is None else str(r.get(self.fields.id)), "row",
                             self.fields) for r in records]
        out = [output_row(row_id, verdict) for judged in judged_batches(rows, self.guard, self.batch_size)
               for row_id, verdict in judged]
        columns = to_columns(out)
        del columns["id"]
        for name, values in columns.items():
            if name in table.column_names:
                table = table.drop_columns([name])
            table = table.append_column(name, _column(name, values))
        return table


def _column(name: str, values: list):
    import pyarrow as pa

    return pa.array(values, type=parquet_schema().field(name).type)


def ray_batches(in_path: Path, factory: Callable[[], Guard], *, fields: Fields, batch_size: int, skip: int = 0,
                workers: int | None = None, address: str | None = None) -> Iterator[list[dict[str, Any]]]:
    """Output rows of ``in_path`` from row ``skip`` on, in order, a shard at a time, computed on Ray."""
    ray = _import_ray()
    _check_picklable(ray, factory)
    shards = plan_shards(in_path, batch_size * _BATCHES_PER_SHARD, skip)  # a bad input fails before Ray starts
    if not shards:
        return
    with ray_session(ray, workers, address) as size:
        ds = ray.data.from_items([dataclasses.asdict(s) for s in shards], override_num_blocks=len(shards))
        ds = ds.map_batches(_bind(ShardModerator, factory, fields, batch_size), batch_size=1,
                            compute=ray.data.ActorPoolStrategy(size=min(size, len(shards))), num_cpus=1)
        with _job_errors(ray):
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                yield [json.loads(line) for line in batch.column("row").to_pylist()]


def moderate_ray_dataset(ds, factory: Callable[[], Guard], *, fields: Fields, batch_size: int,
                         workers: int | None = None):
    """``ds`` with the verdict columns added, computed lazily by an actor pool of ``workers`` (default: all
    CPUs of the running Ray)."""
    ray = _import_ray()
    _check_picklable(ray, factory)
    size = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    return ds.map_batches(_bind(RowModerator, factory, fields, batch_size), batch_size=batch_size,
                          batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=size), num_cpus=1)


def _bind(cls: type[_Moderator], factory: Callable[[], Guard], fields: Fields, batch_size: int) -> type:
    """``cls`` with its constructor arguments built in: they travel with the class, not as objects in
    Ray's object store, which a restarted actor might no longer find."""

    def __init__(self) -> None:
        cls.__init__(self, factory, fields, batch_size, 1)

    return type(cls.__name__, (cls,), {"__init__": __init__})


def _import_ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = require("ray", "ray")
    require("ray.data", "ray")
    return ray


def _check_picklable(ray, factory: Callable[[], Guard]) -> None:
    try:
        ray.cloudpickle.dumps(factory)
    except Exception as exc:  # noqa: BLE001 - cloudpickle raises many types for unpicklable objects
        raise ConfigError(f"this guard cannot be sent to Ray workers ({type(exc).__name__}: {exc}); pass its "
                          "registry name (guard='embedded') or a function of no arguments that builds it") from None


@contextlib.contextmanager
def ray_session(ray, workers: int | None, address: str | None) -> Iterator[int]:
    """Connect to the cluster at ``address``, reuse a running Ray, or start a local one with ``workers``
    CPUs (default: all); yields how many actors to run and shuts down only what it started."""
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    started = False
    if not ray.is_initialized():
        if address:
            _check_reachable(address)
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.ERROR}
        if not address:
            options["num_cpus"] = workers or os.cpu_count() or 1
        try:
            ray.init(address=address or None, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot start or join Ray{f' at {address}' if address else ''}: {exc}") from None
        started = True
    data_log = logging.getLogger("ray.data")
    level = data_log.level
    data_log.setLevel(logging.ERROR)  # no execution plans, no notes on its own progress bars
    context = ray.data.DataContext.get_current()
    before = context.execution_options.preserve_order, context.enable_progress_bars
    context.execution_options.preserve_order = True  # rows come back in the input's order
    context.enable_progress_bars = False  # railguard's own bar counts rows
    try:
        yield workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = before
        data_log.setLevel(level)
        if started:
            ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail in seconds on an address nothing answers at (ray.init would retry for minutes)."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address must be HOST:PORT of a Ray head node (such as 10.0.0.5:6379), "
                          f"ray://HOST:PORT or auto; got '{address}'")
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); check the head "
                          "node's address (`ray status` there), or leave --address out to start a local Ray") from None


@contextlib.contextmanager
def _job_errors(ray) -> Iterator[None]:
    """A failure inside an actor (an unreadable shard, a guard that cannot load) as a RailguardError."""
    try:
        yield
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, RailguardError):
            raise cause from None
        # An actor that died in its constructor only carries the remote traceback as text.
        text = str(cause or exc)
        ours = re.findall(r"^railguard\.errors\.(\w+): (.+)$", text, flags=re.MULTILINE)
        if ours:
            name, message = ours[-1]
            kind = getattr(errors, name, RailguardError)
            raise (kind(message) if kind is not errors.MissingExtraError else RailguardError(message)) from None
        lines = text.strip().splitlines()
        raise RailguardError(f"the Ray job failed: {lines[-1] if lines else type(exc).__name__}") from None
