"""The agent guard: how risky is a proposed action (SAFE / LOW / HIGH), and is a trajectory unsafe?

``load_guard("agent")`` judges inputs that carry an ``action`` and/or a ``trajectory``; the loader puts it
beside the embedded and e5 tiers too (:mod:`railguard.agent.compose`, sharing the embedded encoder), so
``load_guard()`` users get the same fields next to the text checks. The model's level is raised by the rules (:mod:`railguard.agent.rules`) that
fire; each fired rule is named in the verdict's ``explanation``. The verdict's ``action`` says what to do:
``block`` for HIGH (or an unsafe trajectory), ``flag`` (ask the user to confirm) for LOW, ``allow`` for SAFE.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CoreSettings, Settings
from ..errors import InputError, ModelError
from ..models.artifacts import EMBEDDED_DIR, verify
from ..models.artifacts import encoder_sha256 as manifest_encoder_sha256
from ..models.encoder import TextEncoder
from ..registry import register
from ..types import AgentVerdict, GuardInput, Reason, Verdict
from ..verdicts import check_inputs, combine
from .actions import RISK_LEVELS, render_trajectory
from .heads import (ACTION_FILE, AGENT_DIR, FEATURES_VERSION, TOOL_ACTION_FILE, TRAJECTORY_FILE, ActionHead,
                    TrajectoryHead, action_features, trajectory_features)
from .rules import AgentRule, default_rules, fired, raise_level, tool_action

#: What each level asks the caller to do (the verdict's ``action``).
LEVEL_ACTIONS: dict[str, str] = {"SAFE": "allow", "LOW": "flag", "HIGH": "block"}


@dataclass(frozen=True, slots=True)
class AgentJudgement:
    """The agent fields of one input's verdict, before they are merged into a Verdict."""

    action_risk: str | None = None
    action_risk_probs: dict[str, float] | None = None
    trajectory_unsafe: bool | None = None
    trajectory_score: float | None = None
    reasons: tuple[Reason, ...] = ()

    @property
    def flagged(self) -> bool:
        return self.action_risk == "HIGH" or bool(self.trajectory_unsafe)

    @property
    def action(self) -> str:
        level = "HIGH" if self.trajectory_unsafe else (self.action_risk or "SAFE")
        return LEVEL_ACTIONS[level]

    def scores(self) -> dict[str, float]:
        """Calibrated probabilities of the binary agent tasks (what the evaluation scores)."""
        out = {}
        if self.action_risk_probs is not None:
            out["action_high"] = self.action_risk_probs["HIGH"]
        if self.trajectory_score is not None:
            out["trajectory_unsafe"] = self.trajectory_score
        return out

    def fields(self) -> dict[str, Any]:
        """The Verdict fields this judgement sets: its ``agent`` record."""
        return {"agent": AgentVerdict(self.action_risk, self.action_risk_probs, self.trajectory_unsafe,
                                      self.trajectory_score)}


def has_agent_input(x: GuardInput) -> bool:
    return x.action is not None or bool(x.trajectory)


