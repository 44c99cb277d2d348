"""LiteLLM: railguard as a LiteLLM guardrail, for the LiteLLM proxy and the Python SDK (``pip install
'railguard[litellm]'``).

In the proxy's ``config.yaml``:

.. code-block:: yaml

    guardrails:
      - guardrail_name: railguard-input
        litellm_params:
          guardrail: railguard.integrations.litellm.RailguardGuardrail
          mode: pre_call            # or during_call (judged while the model already runs)
          default_on: true
          policy: strict            # optional: a preset, a YAML file; guard: embedded (the default), cascade, ...
      - guardrail_name: railguard-output
        litellm_params:
          guardrail: railguard.integrations.litellm.RailguardGuardrail
          mode: post_call           # whole answers, and streamed ones through the windowed hold-back
          default_on: true

In the SDK, :func:`guarded_completion` / :func:`aguarded_completion` put both rails around ``litellm.completion`` /
``litellm.acompletion`` (streamed or not); or register the guardrail as a callback, as for any LiteLLM guardrail
(``litellm.callbacks = [RailguardGuardrail(event_hook="pre_call")]`` and ``guardrails=["railguard"]`` on
``acompletion``).

The **input rail** (``pre_call``, ``during_call``) reads the request as railguard's proxy does
(:func:`railguard.server.proxy.conversation.read_chat`; responses and text-completion requests too): the user's turns, and
system and tool messages as context, where indirect prompt injections hide. The **output rail** (``post_call``)
judges each answer text as the response to the recent turns, and each tool call the model proposes as an action
(the agent guard's action risk). A streamed answer passes through the proxy's window (:class:`railguard.rails.
StreamWindow`): no chunk leaves before a check covering it (and ``holdback_chars`` after it) passed; a failed
check stops the model's stream.

A rail blocks exactly when the verdict is flagged (:func:`railguard.rails.blocks`). Then it raises
:class:`RailguardBlocked`: a FastAPI ``HTTPException`` with status 400, as LiteLLM's own guardrails raise (the proxy
answers it as a 400 error, mid-stream as an error event; LiteLLM counts it as a guardrail intervention), whose
``detail`` holds the message and the verdict (``detail["railguard"]``) and which carries ``verdict`` and
``direction``. Guard calls run in a worker thread, off the event loop. No model logic lives here.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from . import resolve_guard
from ..errors import InputError, RailguardError, require

require("litellm", "litellm")
require("fastapi", "litellm")

import anyio  # noqa: E402 - a dependency of litellm
import litellm  # noqa: E402
from fastapi import HTTPException  # noqa: E402
from litellm.integrations.custom_guardrail import CustomGuardrail  # noqa: E402
from litellm.types.guardrails import GuardrailEventHooks  # noqa: E402

from ..agent.actions import tool_call_label  # noqa: E402
from ..conversation import Conversation  # noqa: E402
from ..guard import Guard  # noqa: E402
from ..rails import blocks, partial_threshold, response_harm_blocks, why  # noqa: E402
from ..server.errors import APIError  # noqa: E402
from ..server.proxy import StreamedAnswer, UpstreamError  # noqa: E402
from ..server.proxy.apis import CHAT, COMPLETIONS, RESPONSES, Api, BadAnswer  # noqa: E402
from ..server.proxy.conversation import read_chat, read_completion, read_response  # noqa: E402
from ..server.settings import ServerSettings  # noqa: E402
from ..types import GuardInput, Verdict  # noqa: E402

log = logging.getLogger(__name__)

SUPPORTED_HOOKS = [GuardrailEventHooks.pre_call, GuardrailEventHooks.during_call, GuardrailEventHooks.post_call]
# LiteLLM's call types of the generation requests the rails read, by kind
_CALL_KINDS = {"completion": "chat", "acompletion": "chat", "responses": "responses", "aresponses": "responses",
               "text_completion": "completion", "atext_completion": "completion"}
_READERS: dict[str, Callable[[Any, ServerSettings], Conversation]] = {
    "chat": read_chat, "responses": read_response, "completion": read_completion}
_APIS: dict[str, Api] = {"chat": CHAT, "responses": RESPONSES, "completion": COMPLETIONS}
# The input verdicts of requests whose streamed answer has not arrived yet (their partial threshold), by call id
_REMEMBERED = 1024


class RailguardBlocked(HTTPException, RailguardError):
    """A rail blocked: HTTP 400 with ``detail = {"error": message, "railguard": {"blocked": direction, "verdict":
    ...}}``. ``direction`` is ``"input"`` or ``"output"``, ``verdict`` the verdict that blocked, ``verdicts`` all of
    that rail's verdicts."""

    def __init__(self, direction: str, verdict: Verdict, verdicts: Sequence[Verdict] = (), *,
                 partial: float | None = None, guardrail_name: str | None = None) -> None:
        what = "request" if direction == "input" else "answer"
        self.message = f"railguard blocked the {what}: {why(verdict, partial)}"
        rail = {"blocked": direction, "verdict": verdict.to_dict()}
        detail = {"error": self.message, "railguard": rail}
        if guardrail_name:
            detail["guardrail_name"] = guardrail_name
        super().__init__(status_code=400, detail=detail)
        self.direction = direction
        self.verdict = verdict
        self.verdicts = tuple(verdicts) or (verdict,)

    def __str__(self) -> str:
        return self.message


