"""Old import path of :mod:`railguard.agent.guard` (the ``agent`` guard registers there)."""

from ..agent.guard import (LEVEL_ACTIONS, AgentGuard, AgentJudgement, has_agent_input, merge,
                           policy_agent_reasons)

__all__ = ["LEVEL_ACTIONS", "AgentGuard", "AgentJudgement", "has_agent_input", "merge", "policy_agent_reasons"]
