"""Where the guarding proxy's milliseconds go: spans inside one proxied chat call, one request at a time.

Starts the scripted upstream of ``proxy_overhead.py`` in its own process and the proxy (``create_app`` with
``upstream_url``) in this one, under uvicorn on a thread, with timers wrapped around its stages (nothing in
``src/`` is changed for it). Then it sends ``--requests`` non-streamed and streamed calls one at a time (the
client waits on its socket while the server works) and prints the median and p99 of each span:

- ``server``: first byte of the request in to last byte of the answer out, inside the ASGI app;
- ``input rail`` / ``output rail``: the guard service's ``judge`` (micro-batcher wait, thread hand-off and the
  guard's own time, which is given apart as ``guard own``);
- ``upstream``: the upstream call as the proxy sees it (the direct call's p50 is printed for comparison);
- ``audit``: ``Runtime.write`` (group commit wait + the store's transaction and fsync, given apart as
  ``store write``);
- ``rest``: ``server`` minus the spans above (JSON parse and encode, routing, middleware, record building);
- streamed: ``first text out`` (request in to the first text chunk yielded) and ``first check``.

The client-observed overhead is ``proxy_overhead.py``'s job; this script says what it is made of. Run by hand::

    PYTHONPATH=src python bench/proxy_profile.py --requests 200 --guard embedded
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from proxy_overhead import PROMPT, _SERVE, free_port, pct, wait_ready  # noqa: E402

SPANS: list[tuple[str, float]] = []  # the spans of the request in flight (one at a time)


def timed(name: str, fn):
    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            SPANS.append((name, (time.perf_counter() - start) * 1000))
    return wrapper


def timed_sync(name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPANS.append((name, (time.perf_counter() - start) * 1000))
    return wrapper


class Timed:
    """Outermost ASGI wrapper: the server span, and the time to the first streamed body with text."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") != "/v1/chat/completions":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        first = []

        async def timed_send(message):
            if (message["type"] == "http.response.body" and not first
                    and b'"content"' in message.get("body", b"") and b'"role"' not in message.get("body", b"")):
                first.append((time.perf_counter() - start) * 1000)
            await send(message)

        await self.app(scope, receive, timed_send)
        SPANS.append(("server", (time.perf_counter() - start) * 1000))
        if first:
            SPANS.append(("first text out", first[0]))


def instrument(app) -> None:
    """Wrap the stages of the running app's proxy and runtime (after its lifespan built them)."""
    runtime, proxy = app.state.runtime, app.state.proxy
    service = runtime.default
    judge = service.judge

    async def judged(inputs, **kwargs):
        start = time.perf_counter()
        verdicts = await judge(inputs, **kwargs)
        response = any(x.response is not None for x in inputs) or any(x.action is not None for x in inputs)
        name = "output rail" if response else "input rail"
        SPANS.append((name, (time.perf_counter() - start) * 1000))
        SPANS.append((f"{name}: guard own", max((v.latency_ms for v in verdicts), default=0.0)))
        return verdicts

    service.judge = judged
    runtime.write = timed("audit", runtime.write)
    store = runtime.store
    store.write = timed_sync("audit: store write", store.write)
    client = proxy.upstream.client
    client.send = timed("upstream", client.send)  # post() goes through send(); a stream's send returns at its head


def run_server(app, port: int, ready: threading.Event, stop: threading.Event) -> None:
    import uvicorn

    config = uvicorn.Config(Timed(app), host="127.0.0.1", port=port, log_level="warning", access_log=False,
                            lifespan="on")
    server = uvicorn.Server(config)

    async def main():
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        instrument(app)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        server.should_exit = True
        await task

    asyncio.run(main())


def summarize(rounds: list[list[tuple[str, float]]]) -> dict[str, dict[str, float]]:
    per: dict[str, list[float]] = defaultdict(list)
    for spans in rounds:
        sums: dict[str, float] = defaultdict(float)
        for name, ms in spans:
            sums[name] += ms
        known = sum(v for k, v in sums.items() if k in ("input rail", "output rail", "upstream", "audit"))
        if "server" in sums:
            sums["rest"] = sums["server"] - known
        for name, ms in sums.items():
            per[name].append(ms)
    return {name: {"p50": statistics.median(v), "p99": pct(v, 99), "n": len(v)} for name, v in per.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--guard", default="embedded")
    parser.add_argument("--token-delay-ms", type=float, default=10.0)
    parser.add_argument("--out", type=Path, help="also write the spans as JSON here")
    args = parser.parse_args()
    exec(_SERVE.replace("from railguard.cli import app\napp()", ""), {})  # registers the noop guard

    from railguard.server import create_app
    from railguard.server.settings import ServerSettings

    up_port, rg_port = free_port(), free_port()
    upstream = subprocess.Popen([sys.executable, str(Path(__file__).parent / "proxy_overhead.py"), "--serve-upstream",
                                 str(up_port), "--token-delay-ms", str(args.token_delay_ms)])
    stop, ready = threading.Event(), threading.Event()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = ServerSettings.load(guard=args.guard, audit_url=f"sqlite:///{tmp}/audit.db",
                                       upstream_url=f"http://127.0.0.1:{up_port}/v1")
        app = create_app(settings)
        thread = threading.Thread(target=run_server, args=(app, rg_port, ready, stop), daemon=True)
        try:
            wait_ready(f"http://127.0.0.1:{up_port}/docs", upstream)
            thread.start()
            if not ready.wait(120):
                raise SystemExit("the proxy did not come up")
            direct = []
            for stream in (False, True):
                body = {"model": "bench", "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
                rounds = []
                with httpx.Client(timeout=30) as client:
                    for i in range(args.warmup + args.requests):
                        if not stream:
                            start = time.perf_counter()
                            client.post(f"http://127.0.0.1:{up_port}/v1/chat/completions", json=body)
                            direct.append((time.perf_counter() - start) * 1000)
                        SPANS.clear()
                        if stream:
                            with client.stream("POST", f"http://127.0.0.1:{rg_port}/v1/chat/completions",
                                               json=body) as response:
                                for _ in response.iter_bytes():
                                    pass
                        else:
                            client.post(f"http://127.0.0.1:{rg_port}/v1/chat/completions", json=body).raise_for_status()
                        time.sleep(0.002)  # let the server finish its span
                        if i >= args.warmup:
                            rounds.append(list(SPANS))
                results["stream" if stream else "plain"] = summarize(rounds)
            results["direct upstream (client)"] = {"p50": statistics.median(direct[args.warmup:]),
                                                   "p99": pct(direct[args.warmup:], 99)}
        finally:
            stop.set()
            thread.join(timeout=15)
            upstream.terminate()
            upstream.wait(timeout=15)
    load = os.getloadavg()
    print(f"proxy spans, guard {args.guard}, {args.requests} calls each, {os.cpu_count()} CPUs, "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    for kind in ("plain", "stream"):
        print(f"| {kind} span | p50 ms | p99 ms |\n| --- | ---: | ---: |")
        for name, v in sorted(results[kind].items(), key=lambda kv: -kv[1]["p50"]):
            print(f"| {name} | {v['p50']:.2f} | {v['p99']:.2f} |")
        print()
    d = results["direct upstream (client)"]
    print(f"direct upstream call from the client: p50 {d['p50']:.2f} ms, p99 {d['p99']:.2f} ms")
    if args.out:
        args.out.write_text(json.dumps({**results, "guard": args.guard, "load": load}, indent=2) + "\n")


if __name__ == "__main__":
    main()
