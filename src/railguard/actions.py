"""Old import path of :mod:`railguard.agent.actions`."""

from .agent.actions import (ACTION_KINDS, MAX_FIELD_CHARS, MAX_TRAJECTORY_CHARS, MAX_TURNS, RISK_LEVELS, TURN_ROLES,
                            Action, Turn, is_tool_call, render_action, render_trajectory, to_action, to_trajectory,
                            tool_call_id, tool_call_label, tool_call_name, tool_label)

__all__ = ["ACTION_KINDS", "MAX_FIELD_CHARS", "MAX_TRAJECTORY_CHARS", "MAX_TURNS", "RISK_LEVELS", "TURN_ROLES",
           "Action", "Turn", "is_tool_call", "render_action", "render_trajectory", "to_action", "to_trajectory",
           "tool_call_id", "tool_call_label", "tool_call_name", "tool_label"]
