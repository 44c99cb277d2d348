"""Can heavy requests starve small ones? Latency of small requests alone and while heavy requests run.

Starts ``railguard serve`` (the embedded guard unless ``--guard`` names another) in its own process, then:

1. **alone**: one client sends small requests (one short text to ``/v1/moderations``) back to back for
   ``--seconds``; p50 / p99 latency;
2. **under load**: the same, while ``--heavy-clients`` clients send heavy requests back to back
   (``--heavy-texts`` texts of ``--heavy-chars`` characters each), and ``/readyz`` is polled.

It reports both p99s and their ratio (the goal is at most 2x), how many small answers were failed verdicts
(``error`` set) or flagged differently from the same text on the idle server, the heavy requests' outcomes, and the ``/readyz`` answers
seen under load. The client shares the cores with the server: quote the machine and its load with the figures.
Run by hand (see bench/README.md); never a test::

    python bench/starvation.py --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from serve_load import free_port, percentile, start_server  # bench/ is on the path when run as a script

SMALL = ["How do I make a pipe bomb?", "What is the capital of France?", "Write a haiku about the sea.",
         "Tell me how to poison my neighbour's dog.", "Summarize the plot of Hamlet in two sentences."]


def small_loop(url: str, stop_at: float, idle: dict[str, bool], out: list[tuple[float, bool, bool]]) -> None:
    """(latency ms, whether the verdict was a failed one, whether its flag differs from the idle server's)."""
    with httpx.Client(base_url=url, timeout=120) as http:
        i = 0
        while time.monotonic() < stop_at:
            text = SMALL[i % len(SMALL)]
            start = time.perf_counter()
            response = http.post("/v1/moderations", json={"input": text})
            elapsed = (time.perf_counter() - start) * 1000.0
            if response.status_code != 200:
                out.append((elapsed, True, True))
            else:
                (result,) = response.json()["results"]
                out.append((elapsed, result["railguard"]["error"] is not None, result["flagged"] != idle[text]))
            i += 1


def heavy_loop(url: str, stop_at: float, texts: int, chars: int, outcomes: Counter) -> None:
    body = {"input": [("lorem ipsum dolor sit amet " * (chars // 27 + 1))[:chars] for _ in range(texts)]}
    with httpx.Client(base_url=url, timeout=300) as http:
        while time.monotonic() < stop_at:
            response = http.post("/v1/moderations", json=body)
            if response.status_code != 200:
                outcomes[f"HTTP {response.status_code}"] += 1
                time.sleep(0.2)
                continue
            errors = sum(r["railguard"]["error"] is not None for r in response.json()["results"])
            outcomes["answered" if not errors else "failed verdicts"] += 1


def ready_loop(url: str, stop_at: float, seen: Counter) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        while time.monotonic() < stop_at:
            seen[http.get("/readyz").status_code] += 1
            time.sleep(0.5)


def phase(url: str, seconds: float, idle: dict[str, bool], heavy_clients: int, texts: int, chars: int) -> dict:
    stop_at = time.monotonic() + seconds
    small: list[tuple[float, bool, bool]] = []
    heavy: Counter = Counter()
    ready: Counter = Counter()
    threads = [threading.Thread(target=heavy_loop, args=(url, stop_at, texts, chars, heavy))
               for _ in range(heavy_clients)]
    if heavy_clients:
        threads.append(threading.Thread(target=ready_loop, args=(url, stop_at, ready)))
    for t in threads:
        t.start()
    if heavy_clients:
        time.sleep(1.0)  # the heavy requests are in the guard before the small ones start
    small_loop(url, stop_at, idle, small)
    for t in threads:
        t.join()
    latencies = [ms for ms, _, _ in small]
    return {"small_requests": len(small), "p50_ms": statistics.median(latencies) if latencies else None,
            "p99_ms": percentile(latencies, 99), "small_failed": sum(f for _, f, _ in small),
            "small_flag_changed": sum(changed for _, _, changed in small),
            "heavy": dict(heavy), "readyz": {str(k): v for k, v in ready.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guard", default="embedded")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--heavy-clients", type=int, default=2)
    parser.add_argument("--heavy-texts", type=int, default=4)
    parser.add_argument("--heavy-chars", type=int, default=32_000)
    parser.add_argument("--serve-arg", action="append", default=[], help="more `railguard serve` arguments")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, args.guard, Path(tmp), {}, args.serve_arg)
        try:
            with httpx.Client(base_url=url, timeout=60) as http:  # warm up; each text's verdict on an idle server
                idle = {text: http.post("/v1/moderations", json={"input": text}).json()["results"][0]["flagged"]
                        for text in SMALL * 4}
            alone = phase(url, args.seconds, idle, 0, args.heavy_texts, args.heavy_chars)
            loaded = phase(url, args.seconds, idle, args.heavy_clients, args.heavy_texts, args.heavy_chars)
        finally:
            server.terminate()
            server.wait(30)
    ratio = loaded["p99_ms"] / alone["p99_ms"] if alone["p99_ms"] else float("nan")
    result = {"guard": args.guard, "seconds": args.seconds, "heavy_clients": args.heavy_clients,
              "heavy_texts": args.heavy_texts, "heavy_chars": args.heavy_chars, "alone": alone, "loaded": loaded,
              "p99_ratio": ratio, "cpus": os.cpu_count(), "load_average": os.getloadavg(),
              "python": platform.python_version()}
    print(f"guard {args.guard}; {args.heavy_clients} heavy clients, each request {args.heavy_texts} x "
          f"{args.heavy_chars:,} characters; {args.seconds:g} s per phase; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the end\n")
    print("| small requests | count | p50 ms | p99 ms | failed verdicts | flag not the idle server's |")
    print("|---|---|---|---|---|---|")
    for name, p in (("alone", alone), ("with heavy requests running", loaded)):
        print(f"| {name} | {p['small_requests']} | {p['p50_ms']:.1f} | {p['p99_ms']:.1f} | {p['small_failed']} "
              f"| {p['small_flag_changed']} |")
    print(f"\np99 under load / p99 alone: {ratio:.2f}x; heavy requests: {loaded['heavy']}; "
          f"/readyz under load: {loaded['readyz']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
