"""LangChain and LangGraph: railguard's rails as Runnables (``pip install 'railguard[langchain]'``).

.. code-block:: python

    from railguard.integrations.langchain import Railguard

    rail = Railguard()                      # the default guard; Railguard(policy="strict"), Railguard(guard=...)
    chain = rail | llm | rail.output()      # the input rail, the model, the output rail
    guarded = rail.wrap(llm)                # or both rails around one Runnable (a model, a chain, a graph node)
    guarded.invoke("How do I bake bread?")

The **input rail** judges what the model is about to read (:class:`railguard.conversation.Conversation`): the user's
turns, and tool messages as context, where indirect prompt injections hide (system messages too with
``trust_system=False``). It takes what a chat model takes (a string, messages, a prompt value) and a prompt
template's variables (a dict; its ``messages`` list, as in a LangGraph state, is read as messages). The **output rail** judges the answer as the response to
the prompt (the wrapper knows the prompt; ``rail.output()`` in a pipe sees the answer alone), and each tool
call the model asks for with the agent guard's action risk.

A rail blocks exactly when the verdict is flagged (:func:`railguard.rails.blocks`). Then, with
``on_block="raise"`` (the default), :class:`RailguardBlocked` is raised carrying the verdict; with
``on_block="refuse"`` the caller gets the refusal message instead, as an ``AIMessage`` (or a string where the
Runnable makes strings) whose ``response_metadata`` holds ``finish_reason: "content_filter"`` and the verdict.
The input rail of a pipe (``rail | llm``) always raises: it cannot answer in the model's place.

``stream`` and ``astream`` check the answer with the proxy's windowed hold-back (:class:`railguard.rails.StreamWindow`):
no chunk is passed on before a check covering its text (and ``window.holdback_chars`` after it) passed; a failed
check stops the model's stream. ``invoke``, ``ainvoke``, ``batch`` and ``abatch`` work as on any Runnable.
Guard calls of the async methods run in LangChain's executor, off the event loop. No model logic lives here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from . import resolve_guard
from ..errors import InputError, RailguardError, require

require("langchain_core", "langchain")

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_messages  # noqa: E402
from langchain_core.prompt_values import PromptValue  # noqa: E402
from langchain_core.runnables import Runnable, RunnableConfig  # noqa: E402
from langchain_core.runnables.config import run_in_executor  # noqa: E402

from ..agent.actions import Action  # noqa: E402
from ..conversation import Conversation  # noqa: E402
from ..guard import Guard  # noqa: E402
from ..rails import (DEFAULT_WINDOW, REFUSAL_MESSAGE, StreamWindow, WindowSettings, blocks,  # noqa: E402
                     partial_threshold, response_harm_blocks, why)
from ..types import GuardInput, Verdict  # noqa: E402

OnBlock = Literal["raise", "refuse"]
_ON_BLOCK = ("raise", "refuse")
# Message types whose text the model reads but the user did not type: where indirect injections hide. System
# (and developer) messages are the app's own words unless the rail is told not to trust them.
_TOOL_TYPES = frozenset({"tool", "function"})
_SYSTEM_TYPES = frozenset({"system", "developer"})


class RailguardBlocked(RailguardError):
    """A rail blocked. ``direction`` is ``"input"`` or ``"output"``, ``verdict`` the verdict that blocked and
    ``verdicts`` all of that rail's verdicts."""

    def __init__(self, direction: str, verdict: Verdict, verdicts: Sequence[Verdict] = (), *,
                 partial: float | None = None) -> None:
        what = "request" if direction == "input" else "answer"
        super().__init__(f"railguard blocked the {what}: {why(verdict, partial)}")
        self.direction = direction
        self.verdict = verdict
        self.verdicts = tuple(verdicts) or (verdict,)


# --- what a rail reads ---------------------------------------------------------------------------------

def _text(message: BaseMessage, where: str) -> str:
    """A message's text; a content block that is not text is refused (a rail never passes what it cannot read)."""
    content = message.content
    if isinstance(content, str):
        return content
    texts = []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, Mapping) and block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        else:
            kind = block.get("type") if isinstance(block, Mapping) else type(block).__name__
            raise InputError(f"{where} has a content block of type {kind!r}, which the LangChain rail cannot "
                             "judge; it reads text blocks (send images and audio through railguard's server)")
    return "\n".join(texts)


