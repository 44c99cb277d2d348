"""The guarding proxy: ``/v1/chat/completions`` of any OpenAI-compatible LLM, with an input and an output rail.

- **Input rail**: the last user turn is checked, with the documents the model reads but the user did not write
  (tool and function results, system messages) as ``GuardInput.context``, where indirect prompt injections
  hide. Blocked: the upstream is not called.
- **Output rail**: each completion is checked as the response to that prompt. Blocked: it is replaced.
  A block answers with a normal chat completion whose message is the operator's refusal, ``finish_reason:
  "content_filter"`` and a ``railguard`` field with the verdicts, so clients written for OpenAI keep working.
- **Streams** (``stream_output``): ``window`` holds every upstream chunk back until a check covering its text,
  and ``stream_holdback_chars`` of text after it, passed (checks run at sentence ends or every N tokens, on the
  prompt with all of the answer so far); part of an answer must stay under the stricter
  ``stream_partial_threshold``, since the harm of an answer often shows only sentences after its first; ``live``
  relays chunks at once and checks behind them; ``buffer`` checks the whole answer before releasing any of it.
  A failed check sends nothing more of the answer, closes the upstream stream (so the upstream stops generating)
  and ends with a ``content_filter`` chunk and ``[DONE]``. Released chunks are the upstream's bytes, unchanged.
- **Faults** of the upstream (cannot connect, too slow, 5xx, not JSON, a stream that stops mid-way) answer 502
  or 504 with an OpenAI error body, or an error event once a stream has begun; each is audited.

Guard calls go through the server's micro-batcher (off the event loop). Every decision is one audit row with
``direction`` (input/output), ``upstream_called`` and ``stream_output``. All state of a request lives in that
request's own objects: nothing is shared between requests but the HTTP connection pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from ..types import GuardInput, Verdict
from .audit import AuditRecord
from .errors import SERVER_ERROR, APIError, error_body
from .runtime import Runtime
from .settings import ServerSettings

log = logging.getLogger(__name__)

ENDPOINT = "chat.completions"
# Roles whose text the model reads but the user did not type: where indirect prompt injections hide.
DOCUMENT_ROLES = frozenset({"tool", "function", "system", "developer"})
# A sentence ends at . ! ? (and their CJK forms), maybe followed by closing quotes or brackets, then a space,
# the end of the text so far, or a line break.
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f][\"')\]\u201d\u2019]*(?=\s|$)|\n")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                         "transfer-encoding", "upgrade", "host", "content-length", "authorization", "content-type"})
_RESPONSE_DROP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"})


class UpstreamError(Exception):
    """The upstream failed; ``status`` (502 or 504) and ``code`` are what the client gets."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return error_body(self.message, code=self.code, type=SERVER_ERROR)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


@dataclass(frozen=True, slots=True)
class Conversation:
    """What the rails read from a chat request: the last user turn and the documents the model was given."""

    prompt: str
    documents: tuple[str, ...] = ()

    def guard_input(self) -> GuardInput:
        return GuardInput(prompt=self.prompt, context=self.documents)

    def output_input(self, completion: str) -> GuardInput:
        return GuardInput(prompt=self.prompt, response=completion)


def message_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content
                         if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str))
    return ""


