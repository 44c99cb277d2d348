"""Streaming must not leak what the unstreamed path would block: scripted harmful answers from the red-team set,
streamed through the proxy in window mode with the shipped model, reach the client without one of their
harmful sentences; and the hold-back keeps checked text until more text after it was checked too."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from server_support import live_server, make_app, settings  # first: skips without the server extra

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from railguard.server import create_app
from railguard.rails import StreamWindow, WindowSettings, blocks
from railguard.types import GuardInput, Verdict
from test_proxy import REFUSAL, ProxyTestGuard, Upstream, ask, collect

openai = pytest.importorskip("openai", reason="the openai client is not installed (it is in the dev extra)")

RED_TEAM = [json.loads(line) for line in
            (Path(__file__).parent / "fixtures" / "stream_redteam.jsonl").read_text().splitlines() if line.strip()]


class WordStreamer:
    """An upstream that streams the answer registered for a prompt, one chunk per word."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)

    async def chat(self, request: Request) -> StreamingResponse:
        body = await request.json()
        answer = self.answers[body["messages"][-1]["content"]]
        return StreamingResponse(self._events(answer), media_type="text/event-stream")

    async def _events(self, answer: str) -> Iterator[bytes]:
        base = {"id": "chatcmpl-rt", "object": "chat.completion.chunk", "created": 1700000000, "model": "m"}
        pieces = answer.split(" ")
        for n, piece in enumerate(pieces):
            delta = {"content": piece + (" " if n < len(pieces) - 1 else "")}
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': delta}]})}\n\n".encode()
        end = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield f"data: {json.dumps(end)}\n\n".encode()
        yield b"data: [DONE]\n\n"


def answer_of(row: dict) -> str:
    return " ".join([row["opening"], *row["harmful"]])


def test_window_mode_sends_no_sentence_of_a_harmful_answer_the_unstreamed_path_blocks(tmp_path, embedded_guard):
    # The answers this model blocks when they are not streamed, whose prompt passes the input rail (else the
    # upstream is never asked): the stream must not give away any of what the unstreamed answer withholds.
    chosen = [r for r in RED_TEAM
              if not embedded_guard.check([GuardInput(prompt=r["prompt"])])[0].flagged
              and blocks(embedded_guard.check([GuardInput(prompt=r["prompt"], response=answer_of(r))])[0])][:6]
    assert len(chosen) >= 3, "the model blocks too few of the red-team answers to test their streams"
    upstream = WordStreamer({r["prompt"]: answer_of(r) for r in chosen})
    with live_server(upstream.app) as up:
        app = create_app(settings(tmp_path, guard="embedded", upstream_url=f"{up}/v1", refusal_message=REFUSAL),
                         guard=embedded_guard)
        with TestClient(app) as http:
            ai = openai.OpenAI(base_url="http://testserver/v1", api_key="k", max_retries=0, http_client=http)
            received = {r["id"]: collect(ai.chat.completions.create(**ask(r["prompt"], stream=True)))
                        for r in chosen}
    for row in chosen:
        text, chunks = received[row["id"]]
        assert chunks[-1].choices[0].finish_reason == "content_filter", (row["id"], text)
        leaked = [s for s in row["harmful"] if s[:24] in text]
        assert leaked == [], (row["id"], text)


def through_fake_proxy(folder: Path, upstream_url: str, prompt: str, **overrides) -> tuple[str, str, str]:
    """The keyword fake guard's proxy with ``overrides``: the streamed text, its finish reason, and the finish
    reason of the same request unstreamed."""
    folder.mkdir()
    app = make_app(folder, guard=ProxyTestGuard(), upstream_url=upstream_url, refusal_message=REFUSAL, **overrides)
    with TestClient(app) as http:
        ai = openai.OpenAI(base_url="http://testserver/v1", api_key="k", max_retries=0, http_client=http)
        text, chunks = collect(ai.chat.completions.create(**ask(prompt, stream=True)))
        plain = ai.chat.completions.create(**ask(prompt))
    return text, chunks[-1].choices[0].finish_reason, plain.choices[0].finish_reason


def test_hold_back_keeps_checked_text_until_more_after_it_was_checked(tmp_path):
    # "turns": two calm sentences (49 characters), then a harmful one. Without a hold-back the calm two are
    # released as soon as their check passed; with 160 characters of hold-back nothing is, and the refusal
    # stands in for the answer.
    upstream = Upstream()
    with live_server(upstream.app) as up:
        outcomes = {h: through_fake_proxy(tmp_path / str(h), f"{up}/v1", "script:turns go", stream_holdback_chars=h)
                    for h in (0, 160)}
    assert outcomes[0][:2] == ("First a harmless sentence. Then another calm one. ", "content_filter")
    assert outcomes[160][:2] == (REFUSAL, "content_filter")


def test_partial_text_is_cut_at_the_stricter_threshold(tmp_path):
    # The fake guard scores every response 0.1 for harm: under the whole-answer rule it never blocks; as part
    # of an answer it is cut once the partial threshold is at or under 0.1.
    upstream = Upstream()
    with live_server(upstream.app) as up:
        outcomes = {t: through_fake_proxy(tmp_path / str(t), f"{up}/v1", "script:benign hi",
                                          stream_partial_threshold=t) for t in (0.5, 0.1)}
    assert outcomes[0.5][1:] == ("stop", "stop") and outcomes[0.5][0].startswith("Paris")
    assert outcomes[0.1] == (REFUSAL, "content_filter", "stop")  # the unstreamed whole answer is judged as before


