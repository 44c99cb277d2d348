"""One streamed answer on its way through the output rail, and the event plumbing around it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...rails import StreamWindow
from ...types import GuardInput, Verdict
from .apis import Api
from .upstream import UpstreamError, json_or_fault

DONE = b"[DONE]"


@dataclass(slots=True)
class StreamedAnswer(StreamWindow[bytes]):
    """One streamed answer on its way through the output rail: the shared window (:mod:`railguard.rails`) over
    the upstream's event payloads, plus what the API's events say about the answer."""

    calls: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)  # (output, call) -> id, name, arguments
    call_items: list[tuple[GuardInput, Verdict]] = field(default_factory=list)  # the judged tool calls
    finished: bool = False  # [DONE] or a finish_reason arrived
    meta: dict[str, Any] = field(default_factory=dict)  # id, created, model of the latest chunk (the API's)

    def read(self, chunk: Any, api: Api) -> tuple[dict[int, int], bool]:
        """One parsed stream chunk: its texts added to the window, its tool call fragments to :attr:`calls`;
        where each choice's text ends after it, and whether it carries part of a tool call."""
        if not isinstance(chunk, dict):
            raise UpstreamError(502, "upstream_bad_response", "the upstream LLM sent a stream chunk that is not an object")
        if isinstance(chunk.get("error"), Mapping):
            detail = chunk["error"].get("message")
            raise UpstreamError(502, "upstream_error", f"the upstream LLM reported an error mid-stream: {detail}")
        piece = api.piece(chunk)
        if piece.error is not None:
            raise UpstreamError(502, "upstream_error", f"the upstream LLM reported an error mid-stream: {piece.error}")
        self.meta.update(piece.meta)
        for part in piece.calls:
            call = self.calls.setdefault((part.output, part.key), {"id": None, "name": None, "arguments": ""})
            call["id"] = call["id"] or part.call_id
            call["name"] = call["name"] or part.name
            call["arguments"] = part.arguments if part.whole else call["arguments"] + part.arguments
        self.finished |= piece.finished
        return self.add(piece.texts), bool(piece.calls)

    def assembled(self) -> list[tuple[int, dict[str, Any]]]:
        """The streamed tool calls, whole, as chat ``tool_calls`` entries, each with its output index."""
        return [(output, {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}})
                for (output, _), c in sorted(self.calls.items())]


async def parsed_events(first: bytes, first_chunk: Any, payloads: AsyncIterator[bytes]
                  ) -> AsyncIterator[tuple[bytes, Any]]:
    """Each event's payload with its parsed chunk (None for [DONE]), the first already parsed; parsed once."""
    yield first, first_chunk
    async for payload in payloads:
        yield payload, None if payload == DONE else json_or_fault(payload, "a stream chunk")


async def replay(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