def read_conversation(body: Any) -> Conversation:
    """The rails' view of a chat request; 400 when the body is not a chat request at all."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object with 'model' and 'messages'", code="invalid_value")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise APIError(400, "'messages' must be a non-empty list of message objects", code="invalid_value",
                       param="messages")
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    prompt = message_text(messages[users[-1]].get("content")) if users else ""
    documents = tuple(text for m in messages if m.get("role") in DOCUMENT_ROLES
                      if (text := message_text(m.get("content"))).strip())
    return Conversation(prompt=prompt, documents=documents)


def blocks_output(verdict: Verdict) -> bool:
    """The output rail blocks a harmful response, and (fail-closed) one the guard could not judge."""
    return verdict.response_harmful is True or (verdict.error is not None and verdict.flagged)


def rail_field(request_id: str, blocked: str | None, input_verdict: Verdict | None,
               output_verdicts: Sequence[Verdict] = ()) -> dict[str, Any]:
    """The ``railguard`` field of a proxied answer."""
    return {"request_id": request_id, "blocked": blocked,
            "input": input_verdict.to_dict() if input_verdict is not None else None,
            "output": [v.to_dict() for v in output_verdicts]}


class Upstream:
    """The upstream LLM API: one connection pool for the whole server."""

    def __init__(self, settings: ServerSettings, *, keys_enabled: bool) -> None:
        self.base_url = settings.upstream_url or ""
        self.timeout_s = settings.upstream_timeout_s
        self._key = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else None
        # With railguard keys on, the client's Authorization is a railguard key: never sent on.
        self._pass_client_key = self._key is None and not keys_enabled
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s),
                                        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))

    async def aclose(self) -> None:
        await self.client.aclose()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def headers(self, client_headers: Mapping[str, str], *, content_type: str | None = "application/json",
                forward_all: bool = False) -> dict[str, str]:
        """Headers for the upstream: the key (the operator's, or the client's own), plus, for pass-through,
        the client's other end-to-end headers."""
        out = {k: v for k, v in client_headers.items() if k.lower() not in _HOP_BY_HOP} if forward_all else {}
        if content_type:
            out["content-type"] = content_type
        if self._key is not None:
            out["authorization"] = f"Bearer {self._key}"
        elif self._pass_client_key and client_headers.get("authorization"):
            out["authorization"] = client_headers["authorization"]
        return out

    def fault(self, exc: Exception, what: str) -> UpstreamError:
        """An httpx failure as the error the client gets."""
        where = self.base_url
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamError(504, "upstream_timeout",
                                 f"the upstream LLM at {where} did not {what} within {self.timeout_s:g} s")
        if isinstance(exc, httpx.ConnectError):
            return UpstreamError(502, "upstream_unreachable", f"cannot connect to the upstream LLM at {where}")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return UpstreamError(502, "upstream_stream_broken",
                                 f"the upstream LLM at {where} closed the connection before its answer was complete")
        return UpstreamError(502, "upstream_error", f"the upstream LLM at {where} failed ({type(exc).__name__})")

    async def check_status(self, response: httpx.Response) -> None:
        """5xx is the upstream's fault (502); 4xx is the client's, relayed as the upstream sent it."""
        if response.status_code >= 500:
            await response.aread()
            raise UpstreamError(502, "upstream_error",
                                f"the upstream LLM answered HTTP {response.status_code}; try again later")