class AgentGuard:
    """Action-risk and trajectory heads over the embedded encoder, plus the rule layer."""

    tasks = frozenset({"action_high", "trajectory_unsafe"})

    def __init__(self, model_dir: str | Path | None = None, *, encoder: TextEncoder | None = None,
                 encoder_sha256: str | None = None, rules: Sequence[AgentRule] | None = None,
                 threads: int | None = None, tier: str = "agent", settings: CoreSettings | None = None) -> None:
        self.model_dir = Path(model_dir or AGENT_DIR)
        self.manifest = verify(self.model_dir)
        if self.manifest.get("features_version") != FEATURES_VERSION:
            raise ModelError(f"the agent model in {self.model_dir} was built for features version "
                             f"{self.manifest.get('features_version')}, this railguard reads {FEATURES_VERSION}; "
                             "retrain it with `railguard train --task action_risk` and `--task trajectory`")
        if encoder is None:
            embedded = verify(EMBEDDED_DIR)
            threads = threads or (settings if settings is not None else CoreSettings.from_env()).threads
            encoder = TextEncoder.from_spec(EMBEDDED_DIR, embedded["encoder"], threads=threads)
            encoder_sha256 = manifest_encoder_sha256(embedded)
        if encoder_sha256 is not None and encoder_sha256 != self.manifest.get("encoder_sha256"):
            raise ModelError(f"the agent heads in {self.model_dir} were fitted on another encoder "
                             f"({str(self.manifest.get('encoder_sha256'))[:12]}…, this one is {encoder_sha256[:12]}…); "
                             "retrain them with `railguard train --task action_risk` and `--task trajectory`")
        self.encoder = encoder
        files = self.manifest["files"]
        self.action_head = ActionHead.load(self.model_dir / ACTION_FILE) if ACTION_FILE in files else None
        # Tool calls have a head of their own where the folder holds one; web actions (and, without it, tool
        # calls) are read by the action head.
        self.tool_head = ActionHead.load(self.model_dir / TOOL_ACTION_FILE) if TOOL_ACTION_FILE in files else None
        self.trajectory_head = TrajectoryHead.load(self.model_dir / TRAJECTORY_FILE) if TRAJECTORY_FILE in files else None
        self.rules: tuple[AgentRule, ...] = tuple(default_rules() if rules is None else rules)
        self.thresholds = {"action_high": self.action_head.high_threshold if self.action_head else None,
                           "trajectory_unsafe": self.trajectory_head.threshold if self.trajectory_head else None}
        self.name = tier

    def judge(self, inputs: Sequence[GuardInput]) -> list[AgentJudgement]:
        """The agent fields of every input (empty for inputs with neither an action nor a trajectory)."""
        with_action = [i for i, x in enumerate(inputs) if x.action is not None]
        with_traj = [i for i, x in enumerate(inputs) if x.trajectory]
        if with_action and self.action_head is None:
            raise ModelError(f"{self.model_dir} has no action-risk head; train it with `railguard train --task action_risk`")
        if with_traj and self.trajectory_head is None:
            raise ModelError(f"{self.model_dir} has no trajectory head; train it with `railguard train --task trajectory`")
        out: list[dict[str, Any]] = [{"reasons": []} for _ in inputs]
        if with_action:
            features = action_features(self.encoder, [inputs[i].action for i in with_action])
            for n, (i, head) in enumerate(zip(with_action, self._heads([inputs[i].action for i in with_action]))):
                p = head.probs(features[n : n + 1])
                self._judge_action(out[i], inputs[i], p[0], head.levels(p)[0], head)
        if with_traj:
            texts = [render_trajectory(inputs[i].trajectory) for i in with_traj]
            scores = self.trajectory_head.probs(trajectory_features(self.encoder, texts))
            for i, s in zip(with_traj, scores):
                self._judge_trajectory(out[i], inputs[i], float(s))
        return [AgentJudgement(**{k: v for k, v in o.items() if k != "reasons"}, reasons=tuple(o["reasons"]))
                for o in out]

    def _heads(self, actions) -> list[ActionHead]:
        return [self.tool_head if a.kind == "tool_call" and self.tool_head is not None else self.action_head
                for a in actions]

    def _judge_action(self, out: dict[str, Any], x: GuardInput, p: np.ndarray, level: str, head: ActionHead) -> None:
        probs = {name: float(v) for name, v in zip(RISK_LEVELS, p)}
        rules = fired(self.rules, x.action)
        final = raise_level(level, rules)
        out["reasons"].append(Reason("agent.model", LEVEL_ACTIONS[level], probs[level],
                                     head.high_threshold if level == "HIGH" else None,
                                     detail=f"model: {level}"))
        for r in rules:
            out["reasons"].append(Reason(f"agent.rules.{r.name}", LEVEL_ACTIONS[r.risk],
                                         detail=f"at least {r.risk}" + (f": {r.description}" if r.description else "")))
        out.update(action_risk=final, action_risk_probs=probs)

    def _judge_trajectory(self, out: dict[str, Any], x: GuardInput, score: float) -> None:
        unsafe = score >= self.trajectory_head.threshold
        if unsafe:
            out["reasons"].append(Reason("agent.trajectory", "block", score, self.trajectory_head.threshold))
        for turn in x.trajectory:
            step = tool_action(turn.action) if turn.role == "agent" and turn.action else None
            for r in fired(self.rules, step) if step is not None else ():
                if r.risk == "HIGH":
                    unsafe = True
                    out["reasons"].append(Reason(f"agent.rules.{r.name}", "block",
                                                 detail="a tool call in the trajectory: " + (r.description or r.name)))
        out.update(trajectory_unsafe=unsafe, trajectory_score=score)

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        start = time.perf_counter()
        for x in check_inputs(inputs):
            if not has_agent_input(x):
                raise InputError("the agent guard judges actions and trajectories: give each GuardInput an action= "
                                 "or a trajectory= (text alone goes to the embedded guard)")
        judged = self.judge(inputs)
        share = (time.perf_counter() - start) * 1000.0 / max(1, len(inputs))
        return [Verdict(tier=self.name, latency_ms=share, id=x.id, flagged=j.flagged, action=j.action,
                        explanation=j.reasons, scores=j.scores(), **j.fields())
                for x, j in zip(inputs, judged)]


def merge(verdict: Verdict, j: AgentJudgement) -> Verdict:
    """A text verdict with the agent fields added, by :func:`railguard.verdicts.combine`: flagged if either flags;
    the stronger action; the text's reasons, then the agent's."""
    agent = Verdict(flagged=j.flagged, action=j.action, explanation=j.reasons, scores=j.scores(), **j.fields())
    return combine([verdict, agent], tier=verdict.tier, id=verdict.id, latency_ms=verdict.latency_ms,
                   explanation=(verdict.explanation or ()) + j.reasons)


def policy_agent_reasons(x: GuardInput, v: Verdict, agent: Any) -> tuple[dict[str, Any], list[Reason]]:
    """Under a policy (:class:`railguard.agent.rules.AgentPolicy`): the policy's own rules raise the level
    further, and every agent reason takes the action the policy sets for its level (an unsafe trajectory
    counts as HIGH). Returns the verdict's agent fields and the reasons."""
    import dataclasses

    level_of = {a: level for level, a in LEVEL_ACTIONS.items()}
    reasons = [dataclasses.replace(r, action=agent.actions[level_of.get(r.action, "SAFE")])
               for r in v.explanation or () if r.rule.startswith("agent.")]
    record = v.agent or AgentVerdict()
    if v.action_risk is not None and x.action is not None:
        rules = fired(agent.rules, x.action)
        record = dataclasses.replace(record, action_risk=raise_level(v.action_risk, rules))
        reasons += [Reason(f"agent.rules.{r.name}", agent.actions[r.risk],
                           detail=f"at least {r.risk}" + (f": {r.description}" if r.description else ""))
                    for r in rules]
    return {"agent": record}, reasons


@register("agent", "action risk (SAFE/LOW/HIGH) and trajectory safety for agents (agent:/path/to/model-dir)",
          settings=True)
def _agent(argument: str | None = None, *, settings: Settings | None = None, **options) -> AgentGuard:
    return AgentGuard(argument, settings=None if settings is None else settings.core, **options)
