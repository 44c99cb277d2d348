"""Old import path of :mod:`railguard.agent.io`."""

from .agent.io import BATCH, ITEM_KEYS, action_from_options, input_from_object, inputs_from_lines

__all__ = ["BATCH", "ITEM_KEYS", "action_from_options", "input_from_object", "inputs_from_lines"]
