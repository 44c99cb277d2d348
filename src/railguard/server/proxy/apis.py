"""The generation APIs the proxy rails, each as one small table of shapes: how a request is read, where an
answer's texts are, how a text is replaced by the refusal, and what a stream's events look like.

``chat`` is ``/v1/chat/completions``, ``completions`` the legacy ``/v1/completions`` and ``responses``
``/v1/responses``. The proxy itself (:mod:`railguard.server.proxy`) is the same for all three.

Tool calls the model proposes (chat ``tool_calls`` and the legacy ``function_call``, Responses ``function_call``
and ``custom_tool_call`` items) are found in whole answers (:meth:`Api.tool_calls`) and as the fragments a
stream carries (:attr:`Piece.calls`), which the proxy assembles.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .conversation import Conversation, read_chat, read_completion, read_response
from ..settings import ServerSettings


class BadAnswer(Exception):
    """The upstream's answer does not have the shape of its API (the proxy answers 502)."""


@dataclass(frozen=True, slots=True)
class CallPart:
    """A fragment of a streamed tool call: which output (choice, or Responses output index) and which of its
    calls, the call's id and function name where this event gives them, and text of its arguments (all of them
    when ``whole``)."""

    output: int
    key: int
    call_id: str | None = None
    name: str | None = None
    arguments: str = ""
    whole: bool = False


@dataclass(frozen=True, slots=True)
class Piece:
    """What one stream event holds for the rails: text per output index, tool call fragments, and whether the
    answer ended."""

    texts: Sequence[tuple[int, str]] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    finished: bool = False
    error: str | None = None  # the upstream reported an error mid-stream
    calls: Sequence[CallPart] = ()


