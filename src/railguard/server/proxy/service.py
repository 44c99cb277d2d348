"""The guarding proxy's service: the input rail, the upstream call, the output rail (whole answers and streams),
the audit rows of every decision, and the pass-through of other ``/v1/*`` calls."""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from ...agent.actions import tool_call_label
from ...audit import AuditRecord
from ...conversation import Conversation
from ...errors import InputError
from ...rails import blocks, partial_threshold, response_harm_blocks
from ...types import GuardInput, Verdict
from ..encoding import dumps, with_field
from ..errors import APIError, error_body
from ..media import check_media
from ..runtime import Runtime
from ..settings import ServerSettings
from .apis import Api, BadAnswer, sse
from .stream import DONE, StreamedAnswer, parsed_events, replay
from .upstream import Upstream, UpstreamError, json_or_fault, relay, sse_payloads

log = logging.getLogger(__name__)


def rail_field(request_id: str, blocked: str | None, input_verdicts: Sequence[Verdict],
               output_verdicts: Sequence[Verdict] = ()) -> dict[str, Any]:
    """The ``railguard`` field of a proxied answer: ``input`` is the verdict that decided the input rail (the
    first that blocked, else the last user turn's), ``inputs`` all of the input rail's verdicts."""
    deciding = next((v for v in input_verdicts if blocks(v)), input_verdicts[0] if input_verdicts else None)
    return {"request_id": request_id, "blocked": blocked,
            "input": deciding.to_dict() if deciding is not None else None,
            "inputs": [v.to_dict() for v in input_verdicts],
            "output": [v.to_dict() for v in output_verdicts]}


@dataclass(frozen=True, slots=True)
class _Call:
    """One generation request on its way through the proxy: which API, who asked, when, what the rails read,
    the input verdicts."""

    api: Api
    request_id: str
    key_id: str | None
    received: float  # time.time() at arrival, for the audit log
    start: float  # time.perf_counter() at arrival, for latencies
    stream: bool
    conversation: Conversation
    inputs: tuple[GuardInput, ...]
    input_verdicts: tuple[Verdict, ...]

    @property
    def input_items(self) -> list[tuple[GuardInput, Verdict, str]]:
        return [(x, v, "input") for x, v in zip(self.inputs, self.input_verdicts)]

    def fault_item(self, error: UpstreamError) -> tuple[GuardInput, Verdict, str]:
        """An upstream fault as an output-side audit row: not flagged, with the fault as its error."""
        verdict = Verdict(tier="upstream", error=f"{error.code}: {error.message}")
        return self.inputs[0], verdict, "output"

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Request-ID": self.request_id}


