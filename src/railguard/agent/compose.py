"""A text guard and the agent guard as one: every input is judged by the text guard, and an input that carries an
``action`` or a ``trajectory`` also by the agent guard, its verdict the two merged (:func:`~railguard.agent.guard.merge`,
by :func:`railguard.verdicts.combine`).

:mod:`railguard.load` puts the embedded and e5 tiers in one (``load_guard("embedded")`` judges actions next to the
text checks); the text guard knows nothing of agents. The agent guard is built with the first action or trajectory,
so that a text-only user never loads its heads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..config import CoreSettings
from ..errors import ModelError
from ..guard import (Closeable, Describes, Guard, HasEncoder, HasLayerViews, HasManifest, HasThresholds, JudgesTasks,
                     ReadsLanguages, Steps, check_steps, pass_through, run_steps)
from ..models.artifacts import encoder_sha256
from ..types import GuardInput, Verdict
from ..verdicts import check_inputs
from .guard import AgentGuard, has_agent_input, merge

#: What the text guard says of itself holds for the pair (the agent guard's thresholds and tasks are its own:
#: ``load_guard("agent")`` declares them). Layer views are the text guard's, merged like its verdicts.
PASSED_THROUGH: tuple[type, ...] = (HasThresholds, HasManifest, Describes, JudgesTasks, ReadsLanguages, HasEncoder,
                                    Closeable)


class WithAgent:
    """``text`` for every input, and the agent guard ``agent()`` builds (once, when first needed) for the inputs
    with an action or a trajectory. It has the capabilities in ``PASSED_THROUGH`` that ``text`` has, its layer
    views when it has them, and no other attribute of it."""

    def __init__(self, text: Guard, agent: Callable[[], AgentGuard]) -> None:
        self.inner = text
        self.name = text.name
        self._make_agent = agent
        self._agent: AgentGuard | None = None
        pass_through(self, text, PASSED_THROUGH)
        if isinstance(text, HasLayerViews):
            self.probes = text.probes

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        return run_steps(self.check_steps(inputs))

    def check_steps(self, inputs: Sequence[GuardInput], *, max_windows: int | None = None) -> Steps:
        inputs = check_inputs(inputs)
        verdicts = yield from check_steps(self.inner, inputs, max_windows=max_windows)
        return self._with_agent(inputs, verdicts)

    def check_views(self, inputs: Sequence[GuardInput]) -> tuple[list[Verdict], Any]:
        """The text guard's verdicts and layer views, the verdicts merged with the agent's."""
        inputs = check_inputs(inputs)
        verdicts, views = self.inner.check_views(inputs)
        return self._with_agent(inputs, verdicts), views

    def _with_agent(self, inputs: Sequence[GuardInput], verdicts: list[Verdict]) -> list[Verdict]:
        if not any(has_agent_input(x) for x in inputs):
            return verdicts
        if self._agent is None:
            self._agent = self._make_agent()
        judged = self._agent.judge(inputs)
        return [merge(v, j) if has_agent_input(x) else v for x, v, j in zip(inputs, verdicts, judged)]


def agent_for(text: Guard, *, settings: CoreSettings | None = None) -> AgentGuard:
    """The agent guard for ``text``: on its encoder where the agent heads were fitted on that encoder (the shipped
    embedded model's), else with the encoder the heads bring (an encoder converted on this machine, e5's, has no
    shipped hash; a retrained model has another encoder, whose threads come from ``settings``)."""
    if isinstance(text, HasManifest) and isinstance(text, HasEncoder):
        sha256 = encoder_sha256(text.manifest)
        if sha256:
            try:
                return AgentGuard(encoder=text.encoder, encoder_sha256=sha256)
            except ModelError:
                pass
    return AgentGuard(settings=settings)