def sse(payload: str, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _index(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _choices(answer: Any) -> list[dict[str, Any]]:
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise BadAnswer("the upstream LLM's answer has no 'choices' list")
    return choices


class Api:
    """One generation API: its path, how its requests read, and its answers' shapes."""

    endpoint: str  # the audit log's name for it
    path: str  # below the upstream's base URL
    read: Callable[[Any, ServerSettings], Conversation]
    ends_with_done = True  # the stream's last event is "data: [DONE]"

    def texts(self, answer: Any) -> dict[int, str]:
        """Output index -> the text the output rail judges (the answer is left as it is)."""
        raise NotImplementedError

    def tool_calls(self, answer: Any) -> list[tuple[int, Mapping[str, Any]]]:
        """The tool calls an answer proposes, each with the output index that :meth:`replace` takes."""
        return []

    def replace(self, answer: dict[str, Any], indices: Sequence[int], message: str) -> None:
        """Put the refusal in place of the blocked outputs (the answer is the proxy's own copy); an output
        with a blocked tool call loses all of its tool calls."""
        raise NotImplementedError

    def refusal(self, body: Mapping[str, Any], request_id: str, message: str) -> dict[str, Any]:
        """A whole answer that is only the refusal (the input rail blocked the request)."""
        raise NotImplementedError

    def piece(self, event: dict[str, Any]) -> Piece:
        raise NotImplementedError

    def event(self, payload: bytes, chunk: Any = None) -> bytes:
        """One upstream event as relayed (its payload's bytes unchanged); ``chunk``: the payload parsed."""
        return b"data: " + payload + b"\n\n"

    def cut(self, meta: Mapping[str, Any], indices: Sequence[int], rail: dict[str, Any], message: str, *,
            with_refusal: bool) -> list[bytes]:
        """The events that end a blocked stream; with the refusal when nothing of the answer was sent."""
        raise NotImplementedError


class ChatApi(Api):
    endpoint, path, read = "chat.completions", "chat/completions", staticmethod(read_chat)

    def texts(self, answer: Any) -> dict[int, str]:
        out = {}
        for i, c in enumerate(_choices(answer)):
            content = c["message"].get("content") if isinstance(c.get("message"), dict) else None
            out[i] = content if isinstance(content, str) else _part_texts(content)
        return out

    def tool_calls(self, answer: Any) -> list[tuple[int, Mapping[str, Any]]]:
        out: list[tuple[int, Mapping[str, Any]]] = []
        for i, c in enumerate(_choices(answer)):
            message = c.get("message") if isinstance(c.get("message"), dict) else {}
            calls = message.get("tool_calls")
            if calls is not None and not isinstance(calls, list):
                raise BadAnswer("the upstream LLM's answer has 'tool_calls' that is not a list")
            out += [(i, call) for call in calls or () if isinstance(call, dict)]
            if isinstance(message.get("function_call"), dict):  # the legacy single call
                out.append((i, message["function_call"]))
        return out

    def replace(self, answer: dict[str, Any], indices: Sequence[int], message: str) -> None:
        choices = answer["choices"]
        for i in indices:
            choices[i] = {**choices[i], "message": {"role": "assistant", "content": message},
                          "finish_reason": "content_filter"}

    def refusal(self, body: Mapping[str, Any], request_id: str, message: str) -> dict[str, Any]:
        return {"id": f"chatcmpl-rg-{request_id}", "object": "chat.completion", "created": int(time.time()),
                "model": str(body.get("model") or "railguard"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": message},
                             "finish_reason": "content_filter", "logprobs": None}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

    def piece(self, event: dict[str, Any]) -> Piece:
        texts, finished, calls = [], False, []
        for choice in event.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            content = delta.get("content")
            index = _index(choice.get("index", 0))
            texts.append((index, content if isinstance(content, str) else ""))
            finished |= bool(choice.get("finish_reason"))
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    function = call.get("function") if isinstance(call.get("function"), dict) else {}
                    calls.append(CallPart(index, _index(call.get("index", 0)), _text(call.get("id")),
                                          _text(function.get("name")), _text(function.get("arguments")) or ""))
            legacy = delta.get("function_call")
            if isinstance(legacy, dict):
                calls.append(CallPart(index, -1, None, _text(legacy.get("name")), _text(legacy.get("arguments")) or ""))
        meta = {k: event[k] for k in ("id", "created", "model", "system_fingerprint") if k in event}
        return Piece(texts, meta, finished, calls=calls)

    def cut(self, meta: Mapping[str, Any], indices: Sequence[int], rail: dict[str, Any], message: str, *,
            with_refusal: bool) -> list[bytes]:
        base = {"id": meta.get("id", f"chatcmpl-rg-{rail['request_id']}"), "object": "chat.completion.chunk",
                "created": meta.get("created", int(time.time())), "model": meta.get("model", "railguard")}
        out = []
        if with_refusal:  # nothing of the answer reached the client: the refusal stands in for it
            out.append(sse(json.dumps({**base, "choices": [
                {"index": i, "delta": {"role": "assistant", "content": message}, "finish_reason": None,
                 "logprobs": None} for i in indices]})))
        out.append(sse(json.dumps({**base, "choices": [
            {"index": i, "delta": {}, "finish_reason": "content_filter", "logprobs": None} for i in indices],
            "railguard": rail})))
        out.append(sse("[DONE]"))
        return out


class CompletionsApi(Api):
    endpoint, path, read = "completions", "completions", staticmethod(read_completion)

    def texts(self, answer: Any) -> dict[int, str]:
        return {i: c["text"] if isinstance(c.get("text"), str) else "" for i, c in enumerate(_choices(answer))}

    def replace(self, answer: dict[str, Any], indices: Sequence[int], message: str) -> None:
        choices = answer["choices"]
        for i in indices:
            choices[i] = {**choices[i], "text": message, "finish_reason": "content_filter", "logprobs": None}

    def refusal(self, body: Mapping[str, Any], request_id: str, message: str) -> dict[str, Any]:
        return {"id": f"cmpl-rg-{request_id}", "object": "text_completion", "created": int(time.time()),
                "model": str(body.get("model") or "railguard"),
                "choices": [{"index": 0, "text": message, "finish_reason": "content_filter", "logprobs": None}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

    def piece(self, event: dict[str, Any]) -> Piece:
        texts, finished = [], False
        for choice in event.get("choices") or ():
            if isinstance(choice, dict):
                text = choice.get("text")
                texts.append((_index(choice.get("index", 0)), text if isinstance(text, str) else ""))
                finished |= bool(choice.get("finish_reason"))
        return Piece(texts, {k: event[k] for k in ("id", "created", "model") if k in event}, finished)

    def cut(self, meta: Mapping[str, Any], indices: Sequence[int], rail: dict[str, Any], message: str, *,
            with_refusal: bool) -> list[bytes]:
        base = {"id": meta.get("id", f"cmpl-rg-{rail['request_id']}"), "object": "text_completion",
                "created": meta.get("created", int(time.time())), "model": meta.get("model", "railguard")}
        out = []
        if with_refusal:
            out.append(sse(json.dumps({**base, "choices": [
                {"index": i, "text": message, "finish_reason": None, "logprobs": None} for i in indices]})))
        out.append(sse(json.dumps({**base, "choices": [
            {"index": i, "text": "", "finish_reason": "content_filter", "logprobs": None} for i in indices],
            "railguard": rail})))
        out.append(sse("[DONE]"))
        return out


_RESPONSE_END = {"response.completed", "response.incomplete"}
# Responses output items that are tool calls, and the field that holds each one's arguments.
_CALL_ITEMS = {"function_call": "arguments", "custom_tool_call": "input"}
# Stream events that carry a tool call's arguments: delta events add to them, done events give all of them.
_CALL_DELTAS = {"response.function_call_arguments.delta": "delta", "response.custom_tool_call_input.delta": "delta"}
_CALL_DONE = {"response.function_call_arguments.done": "arguments", "response.custom_tool_call_input.done": "input"}


class ResponsesApi(Api):
    """``/v1/responses``: an output index is one item of ``output``; its text is its output_text parts."""

    endpoint, path, read = "responses", "responses", staticmethod(read_response)
    ends_with_done = False  # the stream ends with a response.completed (or .incomplete) event

    def texts(self, answer: Any) -> dict[int, str]:
        output = answer.get("output") if isinstance(answer, dict) else None
        if not isinstance(output, list) or not all(isinstance(item, dict) for item in output):
            raise BadAnswer("the upstream LLM's answer has no 'output' list")
        return {i: _part_texts(item.get("content")) for i, item in enumerate(output) if item.get("type") == "message"}

    def tool_calls(self, answer: Any) -> list[tuple[int, Mapping[str, Any]]]:
        self.texts(answer)  # the shape check
        return [(i, item) for i, item in enumerate(answer["output"]) if item.get("type") in _CALL_ITEMS]

    def replace(self, answer: dict[str, Any], indices: Sequence[int], message: str) -> None:
        output = answer["output"]
        for i in indices:
            if output[i].get("type") == "message":
                output[i] = {**output[i], "content": [_output_text(message)]}
        if any(output[i].get("type") in _CALL_ITEMS for i in indices):
            # The calls of one answer are one step: none of them runs when one is blocked; the refusal stands
            # where the first of them was.
            first = min(i for i, item in enumerate(output) if item.get("type") in _CALL_ITEMS)
            refusal = _message_item(str(answer.get("id") or "blocked"), message)
            answer["output"] = [refusal if i == first else item for i, item in enumerate(output)
                                if i == first or item.get("type") not in _CALL_ITEMS]
        answer["status"] = "incomplete"
        answer["incomplete_details"] = {"reason": "content_filter"}
        if isinstance(answer.get("output_text"), str):
            answer["output_text"] = "".join(self.texts(answer).values())

    def refusal(self, body: Mapping[str, Any], request_id: str, message: str) -> dict[str, Any]:
        return _response(f"resp_rg_{request_id}", str(body.get("model") or "railguard"), int(time.time()),
                         [_message_item(request_id, message)])

    def piece(self, event: dict[str, Any]) -> Piece:
        kind = event.get("type")
        meta: dict[str, Any] = {}
        if isinstance(event.get("response"), dict):
            meta = {k: event["response"][k] for k in ("id", "created_at", "model") if k in event["response"]}
        if kind == "response.output_text.delta":
            delta = event.get("delta")
            return Piece([(_index(event.get("output_index")), delta if isinstance(delta, str) else "")], meta)
        index = _index(event.get("output_index"))
        if kind in ("response.output_item.added", "response.output_item.done"):
            if kind == "response.output_item.added":
                meta["outputs"] = index + 1
            item = event.get("item") if isinstance(event.get("item"), dict) else {}
            if item.get("type") in _CALL_ITEMS:
                part = CallPart(index, index, _text(item.get("call_id")), _text(item.get("name")),
                                _text(item.get(_CALL_ITEMS[item["type"]])) or "", whole=True)
                return Piece(meta=meta, calls=[part])
        if kind in _CALL_DELTAS or kind in _CALL_DONE:
            text = _text(event.get(_CALL_DELTAS.get(kind) or _CALL_DONE[kind])) or ""
            return Piece(meta=meta, calls=[CallPart(index, index, arguments=text, whole=kind in _CALL_DONE)])
        if kind in ("error", "response.failed"):
            error = event.get("error") or (event.get("response") or {}).get("error") or event
            detail = error.get("message") if isinstance(error, dict) else None
            return Piece(meta=meta, error=str(detail or "the response failed"))
        return Piece(meta=meta, finished=kind in _RESPONSE_END)

    def event(self, payload: bytes, chunk: Any = None) -> bytes:
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        head = b"event: " + kind.encode() + b"\n" if isinstance(kind, str) and kind else b""
        return head + b"data: " + payload + b"\n\n"

    def cut(self, meta: Mapping[str, Any], indices: Sequence[int], rail: dict[str, Any], message: str, *,
            with_refusal: bool) -> list[bytes]:
        request_id = rail["request_id"]
        final = _response(meta.get("id", f"resp_rg_{request_id}"), meta.get("model", "railguard"),
                          meta.get("created_at", int(time.time())), [])
        events: list[dict[str, Any]] = []
        if not meta:  # blocked before the upstream was asked: the stream begins here
            events.append({"type": "response.created", "response": {**final, "status": "in_progress"}})
        if with_refusal:
            index = meta.get("outputs", 0)
            item = _message_item(request_id, message)
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            events += [{"type": "response.output_item.added", "output_index": index,
                        "item": {**item, "status": "in_progress", "content": []}},
                       {"type": "response.content_part.added", **where, "part": _output_text("")},
                       {"type": "response.output_text.delta", **where, "delta": message},
                       {"type": "response.output_text.done", **where, "text": message},
                       {"type": "response.content_part.done", **where, "part": _output_text(message)},
                       {"type": "response.output_item.done", "output_index": index, "item": item}]
            final["output"] = [item]
        events.append({"type": "response.incomplete", "response": {**final, "railguard": rail}})
        return [sse(json.dumps({**e, "sequence_number": n}), e["type"]) for n, e in enumerate(events)]


def _part_texts(content: Any) -> str:
    """The text of an answer's content parts (text and output_text); other parts carry no text to judge."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
                   and p.get("type") in ("text", "output_text"))


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def _message_item(request_id: str, message: str) -> dict[str, Any]:
    return {"type": "message", "id": f"msg_rg_{request_id}", "status": "completed", "role": "assistant",
            "content": [_output_text(message)]}


def _response(response_id: str, model: str, created_at: int, output: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": response_id, "object": "response", "created_at": created_at, "model": model,
            "status": "incomplete", "incomplete_details": {"reason": "content_filter"}, "error": None,
            "output": output, "instructions": None, "metadata": {}, "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "temperature": None, "top_p": None,
            "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0,
                      "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}}


CHAT, COMPLETIONS, RESPONSES = ChatApi(), CompletionsApi(), ResponsesApi()
#: Route path -> the API railed there.
RAILED: dict[str, Api] = {"/v1/chat/completions": CHAT, "/v1/completions": COMPLETIONS, "/v1/responses": RESPONSES}