# ------------------------------------------------------------------------------------------ the first window

def _verdict(score: float) -> Verdict:
    return Verdict(prompt_harmful=False, response_harmful=False, scores={"response_harmful": score})


def _stream_through(words: list[str], score, first_window: int = 16, holdback: int = 160
                    ) -> tuple[list[tuple[str, int]], str | None]:
    """Feed ``words`` one chunk each through a StreamWindow, checking when due with verdicts scored by
    ``score(text)``: the released chunks, each with how much of the answer a passed check covered when it left,
    and the text so far when a check cut the answer (None: never)."""
    window = WindowSettings(first_window_chars=first_window, holdback_chars=holdback)
    state: StreamWindow[str] = StreamWindow()
    released: list[tuple[str, int]] = []
    for word in words:
        state.hold(word, state.add([(0, word)]))
        if state.due(window):
            snapshot = state.pending()
            if state.record(snapshot, [_verdict(score(t)) for t in snapshot.values()], whole=False,
                            threshold=window.partial_threshold, first_window=first_window):
                return released, state.texts[0]
            released += [(chunk, state.checked[0]) for chunk in state.releasable(holdback)]
    return released, None


def test_first_window_releases_only_checked_text_at_once():
    words = ["Paris ", "is ", "the ", "capital ", "of ", "France. ", "It ", "lies ", "on ", "the ", "Seine. "]
    released, cut = _stream_through(words, lambda text: 0.01)
    # "Paris " judged alone, at once, and released; the rest waits for the hold-back.
    assert cut is None and [chunk for chunk, _ in released] == ["Paris "]
    sent = ""
    for chunk, covered in released:
        sent += chunk
        assert len(sent) <= covered  # never a character no passed check had read


def test_first_window_over_the_stricter_threshold_waits_for_the_next_check_and_never_cuts():
    words = ["Kill ", "the ", "process ", "first. ", "Then ", "restart ", "it."]
    # 0.15: over half the partial threshold (0.2), so no early release; under it, so not cut either.
    assert _stream_through(words, lambda text: 0.15) == ([], None)
    # A first word scoring high is held, not cut: the first sentence, read whole, decides.
    assert _stream_through(words, lambda text: 0.9 if text == "Kill " else 0.01) == ([], None)
    assert _stream_through(words, lambda text: 0.9) == ([], "Kill the process first. ")  # cut where it was before
    # A first chunk longer than the window is never released early, whatever its score.
    assert _stream_through(["A first chunk of twenty-odd characters. "], lambda text: 0.0) == ([], None)
    assert _stream_through(["Paris ", "is "], lambda text: 0.0, first_window=0) == ([], None)  # off: the old rule


class _LowScoreGuard(ProxyTestGuard):
    """The proxy tests' keyword guard, but a harmless response scores 0.01 (under the first window's threshold)."""

    def _one(self, x: GuardInput) -> Verdict:
        verdict = super()._one(x)
        if x.response is not None and not verdict.response_harmful:
            verdict = dataclasses.replace(verdict, scores={**verdict.scores, "response_harmful": 0.01})
        return verdict


class _GatedStreamer:
    """Streams "Paris " and then waits until the test says the client has it (or 10 s) before the rest, so the
    test sees whether the first word got through while the upstream had sent nothing more."""

    def __init__(self) -> None:
        self.client_has_first = threading.Event()
        self.released_by_client: list[bool] = []
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)

    async def chat(self, request: Request) -> StreamingResponse:
        await request.json()
        return StreamingResponse(self._events(), media_type="text/event-stream")

    async def _events(self) -> AsyncIterator[bytes]:
        base = {"id": "chatcmpl-gate", "object": "chat.completion.chunk", "created": 1700000000, "model": "m"}
        words = ["Paris ", "is ", "the ", "capital ", "of ", "France. ", "HARMFUL ", "text ", "follows."]
        for n, word in enumerate(words):
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {'content': word}}]})}\n\n".encode()
            if n == 0:
                self.released_by_client.append(await asyncio.to_thread(self.client_has_first.wait, 10))
        end = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode()


def test_first_word_arrives_before_the_upstream_sends_more_and_harm_after_it_is_still_cut(tmp_path):
    upstream = _GatedStreamer()
    with live_server(upstream.app) as up:
        app = make_app(tmp_path, guard=_LowScoreGuard(), upstream_url=f"{up}/v1", refusal_message=REFUSAL)
        with live_server(app) as url:
            ai = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
            text, finish = "", None
            for chunk in ai.chat.completions.create(**ask("script:benign hi", stream=True)):
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
                    upstream.client_has_first.set()
                finish = chunk.choices[0].finish_reason if chunk.choices else finish
    assert upstream.released_by_client == [True]  # "Paris " came through while the upstream held the rest
    assert text.startswith("Paris ") and "HARMFUL" not in text
    assert finish == "content_filter"
