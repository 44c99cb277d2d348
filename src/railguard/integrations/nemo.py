"""NeMo Guardrails: railguard's rails as custom actions for Colang flows (``pip install 'railguard[nemo]'``).

.. code-block:: python

    from nemoguardrails import LLMRails, RailsConfig
    from railguard.integrations import nemo

    rails = LLMRails(RailsConfig.from_path("config"))
    nemo.register(rails)                     # the default guard; nemo.register(rails, policy="strict"), (rails, guard)

and in the config: the flows of :data:`COLANG_FLOWS` (Colang 1.0: ``$railguard = execute railguard_check_input``,
then ``if $railguard.is_blocked`` the bot refuses and the flow stops) in a ``.co`` file, and in ``config.yml``
``rails: {input: {flows: [railguard check input]}, output: {flows: [railguard check output]}}``.
``railguard_check_input`` judges ``context["user_message"]``;
``railguard_check_output`` judges ``context["bot_message"]`` as the response to it. Each returns NeMo's
``RailOutcome`` (``is_blocked``; ``reason``: why it blocked; ``metadata["verdict"]``: the verdict), or, where
nemoguardrails is not installed, a :class:`RailCheck` with the same fields. A rail blocks exactly when the verdict
is flagged (:func:`railguard.rails.blocks`); what the bot says then is the flow's. This module imports without
nemoguardrails: the actions are plain async functions taking ``context``, marked with NeMo's ``@action`` only where
it is importable. Guard calls run in a worker thread, off the event loop. No model logic lives here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..conversation import Conversation
from ..errors import installed
from ..guard import Guard
from ..rails import blocks, why
from ..types import Verdict
from . import resolve_guard

COLANG_FLOWS = """\
define flow railguard check input
  $railguard = execute railguard_check_input
  if $railguard.is_blocked
    bot refuse to respond
    stop

define flow railguard check output
  $railguard = execute railguard_check_output
  if $railguard.is_blocked
    bot refuse to respond
    stop
"""


@dataclass(frozen=True, slots=True)
class RailCheck:
    """What an action decided, where nemoguardrails (and its ``RailOutcome``) is not installed."""

    is_blocked: bool
    reason: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


def _outcome(verdicts: list[Verdict]) -> Any:
    blocked = next((v for v in verdicts if blocks(v)), None)
    verdict = blocked or verdicts[0]
    metadata = {"verdict": verdict.to_dict(), "verdicts": [v.to_dict() for v in verdicts]}
    reason = why(blocked) if blocked is not None else None
    if installed("nemoguardrails"):
        from nemoguardrails.actions.rail_outcome import RailOutcome

        return RailOutcome.block(reason=reason, metadata=metadata) if blocked is not None \
            else RailOutcome.allow(metadata=metadata)
    return RailCheck(blocked is not None, reason, metadata)


def _message(context: Mapping[str, Any] | None, key: str, given: str | None) -> str:
    value = given if given is not None else (context or {}).get(key)
    return value if isinstance(value, str) else ""


class RailguardActions:
    """The two actions bound to one guard: ``guard`` a Guard or a registry name (``embedded``, ``cascade``, ...)
    and ``policy`` a preset, a YAML file or a mapping (:mod:`railguard.policy`). The guard is loaded on first use."""

    def __init__(self, guard: Guard | str = "default", *, policy: Any = None) -> None:
        self._guard: Guard | None = None if isinstance(guard, str) else resolve_guard(guard, policy)
        self._spec = (guard, policy)

    @property
    def guard(self) -> Guard:
        if self._guard is None:
            self._guard = resolve_guard(*self._spec)
        return self._guard

    async def _judge(self, conversation: Conversation, answer: str | None) -> Any:
        def judge() -> list[Verdict]:
            inputs = conversation.guard_inputs() if answer is None else [conversation.output_input(answer)]
            return self.guard.check(inputs)

        return _outcome(await asyncio.to_thread(judge))

    async def check_input(self, context: Mapping[str, Any] | None = None, user_message: str | None = None,
                          **kwargs: Any) -> Any:
        """The user's message (``context["user_message"]``)."""
        return await self._judge(Conversation(turns=(_message(context, "user_message", user_message),)), None)

    async def check_output(self, context: Mapping[str, Any] | None = None, bot_message: str | None = None,
                           user_message: str | None = None, **kwargs: Any) -> Any:
        """The bot's message (``context["bot_message"]``) as the response to the user's."""
        conversation = Conversation(turns=(_message(context, "user_message", user_message),))
        return await self._judge(conversation, _message(context, "bot_message", bot_message))


_DEFAULT = RailguardActions()


async def railguard_check_input(context: Mapping[str, Any] | None = None, user_message: str | None = None,
                                **kwargs: Any) -> Any:
    """The input rail with the default guard (:func:`register` binds another guard)."""
    return await _DEFAULT.check_input(context, user_message)


async def railguard_check_output(context: Mapping[str, Any] | None = None, bot_message: str | None = None,
                                 user_message: str | None = None, **kwargs: Any) -> Any:
    """The output rail with the default guard (:func:`register` binds another guard)."""
    return await _DEFAULT.check_output(context, bot_message, user_message)


if installed("nemoguardrails"):
    from nemoguardrails.actions import action

    railguard_check_input = action(name="railguard_check_input")(railguard_check_input)
    railguard_check_output = action(name="railguard_check_output")(railguard_check_output)


def register(rails: Any, guard: Guard | str = "default", *, policy: Any = None) -> RailguardActions:
    """Register ``railguard_check_input`` and ``railguard_check_output`` on an ``LLMRails``, bound to ``guard``
    under ``policy``; returns the actions."""
    actions = RailguardActions(guard, policy=policy)
    rails.register_action(actions.check_input, name="railguard_check_input")
    rails.register_action(actions.check_output, name="railguard_check_output")
    return actions
