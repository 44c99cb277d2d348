"""Batch moderation: throughput of the local and Ray engines, and memory over a long file.

Writes synthetic short prompts (all different) to a temporary JSONL or Parquet file and runs
``moderate_file`` on it in a fresh process per measurement:

- throughput of each engine (``--engine local,ray``) on ``--throughput-rows`` rows at equal cores
  (``--cores``): the local engine is one process with that many encoder threads, the Ray engine a local
  Ray with that many one-thread actors; Ray's start-up is timed apart from the run;
- peak resident memory (VmHWM) of the local engine after ``--small-rows`` and after ``--rows`` rows,
  which should be the same if memory is flat;
- from the local figure: rows/s per core and the core-hours of a 100M-row job.

    python bench/batch.py --out bench/results/batch.json
    python bench/batch.py --rows 20000 --throughput-rows 2000 --engine local   # a quick look

Run by hand on an otherwise idle machine; never part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from speed import memory_mb, short_texts

JOB_ROWS = 100_000_000


def write_input(path: Path, n: int, seed: int = 0) -> Path:
    texts = short_texts(n, random.Random(seed))
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"id": [f"r{i}" for i in range(n)], "prompt": texts}), path, row_group_size=50_000)
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"id": f"r{i}", "prompt": t}) + "\n" for i, t in enumerate(texts))
    return path


class TimedSink:
    """Wraps the output writer to note when each block of rows arrives (the steady rate comes from that)."""

    def __init__(self, sink, arrivals: list[tuple[float, int]]) -> None:
        self.sink, self.arrivals = sink, arrivals

    def write(self, rows) -> None:
        self.sink.write(rows)
        self.arrivals.append((time.perf_counter(), len(rows)))

    def close(self) -> None:
        self.sink.close()


def steady_rate(arrivals: list[tuple[float, int]], skip: int) -> float | None:
    """Rows/s after the first ``skip`` blocks: start-up (actors, model loads) left out.

    Ray hands blocks back in input order, so they arrive in bursts: over a short run this is an upper
    estimate for the Ray engine; ``rows_per_s`` (the whole run) is the figure to quote.
    """
    if len(arrivals) <= skip + 1:
        return None
    rows = sum(n for _, n in arrivals[skip:])
    return rows / (arrivals[-1][0] - arrivals[skip - 1][0]) if skip else None


class NullGuard:
    """Judges nothing, instantly: what is left of a run with it is the engine's own cost per row."""

    name = "null"

    def check(self, inputs):
        from railguard.types import Verdict

        return [Verdict(prompt_harmful=False, jailbreak=False, injection=False, tier=self.name, id=x.id,
                        scores={"prompt_harmful": 0.0, "jailbreak": 0.0, "injection": 0.0}) for x in inputs]