class Proxy:
    """The guarding proxy of one server."""

    def __init__(self, runtime: Runtime, upstream: Upstream) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.upstream = upstream
        self.harm_blocks = response_harm_blocks(runtime.default.guard)
        self._background: set[asyncio.Task[None]] = set()
        self._warned_no_actions = False

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
                [x], [v], request_id=call.request_id, endpoint=call.api.endpoint, key_id=call.key_id,
                guard=self.runtime.default.name, received=call.received, latency_ms=latency_ms,
                first_item=len(rows), direction=direction, upstream_called=upstream_called,
                stream_output=self.settings.stream_output if call.stream else None)
        return rows

    def _log(self, call: _Call, outcome: str) -> None:
        log.info("%s request=%s key=%s stream=%s outcome=%s ms=%.1f", call.api.endpoint, call.request_id, call.key_id or "-",
                 call.stream, outcome, (time.perf_counter() - call.start) * 1000.0)

    async def _failed(self, call: _Call, exc: Exception, what: str) -> JSONResponse:
        """An upstream fault before any answer was sent: audited, then a 502/504 with an OpenAI error body."""
        error = exc if isinstance(exc, UpstreamError) else self.upstream.fault(exc, what)
        await self._record(call, [*call.input_items, call.fault_item(error)], upstream_called=True)
        self._log(call, error.code)
        return JSONResponse(error.body(), status_code=error.status, headers=call.headers)

    async def _check_outputs(self, call: _Call, outputs: Sequence[GuardInput], tool_calls: Sequence[Mapping[str, Any]]
                             ) -> list[tuple[GuardInput, Verdict]]:
        """The output rail's judgement of answer texts and then of proposed tool calls, in that order, in one
        guard call. A tool call that cannot be read as an action is blocked without asking the guard."""
        inputs = list(outputs)
        unreadable: dict[int, Verdict] = {}
        for data in tool_calls:
            try:
                inputs.append(call.conversation.tool_call_input(data))
            except InputError as exc:
                label = tool_call_label(data)
                unreadable[len(inputs)] = Verdict.failed(f"the tool call the upstream LLM proposed cannot be judged: "
                                                         f"{exc}; blocked", tier="proxy", id=label)
                inputs.append(GuardInput(id=label))
        asked = [i for i in range(len(inputs)) if i not in unreadable]
        verdicts = await self.runtime.default.judge([inputs[i] for i in asked], key_id=call.key_id) if asked else []
        judged = {**dict(zip(asked, verdicts)), **unreadable}
        if not self._warned_no_actions and any(
                inputs[i].action is not None and v.action_risk is None and v.error is None for i, v in judged.items()):
            self._warned_no_actions = True
            log.warning("guard %s does not judge actions: the tool calls the upstream proposes are not judged for "
                        "their risk", self.runtime.default.name)
        return [(x, judged[i]) for i, x in enumerate(inputs)]

    # ---------------------------------------------------------------------------------------- the route

    async def generate(self, api: Api, body: Any, client_headers: Mapping[str, str], key_id: str | None,
                       raw: bytes | None = None):
        """One railed call: the input rail, the upstream, the output rail. ``raw``: the request body as the client
        sent it (``body`` parsed), passed to the upstream as it is."""
        received, start = time.time(), time.perf_counter()
        conversation = api.read(body, self.settings)
        inputs = conversation.guard_inputs()
        _check_sizes(conversation, len(inputs), self.settings)
        await check_media(inputs[:1], self.settings, ["messages"])
        service = self.runtime.default
        verdicts = await service.judge(inputs, key_id=key_id)
        call = _Call(api=api, request_id=uuid.uuid4().hex, key_id=key_id, received=received, start=start,
                     stream=bool(body.get("stream")), conversation=conversation, inputs=tuple(inputs),
                     input_verdicts=tuple(verdicts))
        message = self.settings.refusal_message
        if any(blocks(v) for v in verdicts):
            rail = rail_field(call.request_id, "input", verdicts)
            await self._record(call, call.input_items, upstream_called=False)
            self._log(call, "blocked-input")
            if call.stream:
                chunks = api.cut({}, [0], rail, message, with_refusal=True)
                return StreamingResponse(replay(chunks), media_type="text/event-stream", headers=call.headers)
            return _json({**api.refusal(body, call.request_id, message), "railguard": rail}, call.headers)
        upstream_headers = self.upstream.headers(client_headers)
        content = raw if raw is not None else dumps(body)
        if call.stream:
            return await self._open_stream(call, content, upstream_headers)
        try:
            response = await self.upstream.client.post(self.upstream.url(api.path), content=content,
                                                       headers=upstream_headers)
            await self.upstream.check_status(response)
            if response.status_code >= 400:  # the client's mistake (bad model name, bad key): theirs to see
                await self._record(call, call.input_items, upstream_called=True)
                return relay(response, call.headers)
            answer = json_or_fault(response.content, "an answer")
            try:
                texts = api.texts(answer)
                tool_calls = api.tool_calls(answer)
            except BadAnswer as exc:
                raise UpstreamError(502, "upstream_bad_response", str(exc)) from None
        except (httpx.HTTPError, UpstreamError) as exc:
            return await self._failed(call, exc, "answer")
        checked = [i for i, text in texts.items() if text]
        outputs = [conversation.output_input(texts[i]) for i in checked]
        judged = await self._check_outputs(call, outputs, [data for _, data in tool_calls])
        owners = checked + [i for i, _ in tool_calls]  # the output index of each judged text and call
        blocked = sorted({i for i, (_, v) in zip(owners, judged) if blocks(v)})
        rail = rail_field(call.request_id, "output" if blocked else None, verdicts, [v for _, v in judged])
        await self._record(call, [*call.input_items, *((x, v, "output") for x, v in judged)], upstream_called=True)
        self._log(call, "blocked-output" if blocked else "passed")
        if blocked:
            api.replace(answer, blocked, message)
            return _json({**answer, "railguard": rail}, call.headers)
        # Passed: the upstream's own bytes with the rail field added, not parsed back into an encoder.
        return Response(with_field(response.content, answer, "railguard", rail), media_type="application/json",
                        headers=call.headers)

    async def _open_stream(self, call: _Call, content: bytes, upstream_headers: dict[str, str]):
        """Connect and read the first event before answering, so early faults are real 502/504 answers."""
        response: httpx.Response | None = None
        try:
            request = self.upstream.client.build_request("POST", self.upstream.url(call.api.path), content=content,
                                                         headers=upstream_headers)
            response = await self.upstream.client.send(request, stream=True)
            await self.upstream.check_status(response)
            if response.status_code >= 400:
                await response.aread()
                await self._record(call, call.input_items, upstream_called=True)
                return relay(response, call.headers)
            if "text/event-stream" not in response.headers.get("content-type", "text/event-stream"):
                await response.aread()
                raise UpstreamError(502, "upstream_bad_response",
                                    "the upstream LLM did not answer a stream request with server-sent events")
            payloads = sse_payloads(response)
            first = await anext(payloads, None)
            if first is None:
                raise UpstreamError(502, "upstream_stream_broken", "the upstream LLM's stream ended before it began")
            first_chunk = None if first == DONE else json_or_fault(first, "a stream chunk")
        except (httpx.HTTPError, UpstreamError) as exc:
            if response is not None:
                await response.aclose()
            return await self._failed(call, exc, "start its stream")
        chunks = parsed_events(first, first_chunk, payloads)
        return StreamingResponse(self._relay_stream(call, response, chunks), media_type="text/event-stream",
                                 headers={**call.headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _relay_stream(self, call: _Call, response: httpx.Response,
                            chunks: AsyncIterator[tuple[bytes, Any]]) -> AsyncIterator[bytes]:
        settings = self.settings
        mode = settings.stream_output
        api = call.api
        conversation = call.conversation
        state = StreamedAnswer()  # holds the upstream's events as relayed: bytes
        written = False
        outcome = "passed"

        def rows(extra: Sequence[tuple[GuardInput, Verdict, str]] = ()) -> list[AuditRecord]:
            outputs = [(conversation.output_input(state.texts[i]), v, "output") for i, v in state.verdicts.items()]
            outputs += [(x, v, "output") for x, v in state.call_items]
            return self._rows(call, [*call.input_items, *outputs, *extra], upstream_called=True)

        threshold = partial_threshold(settings.stream_partial_threshold, call.input_verdicts, harm_blocks=self.harm_blocks)
        holdback = settings.stream_holdback_chars if mode == "window" else 0
        # No early release where the policy lets harmful answers through (no stricter threshold): no first window.
        first_window = settings.window.first_window_chars if threshold is not None else 0
        window = dataclasses.replace(settings.window, first_window_chars=first_window)

        async def check(*, whole: bool = False) -> list[int]:
            """Check every choice with unchecked text (all of its text so far, with the prompt); the choices whose
            check failed. Part of an answer (``whole`` false) is held to the stricter partial threshold."""
            snapshot = state.pending()
            verdicts = await self.runtime.default.judge([conversation.output_input(t) for t in snapshot.values()],
                                                        key_id=call.key_id)
            return state.record(snapshot, verdicts, whole=whole, threshold=threshold, first_window=first_window)

        failed: list[int] = []
        try:
            item = await anext(chunks, None)
            while item is not None:
                payload, chunk = item
                if payload == DONE:
                    state.finished = True
                    break
                ends, holds_call = state.read(chunk, api)
                if mode == "live" and not holds_call and not state.held:
                    state.sent_content |= any(ends.values())
                    yield api.event(payload, chunk)
                else:  # a tool call is held until it is judged whole (and what follows it, to keep the order)
                    state.hold(api.event(payload, chunk), ends, call=holds_call)
                if mode != "buffer" and state.due(window):
                    failed = await check()
                    if failed:
                        break
                    for released in state.releasable(holdback):
                        yield released
                item = await anext(chunks, None)
            else:
                if not state.finished:
                    raise UpstreamError(502, "upstream_stream_broken",
                                        "the upstream LLM's stream stopped before its answer was complete")
            if not failed and state.unchecked():
                failed = await check(whole=True)
            if not failed and state.calls:
                calls = state.assembled()
                state.call_items = await self._check_outputs(call, [], [data for _, data in calls])
                failed = sorted({i for (i, _), (_, v) in zip(calls, state.call_items) if blocks(v)})
            if failed:
                outcome = "blocked-output"
                await response.aclose()  # the upstream sees the disconnect and stops generating
                await self.runtime.write(rows())
                written = True
                rail = rail_field(call.request_id, "output", call.input_verdicts,
                                  [*state.verdicts.values(), *(v for _, v in state.call_items)])
                choices = sorted({*state.texts, *(output for output, _ in state.calls)}) or [0]
                for chunk in api.cut(state.meta, choices, rail, settings.refusal_message,
                                     with_refusal=not state.sent_content):
                    yield chunk
                return
            await self.runtime.write(rows())
            written = True
            for released in state.rest():
                yield released
            if api.ends_with_done:
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
        """An allowed other ``/v1/*`` call, sent to the upstream as it came; its answer streamed back as it comes.
        A call no rail covers and ``upstream_passthrough`` does not allow gets 403."""
        if not passthrough_allowed(method, path, self.settings.upstream_passthrough):
            log.info("pass-through %s /v1/%s refused: not in upstream_passthrough", method, path)
            raise APIError(403, f"{method.upper()} /v1/{path} is not passed to the upstream LLM: railguard has no rail "
                                "for it and the operator's upstream_passthrough setting does not allow it (allowed: "
                                f"{', '.join(self.settings.upstream_passthrough) or 'nothing'})",
                           code="route_not_allowed")
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

        kept = self.upstream.relayed_headers(response)
        # The background close also runs when the client leaves before the body was read.
        return StreamingResponse(body_chunks(), status_code=response.status_code, headers=kept,
                                 background=BackgroundTask(response.aclose))


def _json(content: Any, headers: Mapping[str, str]) -> Response:
    return Response(dumps(content), media_type="application/json", headers=dict(headers))


def _check_sizes(conversation: Conversation, inputs: int, settings: ServerSettings) -> None:
    """413 over ``proxy_max_chars`` (all turns and documents together) or ``max_items`` texts to judge. A text
    longer than ``max_input_chars`` is not refused: it is judged in pieces, each one of the texts."""
    if conversation.chars > settings.proxy_max_chars:
        raise APIError(413, f"the request holds {conversation.chars:,} characters of text to judge; the proxy's limit "
                            f"is {settings.proxy_max_chars:,} (proxy_max_chars): shorten the conversation or its "
                            "documents", code="input_too_large", param="messages")
    if inputs > settings.max_items:
        raise APIError(413, f"the conversation gives {inputs:,} texts to judge (user turns, and pieces of "
                            f"{settings.max_input_chars:,} characters of long texts); the limit is "
                            f"{settings.max_items:,} (max_items): start a new conversation or drop old turns",
                       code="too_many_inputs", param="messages")


def passthrough_allowed(method: str, path: str, patterns: Sequence[str]) -> bool:
    """Whether ``METHOD /v1/path`` matches one of the ``upstream_passthrough`` patterns (``*`` is a wildcard)."""
    route = f"{method.upper()} /v1/{path.lstrip('/')}"
    return any(fnmatch.fnmatchcase(route, pattern) for pattern in patterns)