def read_conversation(value: Any, *, trust_system: bool = True) -> Conversation:
    """What the input rail judges of a Runnable's input: a string, messages, a prompt value, or a dict of prompt
    variables (string values are user turns; a ``messages`` list is read as messages). Tool messages are context;
    system messages too unless ``trust_system`` (they are the app's own instructions)."""
    document_types = _TOOL_TYPES if trust_system else _TOOL_TYPES | _SYSTEM_TYPES
    turns: list[str] = []
    documents: list[str] = []
    messages: list[BaseMessage] = []
    if isinstance(value, str):
        turns.append(value)
    elif isinstance(value, PromptValue):
        messages = value.to_messages()
    elif isinstance(value, BaseMessage):
        messages = [value]
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, str):
                turns.append(item)
            elif key == "messages" and isinstance(item, Sequence):
                messages = _messages(item)
    elif isinstance(value, Sequence):
        messages = _messages(value)
    else:
        raise InputError(f"the railguard rail reads a string, messages, a prompt value or a dict of prompt "
                         f"variables, got {type(value).__name__}")
    for i, m in enumerate(messages):
        kind = m.type if m.type != "chat" else {"user": "human", "assistant": "ai"}.get(getattr(m, "role", ""), "system")
        if kind == "human":
            turns.append(_text(m, f"message {i} ({m.type})"))
        elif kind in document_types:
            documents.append(_text(m, f"message {i} ({m.type})"))
        # the model's own earlier turns were judged by the output rail when they were new
    return Conversation(turns=tuple(turns), documents=tuple(d for d in documents if d.strip()))


def _messages(value: Sequence[Any]) -> list[BaseMessage]:
    try:
        return convert_to_messages(value)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise InputError(f"the railguard rail cannot read these messages: {exc}") from None


def _answer(value: Any) -> tuple[str, list[Mapping[str, Any]]]:
    """An answer's text and the tool calls it asks for."""
    if isinstance(value, str):
        return value, []
    if isinstance(value, BaseMessage):
        return _text(value, f"the answer ({value.type})"), list(getattr(value, "tool_calls", None) or [])
    raise InputError(f"the railguard output rail reads a message or a string, got {type(value).__name__}")


def _tool_call_inputs(calls: Sequence[Mapping[str, Any]], task: str) -> list[GuardInput]:
    return [GuardInput(action=Action(kind="tool_call", tool=str(c.get("name") or "?"), arguments=c.get("args") or {},
                                     task=task or None)) for c in calls]


# --- the rails ------------------------------------------------------------------------------------------