def _unreadable(exc: APIError | BadAnswer | UpstreamError) -> HTTPException:
    """What the caller gets for a request (400) or an answer (502) the rails cannot read: they never pass it."""
    if isinstance(exc, APIError):
        return HTTPException(status_code=exc.status, detail={"error": f"railguard cannot judge this request: "
                                                                       f"{exc.message}"})
    message = exc.message if isinstance(exc, UpstreamError) else str(exc)
    return HTTPException(status_code=502, detail={"error": f"railguard cannot judge the answer: {message}"})


def _plain(value: Any) -> Any:
    """A LiteLLM response or chunk (a pydantic model) as the OpenAI-shaped dict the proxy's tables read."""
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else value


def request_kind(call_type: Any = None, data: Mapping[str, Any] | None = None) -> str | None:
    """``chat``, ``responses`` or ``completion``: the kind of generation request of a LiteLLM call type (or, without
    one, of a request's fields); None for the calls that generate no text."""
    if call_type is not None:
        return _CALL_KINDS.get(str(getattr(call_type, "value", call_type)))
    data = data or {}
    return "chat" if "messages" in data else "responses" if "input" in data else "completion" if "prompt" in data \
        else None


def _answer_kind(answer: Mapping[str, Any]) -> str | None:
    kind = answer.get("object")
    return {"chat.completion": "chat", "response": "responses", "text_completion": "completion"}.get(str(kind))


