"""What an agent is about to do (an :class:`Action`) and what it did so far (a trajectory of :class:`Turn`s).

Both are frozen values validated when built; a mistake raises :class:`railguard.InputError` saying what to
fix. :func:`render_action` and :func:`render_trajectory` turn them into the text the agent heads read.

A tool call as an LLM API proposes it is an action too (:meth:`Action.from_tool_call`): a chat completion's
``tool_calls`` entry ``{"id": ..., "type": "function", "function": {"name": ..., "arguments": "<JSON>"}}``, the
Responses API's ``function_call`` (and ``custom_tool_call``) item, or the legacy ``function_call``; wherever an
action is read from JSON (``GuardInput(action=...)``, ``/v1/guard/actions``, ``check-action --input``), such an
object is read as one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError

#: What an action does: a click on a page element, typing into it, submitting a form, going to a URL, or
#: calling a tool (a function, a shell, an API).
ACTION_KINDS: tuple[str, ...] = ("click", "type", "submit", "navigate", "tool_call")
#: Risk levels of an action, mildest first (WebGuard's scale): SAFE has no lasting effect, LOW changes
#: something small and reversible, HIGH is hard to undo or reaches other people, money or accounts.
RISK_LEVELS: tuple[str, ...] = ("SAFE", "LOW", "HIGH")
TURN_ROLES: tuple[str, ...] = ("user", "agent", "environment")
#: A trajectory longer than this is refused: the guard reads the turns, and an unbounded list is a mistake.
MAX_TURNS = 200
MAX_TRAJECTORY_CHARS = 1_000_000
MAX_FIELD_CHARS = 100_000
#: The ``type`` of a Responses API item that is a tool call, and which of its fields holds the arguments.
_RESPONSE_CALL_ARGUMENTS = {"function_call": "arguments", "custom_tool_call": "input"}
_TOOL_CALL_SHAPES = ('{"type": "function", "function": {"name": ..., "arguments": "<JSON>"}} (chat completions) '
                     'or {"type": "function_call", "name": ..., "arguments": "<JSON>"} (responses)')


def _opt_text(owner: str, name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{owner}.{name} must be a string, got {type(value).__name__}")
    if len(value) > MAX_FIELD_CHARS:
        raise InputError(f"{owner}.{name} is {len(value):,} characters; at most {MAX_FIELD_CHARS:,} are read")
    return value


@dataclass(frozen=True, slots=True)
class Action:
    """One proposed agent action.

    ``kind`` is one of :data:`ACTION_KINDS`. Web actions (click, type, submit) need the ``target``: the
    visible text or label of the element; ``navigate`` needs the ``url``; ``tool_call`` needs the ``tool``
    name (``arguments`` a mapping or a string). ``task`` is what the user asked the agent to do.
    """

    kind: str
    target: str | None = None
    url: str | None = None
    element_tag: str | None = None
    page_title: str | None = None
    tool: str | None = None
    arguments: Mapping[str, Any] | str | None = None
    task: str | None = None
    text: str | None = None  # what a ``type`` action enters

    def __post_init__(self) -> None:
        kind = self.kind.strip().lower() if isinstance(self.kind, str) else self.kind
        if kind not in ACTION_KINDS:
            raise InputError(f"Action.kind {self.kind!r} is unknown; use one of {', '.join(ACTION_KINDS)}")
        object.__setattr__(self, "kind", kind)
        for name in ("target", "url", "element_tag", "page_title", "tool", "task", "text"):
            _opt_text("Action", name, getattr(self, name))
        args = self.arguments
        if args is not None and not isinstance(args, str | Mapping):
            raise InputError(f"Action.arguments must be a mapping or a string, got {type(args).__name__}")
        if isinstance(args, Mapping):
            try:
                encoded = json.dumps(dict(args), ensure_ascii=False, sort_keys=True, default=str)
            except (TypeError, ValueError) as exc:
                raise InputError(f"Action.arguments cannot be read as JSON: {exc}") from None
            object.__setattr__(self, "arguments", encoded)
        _opt_text("Action", "arguments", self.arguments)
        if kind in ("click", "type", "submit") and not (self.target or "").strip():
            raise InputError(f"a '{kind}' action needs a target: the text or label of the element it acts on "
                             "(e.g. Action(kind='click', target='Place order', url=...))")
        if kind == "navigate" and not (self.url or "").strip():
            raise InputError("a 'navigate' action needs the url it goes to")
        if kind == "tool_call" and not (self.tool or "").strip():
            raise InputError("a 'tool_call' action needs the tool name (and its arguments)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Action:
        """An Action from JSON-like data (the CLI's and the server's input); unknown keys are an error. An LLM
        API's tool call (see :func:`is_tool_call`) is read with :meth:`from_tool_call`."""
        if is_tool_call(data):
            return cls.from_tool_call(data)
        return _from_mapping(cls, data, "an action", "kind", ACTION_KINDS)

    @classmethod
    def from_tool_call(cls, call: Any, *, task: str | None = None) -> Action:
        """The ``tool_call`` action an LLM proposed: a chat ``tool_calls`` entry, a Responses ``function_call``
        or ``custom_tool_call`` item or a legacy ``function_call``, as JSON-like data or as the ``openai``
        client's object. Arguments that are a JSON object are read as a mapping; others (the model's malformed
        JSON included) are kept as text, which the rules and the model read as written. ``task`` is what the user
        asked for."""
        data = _plain(call)
        if not is_tool_call(data):
            raise InputError(f"not a tool call: expected {_TOOL_CALL_SHAPES}")
        name = tool_call_name(data)
        if name is None:
            raise InputError(f"the tool call has no function name: expected {_TOOL_CALL_SHAPES}")
        function = data["function"] if isinstance(data.get("function"), Mapping) else data
        arguments = function.get(_RESPONSE_CALL_ARGUMENTS.get(data.get("type"), "arguments"))
        return cls("tool_call", tool=name, arguments=_tool_arguments(arguments), task=task)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