class Railguard(Runnable[Any, Any]):
    """The input rail as a Runnable (its input passes through unchanged unless it blocks), and the maker of the
    output rail (:meth:`output`) and of the wrapper with both (:meth:`wrap`).

    ``guard`` is a Guard or a registry name (``embedded``, ``cascade``, ...) and ``policy`` a preset, a YAML file
    or a mapping (:mod:`railguard.policy`); ``on_block`` is ``raise`` or ``refuse``; ``window`` says how
    streamed answers are checked (:class:`railguard.rails.WindowSettings`); ``trust_system=False`` also judges
    system messages as context (for apps whose system prompt comes from somewhere else)."""

    def __init__(self, guard: Guard | str = "default", *, policy: Any = None, on_block: OnBlock = "raise",
                 refusal_message: str = REFUSAL_MESSAGE, window: WindowSettings = DEFAULT_WINDOW,
                 trust_system: bool = True) -> None:
        if on_block not in _ON_BLOCK:
            raise InputError(f"on_block must be one of {', '.join(_ON_BLOCK)}, got {on_block!r}")
        if not isinstance(refusal_message, str) or not refusal_message.strip():
            raise InputError("refusal_message must be a non-empty string")
        guard = resolve_guard(guard, policy)
        self.guard = guard
        self.on_block = on_block
        self.refusal_message = refusal_message
        self.window = window
        self.trust_system = trust_system
        self.harm_blocks = response_harm_blocks(guard)

    # -- the input rail, as a pipe step ------------------------------------------------------------------
    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(self._pass_input, input, config, run_type="parser")

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self._acall_with_config(self._apass_input, input, config, run_type="parser")

    def _pass_input(self, value: Any, run_manager: Any = None, config: RunnableConfig | None = None) -> Any:
        conversation = self.read(value)
        self._input_blocked(self.guard.check(conversation.guard_inputs()), raise_always=True)
        return value

    async def _apass_input(self, value: Any, run_manager: Any = None, config: RunnableConfig | None = None) -> Any:
        conversation = self.read(value)
        verdicts = await run_in_executor(config, self.guard.check, conversation.guard_inputs())
        self._input_blocked(verdicts, raise_always=True)
        return value

    def read(self, value: Any) -> Conversation:
        return read_conversation(value, trust_system=self.trust_system)

    # -- the other Runnables -----------------------------------------------------------------------------
    def output(self) -> RailguardOutput:
        """The output rail as a pipe step: ``rail | llm | rail.output()``."""
        return RailguardOutput(self)

    def wrap(self, runnable: Runnable[Any, Any]) -> GuardedRunnable:
        """Both rails around ``runnable``; its answer is judged as the response to its input."""
        if not isinstance(runnable, Runnable):
            raise InputError(f"wrap() takes a LangChain Runnable (a chat model, a chain), got {type(runnable).__name__}")
        return GuardedRunnable(self, runnable)

    # -- decisions shared by the Runnables ----------------------------------------------------------------
    def _input_blocked(self, verdicts: Sequence[Verdict], *, raise_always: bool = False) -> Verdict | None:
        """The verdict that blocks the input (raised unless the rail refuses), else None."""
        blocked = next((v for v in verdicts if blocks(v)), None)
        if blocked is not None and (raise_always or self.on_block == "raise"):
            raise RailguardBlocked("input", blocked, verdicts)
        return blocked

    def _output_inputs(self, conversation: Conversation, answer: Any) -> list[GuardInput]:
        text, calls = _answer(answer)
        return [conversation.output_input(text), *_tool_call_inputs(calls, conversation.prompt)]

    def _output_blocked(self, verdicts: Sequence[Verdict]) -> Verdict | None:
        blocked = next((v for v in verdicts if blocks(v)), None)
        if blocked is not None and self.on_block == "raise":
            raise RailguardBlocked("output", blocked, verdicts)
        return blocked

    def refusal(self, direction: str, verdict: Verdict, *, like: Any, prefix: str = "") -> Any:
        """The refusal in the shape of ``like`` (a string, a message chunk or a message)."""
        text = prefix + self.refusal_message
        if isinstance(like, str):
            return text
        metadata = {"finish_reason": "content_filter",
                    "railguard": {"blocked": direction, "verdict": verdict.to_dict()}}
        cls = AIMessageChunk if isinstance(like, AIMessageChunk) else AIMessage
        return cls(content=text, response_metadata=metadata)

    def _stream(self, conversation: Conversation, input_verdicts: Sequence[Verdict]) -> _OutputStream:
        return _OutputStream(self, conversation, input_verdicts)