def _json_or_fault(raw: bytes | str, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise UpstreamError(502, "upstream_bad_response", f"the upstream LLM sent {what} that is not JSON") from None


async def sse_payloads(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event, as the text between ``data:`` and the blank line."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        # "event:", "id:", "retry:" and ":" comments carry nothing a chat stream needs
    if data:
        yield "\n".join(data)


def sse(payload: str) -> bytes:
    return f"data: {payload}\n\n".encode()


@dataclass(slots=True)
class _Stream:
    """One streamed answer on its way through the output rail (one per request: nothing is shared)."""

    texts: dict[int, str] = field(default_factory=dict)  # choice index -> its text so far
    checked: dict[int, int] = field(default_factory=dict)  # choice index -> characters covered by a passed check
    held: deque[tuple[str, dict[int, int]]] = field(default_factory=deque)  # payload, text end per choice
    verdicts: dict[int, Verdict] = field(default_factory=dict)  # latest verdict per choice
    tokens_since_check: int = 0
    sent_content: bool = False
    finished: bool = False  # [DONE] or a finish_reason arrived
    meta: dict[str, Any] = field(default_factory=dict)  # id, created, model of the latest chunk

    def add(self, chunk: Any) -> dict[int, int]:
        ends: dict[int, int] = {}
        if not isinstance(chunk, dict):
            raise UpstreamError(502, "upstream_bad_response", "the upstream LLM sent a stream chunk that is not an object")
        if isinstance(chunk.get("error"), Mapping):
            detail = chunk["error"].get("message")
            raise UpstreamError(502, "upstream_error", f"the upstream LLM reported an error mid-stream: {detail}")
        for key in ("id", "created", "model", "system_fingerprint"):
            if key in chunk:
                self.meta[key] = chunk[key]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0) if isinstance(choice.get("index", 0), int) else 0
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                self.texts[index] = self.texts.get(index, "") + content
                self.tokens_since_check += 1
            ends[index] = len(self.texts.get(index, ""))
            if choice.get("finish_reason"):
                self.finished = True
        return ends

    def unchecked(self) -> list[int]:
        return [i for i, text in self.texts.items() if len(text) > self.checked.get(i, 0)]

    def due(self, settings: ServerSettings) -> bool:
        """Whether the text so far should be checked now."""
        pending = self.unchecked()
        if not pending:
            return False
        if self.tokens_since_check >= settings.stream_check_tokens:
            return True
        return settings.stream_check == "sentence" and any(
            _SENTENCE_END.search(self.texts[i], self.checked.get(i, 0)) for i in pending)

    def releasable(self, holdback_chars: int = 0) -> list[str]:
        """Held payloads whose text, and ``holdback_chars`` of text after it, a passed check covered."""
        out = []
        while self.held and all(end + holdback_chars <= self.checked.get(i, 0)
                                for i, end in self.held[0][1].items()):
            payload, ends = self.held.popleft()
            self.sent_content |= any(ends.values())
            out.append(payload)
        return out


def blocks_partial(verdict: Verdict, threshold: float) -> bool:
    """The output rail on part of an answer: stricter than on the whole one, since the harm of an answer often
    shows only sentences after its first, when those would already be on their way to the client."""
    score = verdict.scores.get("response_harmful")
    return blocks_output(verdict) or (score is not None and score >= threshold)


def partial_threshold(settings: ServerSettings, input_verdict: Verdict) -> float:
    """The partial-text threshold for one answer: halved when the prompt itself looked harmful but was let
    through (its score at or over the partial threshold)."""
    threshold = settings.stream_partial_threshold
    prompt_score = input_verdict.scores.get("prompt_harmful")
    return threshold / 2 if prompt_score is not None and prompt_score >= threshold else threshold


@dataclass(frozen=True, slots=True)
class _Call:
    """One chat request on its way through the proxy: who asked, when, what the rails read, the input verdict."""

    request_id: str
    key_id: str | None
    received: float  # time.time() at arrival, for the audit log
    start: float  # time.perf_counter() at arrival, for latencies
    stream: bool
    conversation: Conversation
    input_verdict: Verdict

    @property
    def input_item(self) -> tuple[GuardInput, Verdict, str]:
        return self.conversation.guard_input(), self.input_verdict, "input"

    def fault_item(self, error: UpstreamError) -> tuple[GuardInput, Verdict, str]:
        """An upstream fault as an output-side audit row: not flagged, with the fault as its error."""
        verdict = Verdict(tier="upstream", error=f"{error.code}: {error.message}")
        return self.conversation.guard_input(), verdict, "output"

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Request-ID": self.request_id}


class Proxy:
    """The chat-completions proxy of one server."""

    def __init__(self, runtime: Runtime, upstream: Upstream) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.upstream = upstream
        self._background: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.upstream.aclose()

    # ------------------------------------------------------------------------------------------- audit

    async def _record(self, call: _Call, items: Sequence[tuple[GuardInput, Verdict, str]], *,
                      upstream_called: bool) -> None:
        """The call's decisions as audit rows, durable before the client hears of them."""
        await self.runtime.write(self._rows(call, items, upstream_called=upstream_called))

    def _rows(self, call: _Call, items: Sequence[tuple[GuardInput, Verdict, str]], *, upstream_called: bool
              ) -> list[AuditRecord]:
        latency_ms = (time.perf_counter() - call.start) * 1000.0
        rows: list[AuditRecord] = []
        for x, v, direction in items:
            rows += self.runtime.records(
                [x], [v], request_id=call.request_id, endpoint=ENDPOINT, key_id=call.key_id,
                guard=self.runtime.default.name, received=call.received, latency_ms=latency_ms,
                first_item=len(rows), direction=direction, upstream_called=upstream_called,
                stream_output=self.settings.stream_output if call.stream else None)
        return rows

    def _log(self, call: _Call, outcome: str) -> None:
        log.info("%s request=%s key=%s stream=%s outcome=%s ms=%.1f", ENDPOINT, call.request_id, call.key_id or "-",
                 call.stream, outcome, (time.perf_counter() - call.start) * 1000.0)

    async def _failed(self, call: _Call, exc: Exception, what: str) -> JSONResponse:
        """An upstream fault before any answer was sent: audited, then a 502/504 with an OpenAI error body."""
        error = exc if isinstance(exc, UpstreamError) else self.upstream.fault(exc, what)
        await self._record(call, [call.input_item, call.fault_item(error)], upstream_called=True)
        self._log(call, error.code)
        return JSONResponse(error.body(), status_code=error.status, headers=call.headers)

    # ------------------------------------------------------------------------------------------ answers

    def _refusal(self, body: Mapping[str, Any], request_id: str, rail: dict[str, Any]) -> dict[str, Any]:
        return {"id": f"chatcmpl-rg-{request_id}", "object": "chat.completion", "created": int(time.time()),
                "model": str(body.get("model") or "railguard"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.settings.refusal_message},
                             "finish_reason": "content_filter", "logprobs": None}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, "railguard": rail}

    def _cut_chunks(self, meta: Mapping[str, Any], indices: Sequence[int], rail: dict[str, Any], *,
                    with_refusal: bool) -> list[bytes]:
        base = {"id": meta.get("id", f"chatcmpl-rg-{rail['request_id']}"), "object": "chat.completion.chunk",
                "created": meta.get("created", int(time.time())), "model": meta.get("model", "railguard")}
        out = []
        if with_refusal:  # nothing of the answer reached the client: the refusal stands in for it
            out.append(sse(json.dumps({**base, "choices": [
                {"index": i, "delta": {"role": "assistant", "content": self.settings.refusal_message},
                 "finish_reason": None, "logprobs": None} for i in indices]})))
        out.append(sse(json.dumps({**base, "choices": [
            {"index": i, "delta": {}, "finish_reason": "content_filter", "logprobs": None} for i in indices],
            "railguard": rail})))
        out.append(sse("[DONE]"))
        return out

    # ---------------------------------------------------------------------------------------- the route

    async def chat(self, body: Any, client_headers: Mapping[str, str], key_id: str | None):
        received, start = time.time(), time.perf_counter()
        conversation = read_conversation(body)
        _check_sizes(conversation, self.settings)
        service = self.runtime.default
        (verdict,) = await service.judge([conversation.guard_input()])
        call = _Call(request_id=uuid.uuid4().hex, key_id=key_id, received=received, start=start,
                     stream=bool(body.get("stream")), conversation=conversation, input_verdict=verdict)
        if verdict.flagged:
            rail = rail_field(call.request_id, "input", verdict)
            await self._record(call, [call.input_item], upstream_called=False)
            self._log(call, "blocked-input")
            if call.stream:
                chunks = self._cut_chunks({}, [0], rail, with_refusal=True)
                return StreamingResponse(_iterate(chunks), media_type="text/event-stream", headers=call.headers)
            return JSONResponse(self._refusal(body, call.request_id, rail), headers=call.headers)
        upstream_headers = self.upstream.headers(client_headers)
        if call.stream:
            return await self._open_stream(call, body, upstream_headers)
        try:
            response = await self.upstream.client.post(self.upstream.url("chat/completions"), json=body,
                                                       headers=upstream_headers)
            await self.upstream.check_status(response)
            if response.status_code >= 400:  # the client's mistake (bad model name, bad key): theirs to see
                await self._record(call, [call.input_item], upstream_called=True)
                return _relay(response, call.headers)
            answer = _json_or_fault(response.content, "an answer")
            choices = answer.get("choices") if isinstance(answer, dict) else None
            if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
                raise UpstreamError(502, "upstream_bad_response", "the upstream LLM's answer has no 'choices' list")
        except (httpx.HTTPError, UpstreamError) as exc:
            return await self._failed(call, exc, "answer")
        texts = {i: message_text(c["message"].get("content")) if isinstance(c.get("message"), dict) else ""
                 for i, c in enumerate(choices)}
        checked = [i for i, text in texts.items() if text]
        outputs = [conversation.output_input(texts[i]) for i in checked]
        verdicts = await service.judge(outputs) if outputs else []
        blocked = False
        for i, v in zip(checked, verdicts):
            if blocks_output(v):
                blocked = True
                choices[i] = {**choices[i], "message": {"role": "assistant", "content": self.settings.refusal_message},
                              "finish_reason": "content_filter"}
        answer["railguard"] = rail_field(call.request_id, "output" if blocked else None, verdict, verdicts)
        await self._record(call, [call.input_item, *((x, v, "output") for x, v in zip(outputs, verdicts))],
                           upstream_called=True)
        self._log(call, "blocked-output" if blocked else "passed")
        return JSONResponse(answer, headers=call.headers)

    async def _open_stream(self, call: _Call, body: Any, upstream_headers: dict[str, str]):
        """Connect and read the first event before answering, so early faults are real 502/504 answers."""
        response: httpx.Response | None = None
        try:
            request = self.upstream.client.build_request("POST", self.upstream.url("chat/completions"), json=body,
                                                         headers=upstream_headers)
            response = await self.upstream.client.send(request, stream=True)
            await self.upstream.check_status(response)
            if response.status_code >= 400:
                await response.aread()
                await self._record(call, [call.input_item], upstream_called=True)
                return _relay(response, call.headers)
            if "text/event-stream" not in response.headers.get("content-type", "text/event-stream"):
                await response.aread()
                raise UpstreamError(502, "upstream_bad_response",
                                    "the upstream LLM did not answer a stream request with server-sent events")
            payloads = sse_payloads(response)
            first = await anext(payloads, None)
            if first is None:
                raise UpstreamError(502, "upstream_stream_broken", "the upstream LLM's stream ended before it began")
            if first != "[DONE]":
                _json_or_fault(first, "a stream chunk")
        except (httpx.HTTPError, UpstreamError) as exc:
            if response is not None:
                await response.aclose()
            return await self._failed(call, exc, "start its stream")
        return StreamingResponse(self._relay_stream(call, response, payloads, first), media_type="text/event-stream",
                                 headers={**call.headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _relay_stream(self, call: _Call, response: httpx.Response, payloads: AsyncIterator[str], first: str
                            ) -> AsyncIterator[bytes]:
        settings = self.settings
        mode = settings.stream_output
        conversation = call.conversation
        state = _Stream()
        written = False
        outcome = "passed"

        def rows(extra: Sequence[tuple[GuardInput, Verdict, str]] = ()) -> list[AuditRecord]:
            outputs = [(conversation.output_input(state.texts[i]), v, "output") for i, v in state.verdicts.items()]
            return self._rows(call, [call.input_item, *outputs, *extra], upstream_called=True)

        threshold = partial_threshold(settings, call.input_verdict)
        holdback = settings.stream_holdback_chars if mode == "window" else 0

        async def check(*, whole: bool = False) -> list[int]:
            """Check every choice with unchecked text (all of its text so far, with the prompt); the choices whose
            check failed. Part of an answer (``whole`` false) is held to the stricter partial threshold."""
            indices = state.unchecked()
            snapshot = {i: state.texts[i] for i in indices}
            verdicts = await self.runtime.default.judge([conversation.output_input(snapshot[i]) for i in indices],
                                                        key_id=call.key_id)
            state.tokens_since_check = 0
            failed = []
            for i, v in zip(indices, verdicts):
                state.verdicts[i] = v
                if blocks_output(v) if whole else blocks_partial(v, threshold):
                    failed.append(i)
                else:
                    state.checked[i] = len(snapshot[i])
            return failed

        failed: list[int] = []
        try:
            payload: str | None = first
            while payload is not None:
                if payload == "[DONE]":
                    state.finished = True
                    break
                ends = state.add(_json_or_fault(payload, "a stream chunk"))
                if mode == "live":
                    state.sent_content |= any(ends.values())
                    yield sse(payload)
                else:
                    state.held.append((payload, ends))
                if mode != "buffer" and state.due(settings):
                    failed = await check()
                    if failed:
                        break
                    for released in state.releasable(holdback):
                        yield sse(released)
                payload = await anext(payloads, None)
            else:
                if not state.finished:
                    raise UpstreamError(502, "upstream_stream_broken",
                                        "the upstream LLM's stream stopped before its answer was complete")
            if not failed and state.unchecked():
                failed = await check(whole=True)
            if failed:
                outcome = "blocked-output"
                await response.aclose()  # the upstream sees the disconnect and stops generating
                await self.runtime.write(rows())
                written = True
                rail = rail_field(call.request_id, "output", call.input_verdict, list(state.verdicts.values()))
                for chunk in self._cut_chunks(state.meta, sorted(state.texts) or [0], rail,
                                              with_refusal=not state.sent_content):
                    yield chunk
                return
            await self.runtime.write(rows())
            written = True
            for released in [payload for payload, _ in state.held]:
                yield sse(released)
            state.held.clear()
            yield sse("[DONE]")
        except (httpx.HTTPError, UpstreamError) as exc:
            error = exc if isinstance(exc, UpstreamError) else self.upstream.fault(exc, "send the next chunk")
            outcome = error.code
            await response.aclose()
            if not written:
                await self.runtime.write(rows([call.fault_item(error)]))
                written = True
            yield sse(json.dumps(error.body()))  # the openai client raises APIError on it
        except APIError as exc:  # the audit store failed: no more of the answer without its row
            outcome = exc.code
            written = True
            yield sse(json.dumps(error_body(exc.message, code=exc.code, type=exc.type)))
        finally:
            with anyio.CancelScope(shield=True):  # also when the client went away and this task is cancelled
                await response.aclose()
            if not written:  # the client went away mid-stream: the decisions so far are still recorded
                self._write_later(rows())
                outcome = "client-disconnected"
            self._log(call, outcome)

    def _write_later(self, records: list[AuditRecord]) -> None:
        task = asyncio.get_running_loop().create_task(self._write_quietly(records))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write_quietly(self, records: list[AuditRecord]) -> None:
        try:
            await self.runtime.write(records)
        except APIError:
            pass  # runtime.write logged it; there is no client left to tell

    # -------------------------------------------------------------------------------------- pass-through

    async def passthrough(self, method: str, path: str, query: bytes, body: bytes,
                          client_headers: Mapping[str, str], content_type: str | None):
        """Any other ``/v1/*`` call, sent to the upstream as it came; its answer streamed back as it comes."""
        url = self.upstream.url(path) + (f"?{query.decode('latin-1')}" if query else "")
        headers = self.upstream.headers(client_headers, content_type=content_type, forward_all=True)
        try:
            request = self.upstream.client.build_request(method, url, content=body or None, headers=headers)
            response = await self.upstream.client.send(request, stream=True)
            await self.upstream.check_status(response)
        except (httpx.HTTPError, UpstreamError) as exc:
            error = exc if isinstance(exc, UpstreamError) else self.upstream.fault(exc, "answer")
            log.info("pass-through %s /v1/%s failed: %s", method, path, error.code)
            return error.response()

        async def body_chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            except httpx.HTTPError as exc:
                log.info("pass-through %s /v1/%s broke off: %s", method, path, type(exc).__name__)
            finally:
                await response.aclose()

        kept = {k: v for k, v in response.headers.items() if k.lower() not in _RESPONSE_DROP}
        # The background close also runs when the client leaves before the body was read.
        return StreamingResponse(body_chunks(), status_code=response.status_code, headers=kept,
                                 background=BackgroundTask(response.aclose))


def _relay(response: httpx.Response, headers: Mapping[str, str]) -> JSONResponse:
    """An upstream 4xx as it came (it is about the client's request), as JSON when it is JSON."""
    try:
        content = response.json()
    except ValueError:
        content = error_body(response.text[:1000] or f"upstream answered HTTP {response.status_code}",
                             code="upstream_rejected")
    return JSONResponse(content, status_code=response.status_code, headers=dict(headers))


async def _iterate(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _check_sizes(conversation: Conversation, settings: ServerSettings) -> None:
    from .routes.limits import check_text

    check_text(conversation.prompt, settings, param="messages")
    for doc in conversation.documents:
        check_text(doc, settings, param="messages")
