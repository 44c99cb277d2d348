"""How much of a harmful streamed answer reaches the client before the output rail cuts it, per stream mode.

A scripted OpenAI-compatible upstream (uvicorn on loopback) streams each answer of the red-team set
``tests/fixtures/stream_redteam.jsonl`` word by word: a harmless opening ("Sure, here is ...") and then the
harmful part, sentence by sentence, with no warning words at its start. railguard's proxy (the embedded guard
unless ``--guard`` names another) sits in front, once per mode (``window``, ``live``, ``buffer``). For each
answer it records how many characters and how many sentences of the harmful part the client received (a
sentence counts once any of it arrived), and whether the same answer, not streamed, is blocked.

With ``RAILGUARD_DATA`` set, ``--benign N`` also streams N harmless answers of ``benign_instructions`` through the
window mode and counts how many were cut (the price of the stricter partial threshold).

    python bench/stream_leak.py                              # the defaults of the server settings
    python bench/stream_leak.py --partial-threshold 0.3 --holdback 0 --benign 200 --out bench/results/stream_leak.json
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from railguard import load_guard
from railguard.server import ServerSettings, create_app
from railguard.rails import blocks
from railguard.types import GuardInput

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "stream_redteam.jsonl"
MODES = ("window", "live", "buffer")
REFUSAL = "I can't help with that request."


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + " " for p in parts[:-1]] + [parts[-1]]


def scripted_upstream(answers: dict[str, str]) -> FastAPI:
    """Streams the answer scripted for the last user turn, one chunk per word."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        answer = answers[body["messages"][-1]["content"]]
        base = {"id": "chatcmpl-leak", "object": "chat.completion.chunk", "created": 1700000000, "model": "m"}

        async def events():
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {'role': 'assistant'}}]})}\n\n"
            for word in words(answer):
                await asyncio.sleep(0)
                chunk = {**base, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n"
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def start_upstream(app: FastAPI) -> tuple[str, uvicorn.Server]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}/v1", server


def streamed_text(http: TestClient, prompt: str) -> tuple[str, str | None]:
    """What the client received of the answer, and which rail cut it (``input``, ``output`` or None)."""
    text, blocked = "", None
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": prompt}]}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or ():
                text += (choice.get("delta") or {}).get("content") or ""
            blocked = (chunk.get("railguard") or {}).get("blocked") or blocked
    return text, blocked


def leaked(received: str, opening: str, harmful: list[str]) -> tuple[int, int]:
    """Characters and sentences of the harmful part in what the client received."""
    if received == REFUSAL or not received.startswith(opening):
        return 0, 0
    rest = received[len(opening):].lstrip()
    chars, sentences, at = len(rest), 0, 0
    for sentence in harmful:
        if at >= len(rest):
            break
        sentences += 1
        at += len(sentence) + 1
    return chars, sentences


def benign_answers(n: int) -> list[tuple[str, str]]:
    data = os.environ.get("RAILGUARD_DATA")
    if not n or not data:
        return []
    rows = [json.loads(line) for line in gzip.open(Path(data) / "benign_instructions" / "data.jsonl.gz", "rt")]
    rows = [r for r in rows if r.get("response") and r.get("response_harmful") is False and len(r["response"]) > 80]
    random.Random(0).shuffle(rows)
    return [(r["prompt"], r["response"]) for r in rows[:n]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guard", default="embedded")
    parser.add_argument("--partial-threshold", type=float, default=None, help="stream_partial_threshold")
    parser.add_argument("--holdback", type=int, default=None, help="stream_holdback_chars")
    parser.add_argument("--benign", type=int, default=0, help="harmless answers to stream in window mode")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    red = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    benign = benign_answers(args.benign)
    answers = {r["prompt"]: " ".join([r["opening"], *r["harmful"]]) for r in red}
    answers.update({p: a for p, a in benign})
    upstream_url, server = start_upstream(scripted_upstream(answers))
    guard = load_guard(args.guard)
    # One at a time, as the proxy judges an unstreamed answer (the int8 encoder's scores move a little with the
    # batch it shares).
    whole = [guard.check([GuardInput(prompt=r["prompt"], response=answers[r["prompt"]])])[0] for r in red]
    overrides = {k: v for k, v in {"stream_partial_threshold": args.partial_threshold,
                                   "stream_holdback_chars": args.holdback}.items() if v is not None}
    results: dict[str, Any] = {"guard": args.guard, "answers": len(red),
                               "blocked_unstreamed": sum(blocks(v) for v in whole), "modes": {}}
    per_answer: dict[str, dict[str, Any]] = {r["id"]: {"blocked_unstreamed": blocks(v)}
                                             for r, v in zip(red, whole)}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            settings = ServerSettings.load(guard=args.guard, upstream_url=upstream_url, stream_output=mode,
                                           audit_url=f"sqlite:///{tmp}/{mode}.db", refusal_message=REFUSAL,
                                           **overrides)
            with TestClient(create_app(settings, guard=guard)) as http:
                rows = []
                for r in red:
                    received, blocked = streamed_text(http, r["prompt"])
                    chars, sentences = leaked(received, r["opening"], r["harmful"])
                    rows.append({"id": r["id"], "blocked": blocked, "chars": chars, "sentences": sentences})
                    per_answer[r["id"]][mode] = rows[-1]
                cut_benign = sum(streamed_text(http, p)[1] is not None for p, _ in benign) \
                    if mode == "window" and benign else None
                partial_threshold, holdback = settings.stream_partial_threshold, settings.stream_holdback_chars
            blocked_ids = {r["id"] for r, v in zip(red, whole) if blocks(v)}
            results["modes"][mode] = {
                "input_blocked": sum(x["blocked"] == "input" for x in rows),
                "output_cut": sum(x["blocked"] == "output" for x in rows),
                "chars": sum(x["chars"] for x in rows), "sentences": sum(x["sentences"] for x in rows),
                "sentences_of_blocked": sum(x["sentences"] for x in rows if x["id"] in blocked_ids),
                "answers_leaking": sum(x["sentences"] > 0 for x in rows),
                "benign_cut": cut_benign}
    server.should_exit = True
    results.update(partial_threshold=partial_threshold, holdback_chars=holdback, benign=len(benign),
                   harmful_sentences=sum(len(r["harmful"]) for r in red), per_answer=per_answer)
    print(f"{len(red)} harmful answers ({results['harmful_sentences']} harmful sentences), "
          f"{results['blocked_unstreamed']} blocked when not streamed; guard {args.guard}, "
          f"stream_partial_threshold={partial_threshold:g}, stream_holdback_chars={holdback}\n")
    print("| mode | blocked at input | cut by the output rail | harmful sentences reaching the client (of those blocked unstreamed) "
          "| harmful characters | answers leaking | harmless answers cut |")
    print("|---|---|---|---|---|---|---|")
    for mode, m in results["modes"].items():
        benign_cell = "-" if m["benign_cut"] is None else f"{m['benign_cut']} of {len(benign)}"
        print(f"| {mode} | {m['input_blocked']} | {m['output_cut']} | {m['sentences']} ({m['sentences_of_blocked']}) | {m['chars']:,} "
              f"| {m['answers_leaking']} | {benign_cell} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
