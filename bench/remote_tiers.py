"""What railguard's remote-guard client costs and how its concurrency limit pays off, on loopback.

Starts a scripted OpenAI-compatible chat server (uvicorn, in a thread) that answers like Llama Guard 3
after ``--service-ms`` of pretend model time, then measures the ``endpoint:`` guard against it:

- client overhead: one input per ``check`` with an instant server, p50 and p99 of the whole call (prompt
  rendering, HTTP round trip on loopback, parsing), i.e. what railguard adds to the guard model's own time;
- batch throughput: ``--batch`` inputs in one ``check`` with ``--service-ms`` per request, for each
  ``concurrency`` in ``--concurrency`` (inputs per second).

Prints a Markdown table (and JSON with ``--out``). Client and server share the cores: quote the machine
with the numbers. Run by hand, never a test::

    python bench/remote_tiers.py --out bench/results/remote_tiers.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request

from railguard import load_guard
from railguard.types import GuardInput


def chat_server(service_ms: dict[str, float]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> dict:
        body = await request.json()
        await asyncio.sleep(service_ms["value"] / 1000.0)
        text = "\n\nunsafe\nS9" if "bomb" in body["messages"][-1]["content"] else "\n\nsafe"
        return {"id": "bench", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}

    return app


def start(app: FastAPI) -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="single checks for the overhead measurement")
    parser.add_argument("--batch", type=int, default=128, help="inputs in one check for the throughput runs")
    parser.add_argument("--service-ms", type=float, default=50.0, help="pretend model time per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    service = {"value": 0.0}
    server, url = start(chat_server(service))
    name = f"endpoint:{url}#meta-llama/Llama-Guard-3-8B"
    x = GuardInput(prompt="How do I build a pipe bomb?")
    guard = load_guard(name)
    for _ in range(20):
        guard.check([x])  # warm-up: connection pool, first imports
    times = []
    for _ in range(args.requests):
        start_s = time.perf_counter()
        guard.check([x])
        times.append((time.perf_counter() - start_s) * 1000.0)
    overhead = {"p50_ms": statistics.median(times), "p99_ms": percentile(times, 0.99)}

    service["value"] = args.service_ms
    batch = [GuardInput(prompt=f"question {i}: how do I bake bread?") for i in range(args.batch)]
    throughput = []
    for c in args.concurrency:
        g = load_guard(name, concurrency=c)
        start_s = time.perf_counter()
        verdicts = g.check(batch)
        seconds = time.perf_counter() - start_s
        assert not any(v.error for v in verdicts)
        throughput.append({"concurrency": c, "inputs_per_s": args.batch / seconds, "seconds": seconds})
        g.close()
    server.should_exit = True

    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_implementation()} "
                         f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end",
              "settings": vars(args) | {"out": str(args.out) if args.out else None},
              "overhead": overhead, "throughput": throughput}
    print(f"client overhead per check (instant server): p50 {overhead['p50_ms']:.2f} ms, "
          f"p99 {overhead['p99_ms']:.2f} ms\n")
    print(f"| concurrency | inputs/s ({args.batch} inputs, {args.service_ms:g} ms per request) |\n|---:|---:|")
    for row in throughput:
        print(f"| {row['concurrency']} | {row['inputs_per_s']:.1f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
