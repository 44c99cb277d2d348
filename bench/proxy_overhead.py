"""What the guarding proxy adds: latency over a direct call to the same local upstream, on loopback.

Starts a scripted OpenAI-compatible upstream (a fixed short answer; streamed as one chunk per word with
``--token-delay-ms`` between chunks, like an LLM at that speed) and ``railguard serve --upstream`` in front of
it, each in its own process. Then, one request at a time, alternating direct and proxied calls with a short
prompt, it measures:

- non-streaming: the added latency, p50 and p99 (proxy minus direct);
- streaming: the added time to first token (first chunk with text), p50 and p99;
- streaming hold-back lag: for every chunk with text, how much later it arrived through the proxy than
  directly (``stream_output=window``: text waits for the check at its sentence end), p50 and p99.

It prints a Markdown table (and JSON with ``--out``). The client shares the cores with both servers: quote
the machine with the numbers. Run by hand (see bench/README.md); never a test::

    python bench/proxy_overhead.py --requests 200 --guard embedded
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

ANSWER = ("Paris is the capital of France. It lies on the Seine in the north of the country. "
          "About two million people live in the city itself.")
PROMPT = "What is the capital of France?"


# `railguard serve`, with one more guard for this benchmark: ``noop`` passes everything at no cost, so that
# ``--guard noop`` shows the proxy's own overhead (HTTP hop, JSON, micro-batcher, audit write) without a model.
_SERVE = """
from railguard.registry import register
from railguard.types import Verdict

class NoopGuard:
    name = "noop"
    def check(self, inputs):
        return [Verdict(prompt_harmful=False, response_harmful=None if x.response is None else False,
                        tier="noop", id=x.id) for x in inputs]

register("noop", "passes everything (benchmark only)")(lambda argument=None, **options: NoopGuard())
from railguard.cli import app
app()
"""


def upstream_app(token_delay_s: float):
    """The scripted upstream (a FastAPI app)."""
    app = FastAPI()
    words = [w + " " for w in ANSWER.split(" ")[:-1]] + [ANSWER.split(" ")[-1]]

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        base = {"id": "chatcmpl-bench", "created": 1700000000, "model": body.get("model", "m")}
        if not body.get("stream"):
            return JSONResponse({**base, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 8, "completion_tokens": len(words), "total_tokens": 8 + len(words)}})

        async def events():
            chunk = {**base, "object": "chat.completion.chunk"}
            yield "data: " + json.dumps({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant"},
                                                               "finish_reason": None}]}) + "\n\n"
            for word in words:
                if token_delay_s:
                    await asyncio.sleep(token_delay_s)
                yield "data: " + json.dumps({**chunk, "choices": [{"index": 0, "delta": {"content": word},
                                                                   "finish_reason": None}]}) + "\n\n"
            yield "data: " + json.dumps({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) \
                + "\n\ndata: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def call(client: httpx.Client, base: str, stream: bool) -> tuple[float, list[float]]:
    """(total seconds, arrival offsets of the chunks with text) of one chat completion."""
    body = {"model": "bench", "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    start = time.perf_counter()
    if not stream:
        response = client.post(f"{base}/chat/completions", json=body)
        response.raise_for_status()
        assert response.json()["choices"][0]["message"]["content"] == ANSWER
        return time.perf_counter() - start, []
    arrivals, text = [], ""
    with client.stream("POST", f"{base}/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                delta = json.loads(line[6:])["choices"]
                content = delta[0]["delta"].get("content") if delta else None
                if content:
                    text += content
                    arrivals.append(time.perf_counter() - start)
    assert text == ANSWER, text
    return time.perf_counter() - start, arrivals


def measure(direct: str, proxied: str, requests: int, warmup: int) -> dict[str, float]:
    added, ttft, lag = [], [], []
    direct_ms, direct_ttft = [], []
    with httpx.Client(timeout=30) as client:
        for i in range(warmup + requests):
            d_total, _ = call(client, direct, stream=False)
            p_total, _ = call(client, proxied, stream=False)
            _, d_arrivals = call(client, direct, stream=True)
            _, p_arrivals = call(client, proxied, stream=True)
            if i < warmup:
                continue
            added.append((p_total - d_total) * 1000)
            direct_ms.append(d_total * 1000)
            ttft.append((p_arrivals[0] - d_arrivals[0]) * 1000)
            direct_ttft.append(d_arrivals[0] * 1000)
            lag += [(p - d) * 1000 for p, d in zip(p_arrivals, d_arrivals)]
    return {"direct_p50_ms": statistics.median(direct_ms), "added_p50_ms": statistics.median(added),
            "added_p99_ms": pct(added, 99), "direct_ttft_p50_ms": statistics.median(direct_ttft),
            "added_ttft_p50_ms": statistics.median(ttft), "added_ttft_p99_ms": pct(ttft, 99),
            "holdback_lag_p50_ms": statistics.median(lag), "holdback_lag_p99_ms": pct(lag, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="measured rounds (each: 2 plain + 2 streamed calls)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--guard", default="embedded",
                        help="the guard railguard serves (default embedded; noop: the proxy's own overhead)")
    parser.add_argument("--token-delay-ms", type=float, default=10.0, help="upstream delay between stream chunks")
    parser.add_argument("--stream-output", default="window", choices=["live", "window", "buffer"])
    parser.add_argument("--out", type=Path, help="also write the numbers as JSON here")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)  # internal: run the upstream
    args = parser.parse_args()
    if args.serve_upstream:
        import uvicorn

        uvicorn.run(upstream_app(args.token_delay_ms / 1000), host="127.0.0.1", port=args.serve_upstream,
                    log_level="warning", access_log=False)
        return

    up_port, rg_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RAILGUARD_AUDIT_URL": f"sqlite:///{tmp}/audit.db",
               "RAILGUARD_STREAM_OUTPUT": args.stream_output}
        upstream = subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(up_port),
                                     "--token-delay-ms", str(args.token_delay_ms)])
        proxy = subprocess.Popen([sys.executable, "-c", _SERVE, "serve", "--port", str(rg_port),
                                  "--guard", args.guard, "--upstream", f"http://127.0.0.1:{up_port}/v1"],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(f"http://127.0.0.1:{up_port}/docs", upstream)
            wait_ready(f"http://127.0.0.1:{rg_port}/readyz", proxy)
            result = measure(f"http://127.0.0.1:{up_port}/v1", f"http://127.0.0.1:{rg_port}/v1",
                             args.requests, args.warmup)
        finally:
            for process in (proxy, upstream):
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
    result |= {"guard": args.guard, "requests": args.requests, "token_delay_ms": args.token_delay_ms,
               "stream_output": args.stream_output, "cpus": os.cpu_count(), "python": platform.python_version()}
    print(f"proxy overhead, guard {args.guard}, {args.requests} rounds, {os.cpu_count()} CPUs, "
          f"stream_output={args.stream_output}, upstream {args.token_delay_ms:g} ms/chunk\n")
    print("| measure | p50 ms | p99 ms |\n| --- | ---: | ---: |")
    print(f"| added latency, non-streaming (direct p50 {result['direct_p50_ms']:.1f} ms) | "
          f"{result['added_p50_ms']:.1f} | {result['added_p99_ms']:.1f} |")
    print(f"| added time to first token, streaming (direct p50 {result['direct_ttft_p50_ms']:.1f} ms) | "
          f"{result['added_ttft_p50_ms']:.1f} | {result['added_ttft_p99_ms']:.1f} |")
    print(f"| hold-back lag per text chunk | {result['holdback_lag_p50_ms']:.1f} | "
          f"{result['holdback_lag_p99_ms']:.1f} |")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