@dataclass(frozen=True, slots=True)
class Turn:
    """One step of a trajectory: a ``user`` message, an ``agent`` step (its ``thought`` and ``action``) or
    an ``environment`` observation (a tool's output, a page)."""

    role: str
    content: str | None = None
    thought: str | None = None
    action: str | None = None

    def __post_init__(self) -> None:
        if self.role not in TURN_ROLES:
            raise InputError(f"Turn.role {self.role!r} is unknown; use one of {', '.join(TURN_ROLES)}")
        for name in ("content", "thought", "action"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                if isinstance(value, Mapping | list):
                    value = json.dumps(value, ensure_ascii=False, default=str)
                    object.__setattr__(self, name, value)
                else:
                    raise InputError(f"Turn.{name} must be a string, got {type(value).__name__}")
        if not any((getattr(self, n) or "").strip() for n in ("content", "thought", "action")):
            raise InputError(f"a '{self.role}' turn says nothing: give its content (or an agent's thought/action)")

    @classmethod
    def from_dict(cls, data: Any) -> Turn:
        return _from_mapping(cls, data, "a trajectory turn", "role", TURN_ROLES)

    def text(self) -> str:
        parts = [p for p in (self.content, self.thought, self.action) if p]
        return " ".join(parts)


def is_tool_call(data: Any) -> bool:
    """Whether JSON-like data is an LLM API's tool call rather than a railguard action (which has a ``kind``)."""
    if not isinstance(data, Mapping) or "kind" in data:
        return False
    kind = data.get("type")
    if kind in _RESPONSE_CALL_ARGUMENTS:
        return True
    if isinstance(data.get("function"), Mapping):
        return kind in (None, "function")
    return kind is None and "name" in data and "arguments" in data  # the legacy function_call


def tool_call_id(call: Any) -> str | None:
    """The id an LLM API gave a tool call (``id`` in chat completions, ``call_id`` in responses), if any."""
    data = _plain(call)
    value = data.get("call_id") if data.get("type") in _RESPONSE_CALL_ARGUMENTS else data.get("id")
    return value if isinstance(value, str) and value else None


def tool_call_name(call: Any) -> str | None:
    """The function a tool call names, if any."""
    data = _plain(call)
    function = data["function"] if isinstance(data.get("function"), Mapping) else data
    name = function.get("name")
    return name if isinstance(name, str) and name.strip() else None


def tool_call_label(call: Any) -> str | None:
    """The name a tool call's verdict carries (see :func:`tool_label`); None for data that is not a tool call."""
    data = _plain(call)
    return tool_label(tool_call_name(data), tool_call_id(data)) if is_tool_call(data) else None


def tool_label(name: str | None, call_id: str | None) -> str | None:
    """How a verdict names a tool call or a tool's output (its ``id``): ``name:call_id``, or whichever is known."""
    parts = [p for p in (name, call_id) if p]
    return ":".join(parts) or None


def _plain(call: Any) -> Mapping[str, Any]:
    """JSON-like data of a tool call; the ``openai`` client's objects are pydantic models and say so."""
    if isinstance(call, Mapping):
        return call
    dump = getattr(call, "model_dump", None)  # an SDK object at the edge: read once into plain data
    if callable(dump):
        data = dump()
        if isinstance(data, Mapping):
            return data
    raise InputError(f"a tool call must be an object such as {_TOOL_CALL_SHAPES}, got {type(call).__name__}")


def _tool_arguments(value: Any) -> Mapping[str, Any] | str | None:
    if value is None or isinstance(value, Mapping):
        return value
    if not isinstance(value, str):
        raise InputError(f"the tool call's arguments must be a JSON string or an object, got {type(value).__name__}")
    if value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(parsed, dict):
            return parsed
    return value or None


def _from_mapping(cls: type, data: Any, what: str, required: str, allowed: tuple[str, ...]) -> Any:
    """``cls(**data)`` for JSON-like data, with one clear InputError for a non-object, an unknown field or a
    missing required one."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise InputError(f"{what} must be an object with a '{required}', got {type(data).__name__}")
    unknown = set(data) - set(cls.__slots__)
    if unknown:
        raise InputError(f"unknown field(s) in {what}: {', '.join(sorted(unknown))}; known: {', '.join(cls.__slots__)}")
    if required not in data:
        raise InputError(f"{what} needs a '{required}', one of {', '.join(allowed)}")
    return cls(**dict(data))


def to_action(value: Any) -> Action:
    """An Action from an Action, an action dict, or an LLM API's tool call (a dict or the ``openai`` client's
    object)."""
    if isinstance(value, Action):
        return value
    if isinstance(value, Mapping):
        return Action.from_dict(value)
    if callable(getattr(value, "model_dump", None)):
        return Action.from_tool_call(value)
    raise InputError(f"GuardInput.action must be a railguard.Action, an action dict or a tool call, "
                     f"got {type(value).__name__}")


def to_trajectory(value: Any) -> tuple[Turn, ...]:
    """A validated tuple of Turns from Turns or dicts; refuses more than MAX_TURNS turns or MAX_TRAJECTORY_CHARS."""
    if value is None:
        return ()
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise InputError(f"a trajectory must be a list of turns ({{'role': 'user', 'content': ...}}), "
                         f"got {type(value).__name__}")
    if len(value) > MAX_TURNS:
        raise InputError(f"the trajectory has {len(value):,} turns; at most {MAX_TURNS} are accepted — pass the "
                         "recent turns (the guard judges the latest part of a trajectory best)")
    turns = tuple(Turn.from_dict(t) for t in value)
    size = sum(len(t.text()) for t in turns)
    if size > MAX_TRAJECTORY_CHARS:
        raise InputError(f"the trajectory holds {size:,} characters; at most {MAX_TRAJECTORY_CHARS:,} are accepted")
    return turns


def _url_words(url: str | None) -> tuple[str, str]:
    """(domain, path words) of a URL: ``https://shop.example.com/checkout/pay?x=1`` -> (shop.example.com,
    'checkout pay')."""
    if not url:
        return "", ""
    try:
        parts = urlsplit(url if "//" in url else "//" + url)
    except ValueError:
        return "", url[:200]
    words = " ".join(p for p in parts.path.replace("-", " ").replace("_", " ").split("/") if p)
    return parts.netloc.lower(), words[:200]


def render_action(a: Action) -> tuple[str, str]:
    """The two texts the action heads encode: the action's target on its own, and the whole action
    (verb, element, page, site, URL path, tool and arguments, task) as one structured line."""
    domain, path = _url_words(a.url)
    target = a.target or (f"{a.tool} {a.arguments or ''}".strip() if a.kind == "tool_call" else "") or path or domain
    fields = [f"{a.kind} {a.element_tag or ''} {a.target or ''}".strip()]
    if a.text:
        fields.append(f"enter {a.text[:200]}")
    if a.tool:
        fields.append(f"tool {a.tool} {(a.arguments or '')[:400]}".strip())
    if a.page_title:
        fields.append(f"page {a.page_title}")
    if domain:
        fields.append(f"site {domain}")
    if path:
        fields.append(f"path {path}")
    if a.task:
        fields.append(f"task {a.task[:300]}")
    return target, " | ".join(fields)


def render_trajectory(turns: Sequence[Turn], profile: str | None = None) -> str:
    """The trajectory as one text, a line per turn (``user: ...``, ``agent: ... -> ACTION``, ``environment: ...``)."""
    lines = [f"profile: {profile}"] if profile else []
    for t in turns:
        if t.role == "agent":
            body = " ".join(p for p in (t.thought, f"ACTION {t.action}" if t.action else None, t.content) if p)
        else:
            body = t.content or t.text()
        lines.append(f"{t.role}: {body}")
    return "\n".join(lines)