def child(args: argparse.Namespace) -> None:
    """One measurement in this fresh process; prints its figures as one JSON line."""
    import railguard.batch.local as moderate
    from railguard.batch.local import moderate_file

    arrivals: list[tuple[float, int]] = []
    opened = moderate.open_sink
    moderate.open_sink = lambda *a, **k: TimedSink(opened(*a, **k), arrivals)
    result: dict = {}
    if args.child_engine == "ray":
        from railguard.batch.ray import _import_ray

        ray = _import_ray()
        start = time.perf_counter()
        ray.init(num_cpus=args.cores, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        result["ray_start_s"] = time.perf_counter() - start
    else:
        os.environ["RAILGUARD_THREADS"] = str(args.cores)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        guard = NullGuard() if args.guard == "null" else args.guard  # defined in __main__: Ray pickles it whole
        summary = moderate_file(args.child_input, Path(tmp) / "out.jsonl", guard, batch_size=args.batch_size,
                                progress=False, engine=args.child_engine,
                                workers=args.cores if args.child_engine == "ray" else None)
        # steady: after the first block from every worker (Ray) or the first batch (local)
        steady = steady_rate(arrivals, args.cores if args.child_engine == "ray" else 1)
        result |= {"rows": summary.rows, "seconds": time.perf_counter() - start, "rows_per_s": summary.rows_per_s,
                   "steady_rows_per_s": steady, "errors": summary.errors, **memory_mb()}
    print(json.dumps(result))


def measure(args: argparse.Namespace, engine: str, path: Path, guard: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child-engine", engine, "--child-input", str(path), "--cores", str(args.cores),
           "--guard", guard or args.guard, "--batch-size", str(args.batch_size)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{engine} run failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{engine:5} {guard or args.guard} {path.name}: {json.dumps(result)}", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="local,ray", help="engines to time, comma-separated")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the long run (memory)")
    parser.add_argument("--small-rows", type=int, default=10_000, help="rows of the short run (memory)")
    parser.add_argument("--throughput-rows", type=int, default=20_000, help="rows each engine's timing runs on")
    parser.add_argument("--overhead-rows", type=int, default=200_000,
                        help="rows each engine runs with a guard that does nothing (the engine's own cost)")
    parser.add_argument("--cores", type=int, default=2, help="cores for each engine: encoder threads or Ray actors")
    parser.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl", help="input file format")
    parser.add_argument("--guard", default="embedded")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--note", default="", help="a remark stored with the figures (e.g. the machine was loaded)")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    parser.add_argument("--child-engine", help=argparse.SUPPRESS)
    parser.add_argument("--child-input", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_engine:
        return child(args)

    engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    results: dict = {"throughput": {}, "engine_only": {}, "memory": {}}
    with tempfile.TemporaryDirectory() as tmp:
        if args.throughput_rows:
            path = write_input(Path(tmp) / f"throughput.{args.format}", args.throughput_rows)
            for engine in engines:
                results["throughput"][engine] = measure(args, engine, path)
        if args.overhead_rows:
            # two sizes: the difference is the cost per row, the rest the fixed cost of a run
            sizes = (args.overhead_rows // 5, args.overhead_rows)
            paths = [write_input(Path(tmp) / f"overhead{n}.{args.format}", n) for n in sizes]
            for engine in engines:
                small, large = (measure(args, engine, path, guard="null") for path in paths)
                per_row = (large["seconds"] - small["seconds"]) / (sizes[1] - sizes[0])
                results["engine_only"][engine] = {"runs": [small, large], "us_per_row": per_row * 1e6,
                                                  "fixed_s": small["seconds"] - sizes[0] * per_row}
        if args.rows:
            for n in sorted({args.small_rows, args.rows}):
                path = write_input(Path(tmp) / f"rows{n}.{args.format}", n, seed=n)
                results["memory"][str(n)] = measure(args, "local", path)

    local = results["throughput"].get("local")
    summary: dict = {}
    if local:
        per_core = local["rows_per_s"] / args.cores
        summary |= {"local_rows_per_s": local["rows_per_s"], "rows_per_s_per_core": per_core,
                    "core_hours_100M_rows": JOB_ROWS / per_core / 3600}
    if local and "ray" in results["throughput"]:
        ray = results["throughput"]["ray"]
        summary |= {"ray_rows_per_s": ray["rows_per_s"], "ray_vs_local": ray["rows_per_s"] / local["rows_per_s"],
                    "ray_steady_vs_local_steady": (
                        ray["steady_rows_per_s"] / local["steady_rows_per_s"]
                        if ray["steady_rows_per_s"] and local["steady_rows_per_s"] else None),
                    "ray_start_s": ray["ray_start_s"],
                    "ray_extra_s": ray["seconds"] - local["seconds"]}
    bare = results["engine_only"]
    if "local" in bare and "ray" in bare:
        # The wall time per row Ray adds (driver, transfers, shard reads) beside what one row costs with
        # the guard on the local engine, and what a Ray run costs once (actors start; ray.init apart).
        extra = (bare["ray"]["us_per_row"] - bare["local"]["us_per_row"]) / 1e6
        summary |= {"engine_us_per_row": {k: v["us_per_row"] for k, v in bare.items()},
                    "ray_extra_us_per_row": extra * 1e6,
                    "ray_fixed_s_without_init": bare["ray"]["fixed_s"] - bare["local"]["fixed_s"]}
        if local:
            summary["ray_extra_share_of_local_row_time"] = extra * local["rows_per_s"]
    if len(results["memory"]) == 2:
        small, large = (results["memory"][k] for k in sorted(results["memory"], key=int))
        summary |= {"peak_rss_mb_small": small["peak_rss_mb"], "peak_rss_mb_large": large["peak_rss_mb"]}
    results = {
        "summary": summary, **results,
        "settings": {k: getattr(args, k) for k in ("engine", "rows", "small_rows", "throughput_rows", "cores",
                                                   "format", "guard", "batch_size")},
        "environment": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpu_count": os.cpu_count(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "loadavg_at_end": os.getloadavg(), "note": args.note},
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
