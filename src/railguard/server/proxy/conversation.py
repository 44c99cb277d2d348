"""What the proxy's rails read from a generation request: the user's turns, the documents, images and audio.

Chat completions (``messages``), completions (``prompt``, ``suffix``) and responses (``input``,
``instructions``) are read into one :class:`Conversation`. Roles are case-insensitive. Content is a string, a
list of parts, or one part object; text parts are ``text``, ``input_text``, ``output_text`` and ``refusal``,
image parts ``image_url`` and ``input_image``, audio parts ``input_audio``. Anything else is refused with 400:
a rail never skips what it cannot read, since the model would read it unjudged.

The input rail judges (see :meth:`Conversation.guard_inputs`): the last user turn with every document as
context (system and developer messages, ``instructions``: where indirect prompt injections hide) and with the
images and audio; each tool output given back to the model (``tool`` and ``function`` messages, Responses
``function_call_output`` items) as context of its own, its verdict named after the tool (``id``
``name:call_id``, the name found from the call that asked for it); each earlier user turn on its own; and the
recent user turns joined, so that a request split across turns is seen whole. Long texts are judged in
overlapping pieces (the worst decides) rather than refused.

The output rail judges a tool call the model proposes as an action (:meth:`Conversation.tool_call_input`),
with the last user turn as its task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...agent.actions import is_tool_call, tool_call_id, tool_call_name, tool_label
from ...conversation import Conversation
from ..errors import APIError
from ..media import decode
from ..settings import ServerSettings

USER_ROLE = "user"
# Roles whose text the model reads but the user did not type: where indirect prompt injections hide.
DOCUMENT_ROLES = frozenset({"tool", "function", "system", "developer"})
# Of those, the roles whose text a tool returned: each is judged on its own, named after its tool.
TOOL_ROLES = frozenset({"tool", "function"})
# The model's own earlier turns: read for their shape, not judged (the output rail judged them when they were new).
MODEL_ROLES = frozenset({"assistant"})
TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
IMAGE_PARTS = frozenset({"image_url", "input_image"})
# Responses API items that are the model's own output, carried back into the next request.
_MODEL_ITEMS = frozenset({"function_call", "reasoning", "custom_tool_call", "web_search_call", "file_search_call"})
_TOOL_OUTPUT_ITEMS = frozenset({"function_call_output", "custom_tool_call_output"})


@dataclass(slots=True)
class _Reader:
    """Collects a request's parts; ``param`` names where each came from in a 400."""

    settings: ServerSettings
    turns: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    tool_outputs: list[tuple[str | None, str]] = field(default_factory=list)
    tool_names: dict[str, str] = field(default_factory=dict)  # call id -> the function the model called
    images: list[bytes] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)

    def conversation(self) -> Conversation:
        return Conversation(turns=tuple(self.turns), documents=tuple(d for d in self.documents if d.strip()),
                            tool_outputs=tuple((label, t) for label, t in self.tool_outputs if t.strip()),
                            images=tuple(self.images), audio=tuple(self.audio),
                            recent=self.settings.proxy_recent_turns, piece_chars=self.settings.max_input_chars)

    def message(self, role: Any, content: Any, param: str, *, call_id: Any = None, name: Any = None) -> None:
        """One message; a tool's (``call_id``: the call it answers, ``name``: the function's, when given)."""
        if not isinstance(role, str) or not role.strip():
            raise _bad(f"'{param}.role' must be a string such as \"user\"", f"{param}.role")
        role = role.strip().lower()
        if role == USER_ROLE:
            self.turns.append(self.content(content, f"{param}.content"))
        elif role in TOOL_ROLES:
            self.tool_output(content, f"{param}.content", call_id, name)
        elif role in DOCUMENT_ROLES:
            self.documents.append(self.content(content, f"{param}.content"))
        elif role in MODEL_ROLES:
            self.content(content, f"{param}.content", media=False)
        else:
            known = ", ".join(sorted({USER_ROLE, *DOCUMENT_ROLES, *MODEL_ROLES}))
            raise _bad(f"'{param}.role' is {role!r}; railguard judges the roles {known}", f"{param}.role")

    def tool_output(self, content: Any, param: str, call_id: Any, name: Any = None, *, media: bool = True) -> None:
        call_id = call_id if isinstance(call_id, str) and call_id else None
        name = name if isinstance(name, str) and name else self.tool_names.get(call_id or "")
        self.tool_outputs.append((tool_label(name, call_id), self.content(content, param, media=media)))

    def calls(self, calls: Any) -> None:
        """Remember which function each of the model's earlier tool calls named, to name their outputs."""
        for call in calls if isinstance(calls, list) else [calls]:
            if isinstance(call, Mapping) and is_tool_call(call):
                call_id, name = tool_call_id(call), tool_call_name(call)
                if call_id and name:
                    self.tool_names[call_id] = name

    def content(self, content: Any, param: str, *, media: bool = True) -> str:
        """The text of a message's content; its images and audio are kept (``media``) for the input rail."""
        if content is None or isinstance(content, str):
            return content or ""
        parts = [content] if isinstance(content, Mapping) else content
        if not isinstance(parts, list):
            raise _bad(f"'{param}' must be a string, a content part or a list of content parts", param)
        texts = []
        for j, part in enumerate(parts):
            where = f"{param}[{j}]" if isinstance(content, list) else param
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                raise _bad(f"'{where}' must be a content part object with a 'type'", where)
            kind = part["type"]
            if kind in TEXT_PARTS or kind == "refusal":
                text = part.get("refusal" if kind == "refusal" else "text")
                if not isinstance(text, str):
                    raise _bad(f"'{where}' is a {kind} part without a string '{'refusal' if kind == 'refusal' else 'text'}'",
                               where)
                texts.append(text)
            elif kind in IMAGE_PARTS:
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, Mapping) else url
                if not isinstance(url, str):
                    raise _bad(f"'{where}' is an image part without an image URL (a data: URL; file ids cannot be "
                               "judged)", where)
                image = decode(url, kind="image", param=where, limit=self.settings.media.max_image_bytes)
                if media:
                    self.images.append(image)
            elif kind == "input_audio":
                data = part.get("input_audio")
                data = data.get("data") if isinstance(data, Mapping) else None
                if not isinstance(data, str):
                    raise _bad(f"'{where}' is an input_audio part without 'input_audio.data'", where)
                clip = decode(data, kind="audio", param=where, limit=self.settings.media.max_audio_bytes)
                if media:
                    self.audio.append(clip)
            else:
                raise _bad(f"'{where}' is a content part of type {kind!r}, which railguard cannot judge; send text, "
                           "image_url / input_image or input_audio parts", where)
        return "\n".join(texts)


