"""Old import path of :mod:`railguard.agent.rules`."""

from .agent.rules import (DEFAULT_LEVEL_ACTIONS, FIELDS, FLOORS, RULE_KEYS, AgentPolicy, AgentRule, ErrorAt,
                          default_rules, fired, parse_rules, raise_level, tool_action)

__all__ = ["DEFAULT_LEVEL_ACTIONS", "FIELDS", "FLOORS", "RULE_KEYS", "AgentPolicy", "AgentRule", "ErrorAt",
           "default_rules", "fired", "parse_rules", "raise_level", "tool_action"]