class RailguardOutput(Runnable[Any, Any]):
    """The output rail as a pipe step: the answer (a message or a string) passes through, or is blocked. In a
    pipe it does not know the prompt, so it judges the answer alone; :meth:`Railguard.wrap` judges it with it."""

    def __init__(self, rail: Railguard) -> None:
        self.rail = rail

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(self._check, input, config, run_type="parser")

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self._acall_with_config(self._acheck, input, config, run_type="parser")

    def _check(self, answer: Any, run_manager: Any = None, config: RunnableConfig | None = None) -> Any:
        verdicts = self.rail.guard.check(self.rail._output_inputs(Conversation(), answer))
        blocked = self.rail._output_blocked(verdicts)
        return answer if blocked is None else self.rail.refusal("output", blocked, like=answer)

    async def _acheck(self, answer: Any, run_manager: Any = None, config: RunnableConfig | None = None) -> Any:
        verdicts = await run_in_executor(config, self.rail.guard.check, self.rail._output_inputs(Conversation(), answer))
        blocked = self.rail._output_blocked(verdicts)
        return answer if blocked is None else self.rail.refusal("output", blocked, like=answer)

    def transform(self, input: Iterator[Any], config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        yield from self._transform_stream_with_config(input, self._transform, config, run_type="parser")

    async def atransform(self, input: AsyncIterator[Any], config: RunnableConfig | None = None,
                         **kwargs: Any) -> AsyncIterator[Any]:
        async for chunk in self._atransform_stream_with_config(input, self._atransform, config, run_type="parser"):
            yield chunk

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        yield from self.transform(iter([input]), config)

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        async def one() -> AsyncIterator[Any]:
            yield input

        async for chunk in self.atransform(one(), config):
            yield chunk

    def _transform(self, chunks: Iterator[Any], run_manager: Any = None,
                   config: RunnableConfig | None = None) -> Iterator[Any]:
        yield from self.rail._stream(Conversation(), ()).run(chunks, self.rail.guard.check)

    async def _atransform(self, chunks: AsyncIterator[Any], run_manager: Any = None,
                          config: RunnableConfig | None = None) -> AsyncIterator[Any]:
        async def check(inputs: list[GuardInput]) -> list[Verdict]:
            return await run_in_executor(config, self.rail.guard.check, inputs)

        async for chunk in self.rail._stream(Conversation(), ()).arun(chunks, check):
            yield chunk


class GuardedRunnable(Runnable[Any, Any]):
    """``runnable`` between the input and the output rail (:meth:`Railguard.wrap`): its input is judged first
    (blocked: the runnable is not called), its answer judged as the response to that input."""

    def __init__(self, rail: Railguard, runnable: Runnable[Any, Any]) -> None:
        self.rail = rail
        self.runnable = runnable

    @property
    def InputType(self) -> Any:  # noqa: N802 - LangChain's name
        return self.runnable.InputType

    @property
    def OutputType(self) -> Any:  # noqa: N802 - LangChain's name
        return self.runnable.OutputType

    def _like(self) -> Any:
        """A value of the runnable's output kind, for the shape of a refusal given before it answered."""
        try:
            return "" if self.runnable.OutputType is str else AIMessage(content="")
        except TypeError:  # the output type cannot be inferred
            return AIMessage(content="")

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        rail = self.rail
        conversation = rail.read(input)
        blocked = rail._input_blocked(rail.guard.check(conversation.guard_inputs()))
        if blocked is not None:
            return rail.refusal("input", blocked, like=self._like())
        answer = self.runnable.invoke(input, config, **kwargs)
        blocked = rail._output_blocked(rail.guard.check(rail._output_inputs(conversation, answer)))
        return answer if blocked is None else rail.refusal("output", blocked, like=answer)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        rail = self.rail
        conversation = rail.read(input)
        blocked = rail._input_blocked(await run_in_executor(config, rail.guard.check, conversation.guard_inputs()))
        if blocked is not None:
            return rail.refusal("input", blocked, like=self._like())
        answer = await self.runnable.ainvoke(input, config, **kwargs)
        verdicts = await run_in_executor(config, rail.guard.check, rail._output_inputs(conversation, answer))
        blocked = rail._output_blocked(verdicts)
        return answer if blocked is None else rail.refusal("output", blocked, like=answer)

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        rail = self.rail
        conversation = rail.read(input)
        input_verdicts = rail.guard.check(conversation.guard_inputs())
        blocked = rail._input_blocked(input_verdicts)
        if blocked is not None:
            yield rail.refusal("input", blocked, like=_chunk_like(self._like()))
            return
        chunks = self.runnable.stream(input, config, **kwargs)
        yield from rail._stream(conversation, input_verdicts).run(chunks, rail.guard.check)

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        rail = self.rail
        conversation = rail.read(input)
        input_verdicts = await run_in_executor(config, rail.guard.check, conversation.guard_inputs())
        blocked = rail._input_blocked(input_verdicts)
        if blocked is not None:
            yield rail.refusal("input", blocked, like=_chunk_like(self._like()))
            return

        async def check(inputs: list[GuardInput]) -> list[Verdict]:
            return await run_in_executor(config, rail.guard.check, inputs)

        chunks = self.runnable.astream(input, config, **kwargs)
        async for chunk in rail._stream(conversation, input_verdicts).arun(chunks, check):
            yield chunk


def _chunk_like(like: Any) -> Any:
    return like if isinstance(like, str) else AIMessageChunk(content="")


class _OutputStream:
    """One streamed answer through the output rail: the shared window over the answer's chunks. :meth:`run` and
    :meth:`arun` are the same loop, the one calling the guard in place, the other awaiting it."""

    def __init__(self, rail: Railguard, conversation: Conversation, input_verdicts: Sequence[Verdict]) -> None:
        self.rail = rail
        self.conversation = conversation
        self.state: StreamWindow[Any] = StreamWindow()
        self.threshold = partial_threshold(rail.window.partial_threshold, input_verdicts, harm_blocks=rail.harm_blocks)
        self.whole: Any = None  # the chunks added up: the answer so far, with its tool calls
        self.blocked: Verdict | None = None
        self.verdicts: list[Verdict] = []

    def feed(self, chunk: Any) -> dict[int, str] | None:
        """Hold one chunk; the text to check now, if a check is due."""
        text, _ = _answer(chunk)
        self.whole = chunk if self.whole is None else self.whole + chunk
        ends = self.state.add([(0, text)])
        # a chunk with part of a tool call waits for the check of the whole answer (its tool calls)
        self.state.hold(chunk, ends, call=bool(getattr(chunk, "tool_call_chunks", None)))
        return self.state.pending() if self.state.due(self.rail.window) else None

    def inputs(self, snapshot: Mapping[int, str]) -> list[GuardInput]:
        return [self.conversation.output_input(text) for text in snapshot.values()]

    def checked(self, snapshot: Mapping[int, str], verdicts: Sequence[Verdict], *, whole: bool = False) -> list[Any]:
        """The chunks a check lets go (none once it failed)."""
        self.verdicts = list(verdicts)
        if self.state.record(snapshot, verdicts, whole=whole, threshold=self.threshold):
            self.blocked = self.state.verdicts[0]
            return []
        return self.state.releasable(self.rail.window.holdback_chars)

    def last_check(self) -> tuple[dict[int, str], list[GuardInput]]:
        """What the check of the whole answer judges: the text no check covered yet, and every tool call."""
        snapshot = self.state.pending()
        _, calls = _answer(self.whole) if self.whole is not None else ("", [])
        return snapshot, self.inputs(snapshot) + _tool_call_inputs(calls, self.conversation.prompt)

    def ended(self, snapshot: Mapping[int, str], verdicts: Sequence[Verdict]) -> list[Any]:
        """The rest of the answer once the whole of it passed; else the refusal (or the exception)."""
        text_verdicts, call_verdicts = verdicts[:len(snapshot)], verdicts[len(snapshot):]
        if snapshot:
            self.checked(snapshot, text_verdicts, whole=True)
        if self.blocked is None:
            self.blocked = next((v for v in call_verdicts if blocks(v)), None)
        if self.blocked is not None:
            return self.cut()
        return self.state.rest()

    def cut(self) -> list[Any]:
        """A blocked answer ends here: the exception, or the refusal (after what was already passed on)."""
        if self.rail.on_block == "raise":  # part of an answer may block under the partial threshold, unflagged
            raise RailguardBlocked("output", self.blocked, self.verdicts if self.blocked in self.verdicts else (),
                                   partial=self.threshold)
        like = _chunk_like(self.whole if self.whole is not None else AIMessageChunk(content=""))
        prefix = "\n\n" if self.state.sent_content else ""
        return [self.rail.refusal("output", self.blocked, like=like, prefix=prefix)]

    def run(self, chunks: Iterator[Any], check: Callable[[list[GuardInput]], list[Verdict]]) -> Iterator[Any]:
        try:
            for chunk in chunks:
                snapshot = self.feed(chunk)
                if snapshot is not None:
                    yield from self.checked(snapshot, check(self.inputs(snapshot)))
                    if self.blocked is not None:
                        break
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # the model's stream stops generating
        if self.blocked is not None:
            yield from self.cut()
            return
        snapshot, inputs = self.last_check()
        yield from self.ended(snapshot, check(inputs) if inputs else [])

    async def arun(self, chunks: AsyncIterator[Any], check: Callable[[list[GuardInput]], Any]) -> AsyncIterator[Any]:
        try:
            async for chunk in chunks:
                snapshot = self.feed(chunk)
                if snapshot is not None:
                    for released in self.checked(snapshot, await check(self.inputs(snapshot))):
                        yield released
                    if self.blocked is not None:
                        break
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()
        if self.blocked is not None:
            for chunk in self.cut():
                yield chunk
            return
        snapshot, inputs = self.last_check()
        for chunk in self.ended(snapshot, await check(inputs) if inputs else []):
            yield chunk
