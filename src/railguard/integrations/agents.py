"""The OpenAI Agents SDK: railguard's rails as the SDK's guardrails (``pip install 'railguard[agents]'``).

.. code-block:: python

    from agents import Agent, Runner, function_tool
    from railguard.integrations.agents import Railguard

    rail = Railguard()                                   # the default guard; Railguard(policy="strict"), Railguard(guard)
    agent = Agent(name="helper", input_guardrails=[rail.input_guardrail()], output_guardrails=[rail.output_guardrail()],
                  tools=[rail.guard_tool(function_tool(fetch_page))])
    Runner.run_sync(agent, "Summarize example.com")

- :meth:`Railguard.input_guardrail` (``agents.InputGuardrail``) judges the run's input as railguard's proxy reads a
  responses request (:func:`railguard.server.proxy.conversation.read_response`): the user's turns, and tool outputs and
  system messages in it as context. By default it runs before the agent (``run_in_parallel=False``), so a blocked
  request never reaches the model.
- :meth:`Railguard.output_guardrail` (``agents.OutputGuardrail``) judges the agent's final output as the response to
  the run's input (``context.turn_input``).
- :meth:`Railguard.tool_input_guardrail` (``agents.ToolInputGuardrail``) judges each call of a function tool before
  it runs as an action (the agent guard's action risk; the embedded guard carries the agent heads), with the last
  user turn as its task; :meth:`Railguard.tool_output_guardrail` judges what the tool returned as context (indirect
  prompt injection) before the model reads it. :meth:`Railguard.guard_tool` puts both on a function tool.

A rail blocks exactly when the verdict is flagged (:func:`railguard.rails.blocks`). The input and output guardrails
then trip their wire (``tripwire_triggered``: the SDK raises ``InputGuardrailTripwireTriggered`` /
``OutputGuardrailTripwireTriggered``); their ``output_info`` is a :class:`RailOutcome` carrying the verdict either
way. A blocked tool call or tool output is, by default (``on_tool_block="reject"``), replaced by a message to the
model saying why (the tool does not run; the output is withheld) and the run goes on; ``"raise"`` halts it with the
SDK's ``ToolInputGuardrailTripwireTriggered`` / ``ToolOutputGuardrailTripwireTriggered``. Guard calls run in a
worker thread, off the event loop. No model logic lives here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import InputError, require

require("agents", "agents")
require("fastapi", "agents")  # railguard's request readers answer bad input as the server does

from agents import (FunctionTool, GuardrailFunctionOutput, InputGuardrail, OutputGuardrail,  # noqa: E402
                    ToolGuardrailFunctionOutput, ToolInputGuardrail, ToolOutputGuardrail)

from ..conversation import Conversation  # noqa: E402
from ..guard import Guard  # noqa: E402
from ..rails import blocks, why  # noqa: E402
from ..server.proxy.conversation import read_response  # noqa: E402
from ..server.errors import APIError  # noqa: E402
from ..server.settings import ServerSettings  # noqa: E402
from ..types import GuardInput, Verdict  # noqa: E402
from . import resolve_guard  # noqa: E402

OnToolBlock = Literal["reject", "raise"]
_ON_TOOL_BLOCK = ("reject", "raise")


@dataclass(frozen=True, slots=True)
class RailOutcome:
    """What a railguard guardrail found (its ``output_info``): whether it blocked, the verdict that decides (the
    blocking one, else the first), all of its verdicts, and why it blocked."""

    blocked: bool
    verdict: Verdict
    verdicts: tuple[Verdict, ...]
    why: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"blocked": self.blocked, "why": self.why, "verdict": self.verdict.to_dict(),
                "verdicts": [v.to_dict() for v in self.verdicts]}


def outcome(verdicts: Sequence[Verdict]) -> RailOutcome:
    blocked = next((v for v in verdicts if blocks(v)), None)
    if blocked is not None:
        return RailOutcome(True, blocked, tuple(verdicts), why(blocked))
    return RailOutcome(False, verdicts[0] if verdicts else Verdict(tier="none"), tuple(verdicts))


def _text(output: Any) -> str:
    """An agent's final output as text: a string as it is, a structured output as its JSON."""
    if isinstance(output, str):
        return output
    dump = getattr(output, "model_dump_json", None)
    if callable(dump):
        return dump()
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        output = dataclasses.asdict(output)
    return json.dumps(output, default=str, ensure_ascii=False)


