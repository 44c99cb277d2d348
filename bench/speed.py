"""Speed and memory of a guard (the embedded default unless --guard says otherwise).

Measures single-item latency (p50/p95, warm), batched throughput, cold start in a new process and
resident memory after a long run of mixed-length texts; prints a Markdown table and, with --out,
writes the numbers as JSON. Run by hand (see bench/README.md); never part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import railguard
from railguard import GuardInput

SHORT_PROMPT = "How do I kill a Python process?"
WORDS = (
    "the a of to and in is it you that he was for on are with as his they be at one have this from "
    "or had by word but what some we can out other were all there when up use your how said an each "
    "she which do their time if will way about many then them write would like so these her long make "
    "thing see him two has look more day could go come did number sound no most people my over know "
    "water than call first who may down side been now find any new work part take get place made live "
    "where after back little only round man year came show every good me give our under name very "
    "through just form sentence great think say help low line differ turn cause much mean before move "
    "right boy old too same tell does set three want air well also play small end put home read hand "
    "port large spell add even land here must big high such follow act why ask men change went light"
).split()
QUICK = {"single": 20, "batch_texts": 256, "cold_runs": 1, "rss_texts": 300}


def short_texts(n: int, rng: random.Random) -> list[str]:
    """Short chat-style prompts, all different so nothing can be cached."""
    topics = ["a Python process", "a bread recipe", "my garden", "a job interview", "the train to Paris",
              "a birthday party", "a SQL query", "my cat", "a tax form", "a chess opening"]
    verbs = ["explain", "plan", "fix", "describe", "improve", "summarize", "check", "prepare"]
    return [f"Can you {rng.choice(verbs)} {rng.choice(topics)} for me? ({i})" for i in range(n)]


def words(n: int, rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def mixed_texts(n: int, rng: random.Random) -> list[str]:
    """A third short prompts, a third ~100 words, a third ~1000 words, interleaved."""
    shorts = short_texts(n, rng)
    out = []
    for i in range(n):
        kind = i % 3
        out.append(shorts[i] if kind == 0 else words(100 if kind == 1 else 1000, rng))
    return out


def memory_mb() -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of this process in MiB."""
    status = Path("/proc/self/status")
    if status.is_file():
        fields = {}
        for line in status.read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024  # kB
        return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"]}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB elsewhere
    return {"rss_mb": float("nan"), "peak_rss_mb": peak_mb}


def run_batched(check: Callable[[Sequence[GuardInput]], list], texts: list[str], batch_size: int) -> float:
    """Seconds to check every text in batches."""
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        check([GuardInput(prompt=t) for t in texts[i : i + batch_size]])
    return time.perf_counter() - start


def cold_start(guard: str, runs: int) -> list[float]:
    """Wall seconds of a fresh interpreter that imports railguard and checks one prompt."""
    call = f"railguard.check('hi', guard={guard!r})"  # railguard.check() alone loads the default guard
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import railguard; {call}"], check=True,
                       stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - start)
    return out