class RailguardGuardrail(CustomGuardrail):
    """railguard's rails as a LiteLLM guardrail (``mode``: ``pre_call``, ``during_call`` or ``post_call``, or a
    list of them).

    ``guard`` is a Guard or a registry name (``embedded``, ``cascade``, ...) and ``policy`` a preset, a YAML file or
    a mapping (:mod:`railguard.policy`), as in a proxy config's ``litellm_params``; ``settings`` are the limits,
    stream window and refusal message of railguard's server (:class:`railguard.server.settings.ServerSettings`; by
    default from the ``RAILGUARD_*`` environment). Other keyword arguments are LiteLLM's (``guardrail_name``,
    ``event_hook``, ``default_on``, ...)."""

    def __init__(self, guard: Guard | str = "default", policy: Any = None, *, settings: ServerSettings | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("guardrail_name", "railguard")
        kwargs.setdefault("supported_event_hooks", SUPPORTED_HOOKS)
        super().__init__(**kwargs)
        guard = resolve_guard(guard, policy)
        self.guard = guard
        self.settings = settings if settings is not None else ServerSettings.load()
        self.window = self.settings.window
        self.harm_blocks = response_harm_blocks(guard)
        self._input_verdicts: OrderedDict[str, tuple[Verdict, ...]] = OrderedDict()

    # -- what the rails read ------------------------------------------------------------------------------
    def read(self, data: Mapping[str, Any], kind: str | None) -> Conversation | None:
        """The conversation of a request of ``kind`` (``chat``, ``responses`` or ``completion``; see
        :func:`request_kind`); None for other requests (embeddings, images, ...), which the rails do not judge."""
        reader = _READERS.get(kind or "")
        if reader is None:
            return None
        try:
            return reader(data, self.settings)
        except APIError as exc:
            raise _unreadable(exc) from None

    def output_inputs(self, conversation: Conversation, texts: Sequence[str],
                      calls: Sequence[Mapping[str, Any]]) -> tuple[list[GuardInput], dict[int, Verdict]]:
        """What the output rail judges of an answer: its texts, then its tool calls as actions; and the verdicts of
        calls that cannot be read as actions (blocked without asking the guard), by position."""
        inputs = [conversation.output_input(t) for t in texts]
        unreadable: dict[int, Verdict] = {}
        for call in calls:
            try:
                inputs.append(conversation.tool_call_input(call))
            except InputError as exc:
                label = tool_call_label(call)
                unreadable[len(inputs)] = Verdict.failed(f"the tool call the model proposed cannot be judged: {exc}; "
                                                         "blocked", tier="litellm", id=label)
                inputs.append(GuardInput(id=label))
        return inputs, unreadable

    # -- the decisions ------------------------------------------------------------------------------------
    def judge_input(self, conversation: Conversation) -> list[Verdict]:
        """The input rail (in place): its verdicts; raises :class:`RailguardBlocked` when one blocks."""
        verdicts = self.guard.check(conversation.guard_inputs())
        self._raise_if_blocked("input", verdicts)
        return verdicts

    def judge_output(self, conversation: Conversation, answer: Any) -> list[Verdict]:
        """The output rail on a whole answer (a LiteLLM response or its dict), in place."""
        inputs, unreadable = self._answer_inputs(conversation, answer)
        verdicts = self._judged(inputs, unreadable, self.guard.check([x for i, x in enumerate(inputs)
                                                                       if i not in unreadable]))
        self._raise_if_blocked("output", verdicts)
        return verdicts

    async def ajudge_input(self, conversation: Conversation) -> list[Verdict]:
        return await anyio.to_thread.run_sync(self.judge_input, conversation)

    async def ajudge_output(self, conversation: Conversation, answer: Any) -> list[Verdict]:
        return await anyio.to_thread.run_sync(self.judge_output, conversation, answer)

    def _answer_inputs(self, conversation: Conversation, answer: Any) -> tuple[list[GuardInput], dict[int, Verdict]]:
        plain = _plain(answer)
        api = _APIS[_answer_kind(plain) or "chat"] if isinstance(plain, Mapping) else CHAT
        try:
            texts, calls = api.texts(plain), [call for _, call in api.tool_calls(plain)]
        except BadAnswer as exc:
            raise _unreadable(exc) from None
        return self.output_inputs(conversation, list(texts.values()), calls)

    @staticmethod
    def _judged(inputs: Sequence[GuardInput], unreadable: Mapping[int, Verdict], asked: Sequence[Verdict]
                ) -> list[Verdict]:
        answers = iter(asked)
        return [unreadable[i] if i in unreadable else next(answers) for i in range(len(inputs))]

    def _raise_if_blocked(self, direction: str, verdicts: Sequence[Verdict]) -> None:
        blocked = next((v for v in verdicts if blocks(v)), None)
        if blocked is not None:
            raise self.blocked(direction, blocked, verdicts)

    def blocked(self, direction: str, verdict: Verdict, verdicts: Sequence[Verdict] = (), *,
                partial: float | None = None) -> RailguardBlocked:
        log.info("railguard blocked the %s (%s)", "request" if direction == "input" else "answer", why(verdict, partial))
        return RailguardBlocked(direction, verdict, verdicts, partial=partial, guardrail_name=self.guardrail_name)

    def _remember(self, data: Mapping[str, Any], verdicts: Sequence[Verdict]) -> None:
        call_id = data.get("litellm_call_id")
        if isinstance(call_id, str) and data.get("stream"):  # for the partial threshold of the streamed answer
            self._input_verdicts[call_id] = tuple(verdicts)
            while len(self._input_verdicts) > _REMEMBERED:
                self._input_verdicts.popitem(last=False)

    # -- LiteLLM's hooks ----------------------------------------------------------------------------------
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        """``pre_call``: the input rail before the model is called."""
        conversation = self.read(data, request_kind(call_type))
        if conversation is not None:
            self._remember(data, await self.ajudge_input(conversation))
        return data

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: Any) -> None:
        """``during_call``: the input rail while the model already runs (its answer is dropped if this blocks)."""
        conversation = self.read(data, request_kind(call_type))
        if conversation is not None:
            self._remember(data, await self.ajudge_input(conversation))

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        """``post_call``: the output rail on a whole answer."""
        plain = _plain(response)
        kind = _answer_kind(plain) if isinstance(plain, Mapping) else None
        conversation = self.read(data, kind) if kind is not None else None
        if conversation is not None:
            self._input_verdicts.pop(str(data.get("litellm_call_id")), None)
            await self.ajudge_output(conversation, plain)
        return response

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict: Any, response: Any,
                                                      request_data: dict) -> AsyncIterator[Any]:
        """``post_call`` on a streamed answer: its chunks through the window."""
        kind = request_kind(data=request_data)
        conversation = self.read(request_data, kind) if kind in ("chat", "responses") else None
        if conversation is None:
            async for chunk in response:
                yield chunk
            return
        input_verdicts = self._input_verdicts.pop(str(request_data.get("litellm_call_id")), None)
        if input_verdicts is None:  # no input rail ran on this request: its verdicts set the partial threshold
            input_verdicts = tuple(await anyio.to_thread.run_sync(self.guard.check, conversation.guard_inputs()))
        stream = AnswerStream(self, conversation, input_verdicts, api=_APIS[kind])

        async def check(inputs: list[GuardInput]) -> list[Verdict]:
            return await anyio.to_thread.run_sync(self.guard.check, inputs)

        async for chunk in stream.arun(response, check):
            yield chunk