class Railguard:
    """The maker of railguard's guardrails for agents. ``guard`` is a Guard or a registry name (``embedded``,
    ``cascade``, ...) and ``policy`` a preset, a YAML file or a mapping (:mod:`railguard.policy`); ``action_guard``
    judges tool calls (by default ``guard``: the default guard judges actions with its agent heads; give
    ``"agent"`` for a guard of its own); ``on_tool_block`` is ``reject`` (the model is told, the run goes on) or
    ``raise``; ``settings`` the request limits of railguard's server (by default from the ``RAILGUARD_*``
    environment)."""

    def __init__(self, guard: Guard | str = "default", *, policy: Any = None, action_guard: Guard | str | None = None,
                 on_tool_block: OnToolBlock = "reject", settings: ServerSettings | None = None) -> None:
        if on_tool_block not in _ON_TOOL_BLOCK:
            raise InputError(f"on_tool_block must be one of {', '.join(_ON_TOOL_BLOCK)}, got {on_tool_block!r}")
        self.guard = resolve_guard(guard, policy)
        self.action_guard = self.guard if action_guard is None else resolve_guard(action_guard, policy)
        self.on_tool_block = on_tool_block
        self.settings = settings if settings is not None else ServerSettings.load()

    # -- what the rails read ------------------------------------------------------------------------------
    def read(self, items: Any) -> Conversation:
        """The conversation of an agent's input (a string or a list of Responses input items)."""
        try:
            return read_response({"input": items}, self.settings)
        except APIError as exc:
            raise InputError(f"railguard cannot judge this agent input: {exc.message}") from None

    async def judge(self, guard: Guard, inputs: list[GuardInput]) -> RailOutcome:
        return outcome(await asyncio.to_thread(guard.check, inputs))

    # -- the run's input and output -------------------------------------------------------------------------
    async def check_input(self, context: Any, agent: Any, items: Any) -> GuardrailFunctionOutput:
        found = await self.judge(self.guard, self.read(items).guard_inputs())
        return GuardrailFunctionOutput(output_info=found, tripwire_triggered=found.blocked)

    async def check_output(self, context: Any, agent: Any, output: Any) -> GuardrailFunctionOutput:
        turn_input = getattr(context, "turn_input", None)
        conversation = self.read(turn_input) if turn_input else Conversation()
        found = await self.judge(self.guard, [conversation.output_input(_text(output))])
        return GuardrailFunctionOutput(output_info=found, tripwire_triggered=found.blocked)

    def input_guardrail(self, *, name: str = "railguard_input", run_in_parallel: bool = False) -> InputGuardrail:
        """The input rail; ``run_in_parallel=True`` lets the model start meanwhile (its answer is dropped if this
        blocks)."""
        return InputGuardrail(guardrail_function=self.check_input, name=name, run_in_parallel=run_in_parallel)

    def output_guardrail(self, *, name: str = "railguard_output") -> OutputGuardrail:
        return OutputGuardrail(guardrail_function=self.check_output, name=name)

    # -- tools ------------------------------------------------------------------------------------------------
    def _tool_blocked(self, message: str, found: RailOutcome) -> ToolGuardrailFunctionOutput:
        if self.on_tool_block == "raise":
            return ToolGuardrailFunctionOutput.raise_exception(output_info=found)
        return ToolGuardrailFunctionOutput.reject_content(message, output_info=found)

    async def check_tool_call(self, data: Any) -> ToolGuardrailFunctionOutput:
        """A function tool's call, before it runs: its action risk."""
        tool = data.context
        turn_input = getattr(tool, "turn_input", None)
        conversation = self.read(turn_input) if turn_input else Conversation()
        call = {"type": "function_call", "name": tool.tool_name, "arguments": tool.tool_arguments or "{}",
                "call_id": tool.tool_call_id}
        try:
            inputs = [conversation.tool_call_input(call)]
        except InputError as exc:
            found = outcome([Verdict.failed(f"the tool call cannot be judged: {exc}; blocked", tier="agents")])
        else:
            found = await self.judge(self.action_guard, inputs)
        if found.blocked:
            return self._tool_blocked(f"railguard blocked the call of the tool {tool.tool_name!r}: {found.why}. "
                                      "It did not run; do not try it again.", found)
        return ToolGuardrailFunctionOutput.allow(output_info=found)

    async def check_tool_output(self, data: Any) -> ToolGuardrailFunctionOutput:
        """What a function tool returned, before the model reads it: instructions hidden in it."""
        text = _text(data.output)
        if not text.strip():
            return ToolGuardrailFunctionOutput.allow()
        found = await self.judge(self.guard, [GuardInput(prompt="", context=(text,), id=data.context.tool_name)])
        if found.blocked:
            return self._tool_blocked(f"railguard withheld the result of the tool {data.context.tool_name!r}: it "
                                      f"holds instructions for the model ({found.why}).", found)
        return ToolGuardrailFunctionOutput.allow(output_info=found)

    def tool_input_guardrail(self, *, name: str = "railguard_tool_call") -> ToolInputGuardrail:
        return ToolInputGuardrail(guardrail_function=self.check_tool_call, name=name)

    def tool_output_guardrail(self, *, name: str = "railguard_tool_output") -> ToolOutputGuardrail:
        return ToolOutputGuardrail(guardrail_function=self.check_tool_output, name=name)

    def guard_tool(self, tool: FunctionTool) -> FunctionTool:
        """A copy of a function tool (``@function_tool``) with the tool-call and tool-output rails added to its own
        guardrails."""
        if not isinstance(tool, FunctionTool):
            raise InputError(f"guard_tool() takes a function tool (@function_tool), got {type(tool).__name__}")
        return dataclasses.replace(
            tool, tool_input_guardrails=[*(tool.tool_input_guardrails or ()), self.tool_input_guardrail()],
            tool_output_guardrails=[*(tool.tool_output_guardrails or ()), self.tool_output_guardrail()])