def _bad(message: str, param: str | None) -> APIError:
    return APIError(400, message, code="invalid_value", param=param)


def _object(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise _bad(f"the request body must be a JSON object with {what}", None)
    return body


def read_chat(body: Any, settings: ServerSettings) -> Conversation:
    """A chat completion request's ``messages``."""
    messages = _object(body, "'model' and 'messages'").get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, Mapping) for m in messages):
        raise _bad("'messages' must be a non-empty list of message objects", "messages")
    reader = _Reader(settings)
    for m in messages:
        reader.calls(m.get("tool_calls"))
    for i, m in enumerate(messages):
        reader.message(m.get("role"), m.get("content"), f"messages[{i}]", call_id=m.get("tool_call_id"),
                       name=m.get("name"))
    return reader.conversation()


def read_completion(body: Any, settings: ServerSettings) -> Conversation:
    """A (legacy) completion request's ``prompt`` (a string or a list of them) and ``suffix``."""
    body = _object(body, "'model' and 'prompt'")
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise _bad("'prompt' must be a string or a non-empty list of strings (token ids cannot be judged)", "prompt")
    reader = _Reader(settings)
    reader.turns += prompts
    suffix = body.get("suffix")
    if suffix is not None:
        if not isinstance(suffix, str):
            raise _bad("'suffix' must be a string", "suffix")
        reader.documents.append(suffix)
    return reader.conversation()


def read_response(body: Any, settings: ServerSettings) -> Conversation:
    """A responses request's ``input`` (a string or a list of items) and ``instructions`` (system context)."""
    body = _object(body, "'model' and 'input'")
    reader = _Reader(settings)
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _bad("'instructions' must be a string", "instructions")
        reader.documents.append(instructions)
    items = body.get("input")
    if isinstance(items, str):
        reader.turns.append(items)
        return reader.conversation()
    if not isinstance(items, list) or not items:
        raise _bad("'input' must be a string or a non-empty list of input items", "input")
    reader.calls([item for item in items if isinstance(item, Mapping) and item.get("type") in _MODEL_ITEMS])
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, Mapping):
            raise _bad(f"'{where}' must be an input item object", where)
        kind = item.get("type", "message")
        if kind == "message" or (kind is None and "role" in item):
            reader.message(item.get("role"), item.get("content"), where)
        elif kind in _TOOL_OUTPUT_ITEMS:
            reader.tool_output(item.get("output"), f"{where}.output", item.get("call_id"), media=False)
        elif kind not in _MODEL_ITEMS:
            raise _bad(f"'{where}' is an input item of type {kind!r}, which railguard cannot judge; send message "
                       "and function_call_output items", where)
    return reader.conversation()