class AnswerStream:
    """One streamed answer through the output rail: the proxy's window over LiteLLM's chunks (texts per choice,
    tool call fragments assembled). :meth:`run` and :meth:`arun` are the same loop, the one calling the guard in
    place, the other awaiting it. A failed check raises :class:`RailguardBlocked` and closes the model's stream."""

    def __init__(self, rail: RailguardGuardrail, conversation: Conversation, input_verdicts: Sequence[Verdict], *,
                 api: Api = CHAT) -> None:
        self.rail = rail
        self.conversation = conversation
        self.api = api
        self.state = StreamedAnswer()
        self.threshold = partial_threshold(rail.window.partial_threshold, input_verdicts, harm_blocks=rail.harm_blocks)
        self.unreadable: dict[int, Verdict] = {}

    def feed(self, chunk: Any) -> dict[int, str] | None:
        """Hold one chunk; the text to check now, if a check is due."""
        event = _plain(chunk)
        try:
            ends, holds_call = self.state.read(event, self.api)
        except UpstreamError as exc:
            raise _unreadable(exc) from None
        self.state.hold(chunk, ends, call=holds_call)
        return self.state.pending() if self.state.due(self.rail.window) else None

    def inputs(self, snapshot: Mapping[int, str]) -> list[GuardInput]:
        return [self.conversation.output_input(text) for text in snapshot.values()]

    def checked(self, snapshot: Mapping[int, str], verdicts: Sequence[Verdict]) -> list[Any]:
        """The chunks a check of part of the answer lets go; raises when it failed."""
        failed = self.state.record(snapshot, verdicts, whole=False, threshold=self.threshold)
        if failed:  # part of an answer may block under the partial threshold, unflagged
            raise self.rail.blocked("output", self.state.verdicts[failed[0]], verdicts, partial=self.threshold)
        return self.state.releasable(self.rail.window.holdback_chars)

    def last_check(self) -> tuple[dict[int, str], list[GuardInput]]:
        """What the check of the whole answer judges: the text no check covered yet, and every tool call."""
        snapshot = self.state.pending()
        inputs, unreadable = self.rail.output_inputs(self.conversation, list(snapshot.values()),
                                                     [call for _, call in self.state.assembled()])
        self.unreadable = unreadable
        return snapshot, inputs

    def asked(self, inputs: Sequence[GuardInput]) -> list[GuardInput]:
        return [x for i, x in enumerate(inputs) if i not in self.unreadable]

    def ended(self, snapshot: Mapping[int, str], inputs: Sequence[GuardInput], asked: Sequence[Verdict]) -> list[Any]:
        """The rest of the answer once the whole of it passed; raises when it did not."""
        verdicts = self.rail._judged(inputs, self.unreadable, asked)
        text_verdicts = verdicts[:len(snapshot)]
        if snapshot and self.state.record(snapshot, text_verdicts, whole=True, threshold=self.threshold):
            self.rail._raise_if_blocked("output", text_verdicts)
        self.rail._raise_if_blocked("output", verdicts)
        return self.state.rest()

    def run(self, chunks: Iterator[Any], check: Callable[[list[GuardInput]], list[Verdict]]) -> Iterator[Any]:
        try:
            for chunk in chunks:
                snapshot = self.feed(chunk)
                if snapshot is not None:
                    yield from self.checked(snapshot, check(self.inputs(snapshot)))
            snapshot, inputs = self.last_check()
            asked = self.asked(inputs)
            yield from self.ended(snapshot, inputs, check(asked) if asked else [])
        finally:
            close = getattr(chunks, "close", None)
            if callable(close):
                close()  # the model's stream stops generating

    async def arun(self, chunks: Any, check: Callable[[list[GuardInput]], Any]) -> AsyncIterator[Any]:
        try:
            async for chunk in chunks:
                snapshot = self.feed(chunk)
                if snapshot is not None:
                    for released in self.checked(snapshot, await check(self.inputs(snapshot))):
                        yield released
            snapshot, inputs = self.last_check()
            asked = self.asked(inputs)
            for chunk in self.ended(snapshot, inputs, await check(asked) if asked else []):
                yield chunk
        finally:
            close = getattr(chunks, "aclose", None)
            if callable(close):
                await close()