def environment(guard) -> dict:
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "railguard": railguard.__version__,
        "railguard_threads": os.environ.get("RAILGUARD_THREADS", "default"),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    manifest = getattr(guard, "manifest", None)
    if isinstance(manifest, dict):  # enough to tell two models apart in a results file
        encoder = manifest.get("encoder") or {}
        files = manifest.get("files") or {}
        env["model"] = {k: encoder[k] for k in ("base", "quantization", "max_tokens") if k in encoder}
        env["model"]["encoder_sha256"] = str(files.get(encoder.get("onnx"), ""))[:12]
    return env


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(args: argparse.Namespace) -> dict:
    rng = random.Random(0)
    log(f"cold start: {args.cold_runs} fresh process(es)")
    cold = cold_start(args.guard, args.cold_runs)

    start = time.perf_counter()
    guard = railguard.load_guard(args.guard)
    load_s = time.perf_counter() - start
    after_load = memory_mb()

    log(f"single-item latency: {args.single} calls")
    one = [GuardInput(prompt=SHORT_PROMPT)]
    for _ in range(min(10, args.single)):  # warm-up: first calls allocate and optimize
        guard.check(one)
    latencies = []
    for _ in range(args.single):
        t = time.perf_counter()
        guard.check(one)
        latencies.append((time.perf_counter() - t) * 1000.0)

    log(f"throughput: {args.batch_texts} short texts in batches of {args.batch_size}")
    short_s = run_batched(guard.check, short_texts(args.batch_texts, rng), args.batch_size)

    log(f"memory: {args.rss_texts} mixed-length texts")
    mixed = mixed_texts(args.rss_texts, rng)
    mixed_s = run_batched(guard.check, mixed, args.batch_size)
    after_mixed = memory_mb()

    return {
        "guard": args.guard,
        "environment": environment(guard),
        "settings": {k: getattr(args, k) for k in ("single", "batch_texts", "batch_size", "cold_runs", "rss_texts")},
        "load_s": load_s,
        "latency_ms": {"p50": float(np.percentile(latencies, 50)), "p95": float(np.percentile(latencies, 95)),
                       "mean": statistics.fmean(latencies), "calls": len(latencies)},
        "throughput_short_per_s": args.batch_texts / short_s,
        "throughput_mixed_per_s": args.rss_texts / mixed_s,
        "cold_start_s": {"median": statistics.median(cold), "runs": cold},
        "memory_mb": {"after_load": after_load["rss_mb"], "peak_after_load": after_load["peak_rss_mb"],
                      "after_mixed": after_mixed["rss_mb"], "peak": after_mixed["peak_rss_mb"]},
    }


def markdown(r: dict) -> str:
    s = r["settings"]
    rows = [
        ("single-item latency p50 (warm, short prompt)", f"{r['latency_ms']['p50']:.1f} ms"),
        ("single-item latency p95", f"{r['latency_ms']['p95']:.1f} ms"),
        (f"throughput, {s['batch_texts']} short texts, batches of {s['batch_size']}",
         f"{r['throughput_short_per_s']:,.0f} texts/s"),
        (f"throughput, {s['rss_texts']} mixed-length texts", f"{r['throughput_mixed_per_s']:,.1f} texts/s"),
        (f"cold start (import + first check, median of {s['cold_runs']})", f"{r['cold_start_s']['median']:.2f} s"),
        ("in-process load", f"{r['load_s']:.2f} s"),
        ("RSS after load (peak so far)",
         f"{r['memory_mb']['after_load']:.0f} MiB ({r['memory_mb']['peak_after_load']:.0f} MiB)"),
        (f"RSS after {s['rss_texts']} mixed-length texts", f"{r['memory_mb']['after_mixed']:.0f} MiB"),
        ("peak RSS over the whole run", f"{r['memory_mb']['peak']:.0f} MiB"),
    ]
    env = r["environment"]
    head = (f"guard `{r['guard']}`, {env['cpu_count']} CPUs, threads {env['railguard_threads']}, "
            f"Python {env['python']}, onnxruntime {env.get('onnxruntime', '?')}\n\n")
    return head + "| measure | value |\n|---|---:|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--guard", default="embedded", help="guard name as in `railguard check --guard` (default: embedded)")
    p.add_argument("--out", type=Path, help="write the results as JSON to this file")
    p.add_argument("--quick", action="store_true",
                   help="small counts for a smoke run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    p.add_argument("--single", type=int, default=200, help="single-item calls timed (default 200)")
    p.add_argument("--batch-texts", type=int, default=2000, help="short texts for throughput (default 2000)")
    p.add_argument("--batch-size", type=int, default=64, help="texts per check() call (default 64)")
    p.add_argument("--cold-runs", type=int, default=3, help="fresh processes for cold start (default 3)")
    p.add_argument("--rss-texts", type=int, default=10_000, help="mixed-length texts before RSS (default 10000)")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == p.get_default(key):
                setattr(args, key, value)
    for key in ("single", "batch_texts", "batch_size", "cold_runs", "rss_texts"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = measure(args)
    print(markdown(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
