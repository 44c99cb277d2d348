"""Reading agent actions and trajectories from the command line and JSON lines (no printing here)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from ..errors import InputError
from ..types import GuardInput
from .actions import Action, is_tool_call, tool_call_label

BATCH = 64
ITEM_KEYS = ("action", "trajectory", "prompt", "response", "context", "id")


def action_from_options(**fields) -> Action:
    """An Action from command-line options; ``arguments`` given as JSON becomes a mapping."""
    if not fields.get("kind"):
        raise InputError("give --kind (click, type, submit, navigate or tool_call), or --input FILE")
    args = fields.get("arguments")
    if isinstance(args, str) and args.strip().startswith("{"):
        try:
            fields["arguments"] = json.loads(args)
        except json.JSONDecodeError:
            pass  # kept as text: the rules and the model read it as written
    return Action(**fields)


def input_from_object(obj: object, where: str) -> GuardInput:
    """One JSON object as a GuardInput: either an action itself (it has a ``kind``, or is an LLM API's tool
    call) or an item with ``action`` / ``trajectory`` / ``prompt`` / ``id``. A tool call's verdict is named
    after it (``id`` ``name:call_id``) unless the item gives its own ``id``."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    try:
        if "kind" in obj or is_tool_call(obj):
            return GuardInput(action=Action.from_dict(obj), id=_label(obj))
        unknown = set(obj) - set(ITEM_KEYS)
        if unknown:
            raise InputError(f"unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(ITEM_KEYS)} "
                             "(or an action object with a 'kind')")
        if obj.get("action") is None and not obj.get("trajectory"):
            raise InputError("the item has neither an 'action' nor a 'trajectory'")
        action = obj.get("action")
        return GuardInput(prompt=obj.get("prompt") or "", response=obj.get("response"),
                          context=obj.get("context") or (),
                          action=None if action is None else Action.from_dict(action),
                          trajectory=obj.get("trajectory") or (),
                          id=obj["id"] if obj.get("id") is not None else _label(action))
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise InputError(f"{where}: {exc}") from None


def _label(action: object) -> str | None:
    return tool_call_label(action) if is_tool_call(action) else None


def inputs_from_lines(lines: Iterable[str]) -> Iterator[list[GuardInput]]:
    """Batches of GuardInputs from JSON lines; a bad line is an InputError naming its line number."""
    batch: list[GuardInput] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {n}: not valid JSON ({exc.msg})") from None
        batch.append(input_from_object(obj, f"line {n}"))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