# --- the SDK: both rails around litellm.completion -------------------------------------------------------------

_DEFAULT: list[RailguardGuardrail] = []


def _default_rail() -> RailguardGuardrail:
    if not _DEFAULT:
        _DEFAULT.append(RailguardGuardrail())
    return _DEFAULT[0]


def guarded_completion(*, rail: RailguardGuardrail | None = None, **kwargs: Any) -> Any:
    """``litellm.completion(**kwargs)`` between the input and the output rail (``rail``: by default the embedded
    guard's). Blocked: :class:`RailguardBlocked` (the model is not called when the request blocks). With
    ``stream=True`` the chunks come through the window."""
    rail = rail if rail is not None else _default_rail()
    conversation = rail.read(kwargs, "chat") or Conversation()
    input_verdicts = rail.judge_input(conversation)
    answer = litellm.completion(**kwargs)
    if kwargs.get("stream"):
        return AnswerStream(rail, conversation, input_verdicts).run(iter(answer), rail.guard.check)
    rail.judge_output(conversation, answer)
    return answer


async def aguarded_completion(*, rail: RailguardGuardrail | None = None, **kwargs: Any) -> Any:
    """``litellm.acompletion(**kwargs)`` between the rails, as :func:`guarded_completion`; a streamed answer is an
    async iterator of chunks."""
    rail = rail if rail is not None else await anyio.to_thread.run_sync(_default_rail)
    conversation = rail.read(kwargs, "chat") or Conversation()
    input_verdicts = await rail.ajudge_input(conversation)
    answer = await litellm.acompletion(**kwargs)
    if kwargs.get("stream"):
        async def check(inputs: list[GuardInput]) -> list[Verdict]:
            return await anyio.to_thread.run_sync(rail.guard.check, inputs)

        return AnswerStream(rail, conversation, input_verdicts).arun(answer, check)
    await rail.ajudge_output(conversation, answer)
    return answer
