"""What a rail judges of a conversation: the user's turns, the documents the model reads, its images and audio.

:meth:`Conversation.guard_inputs` is what an input rail judges: the last user turn with every document as context
(system and developer messages, retrieved text: where indirect prompt injections hide) and with the images and
audio; each tool output given back to the model as context of its own, its verdict named after the tool (``id``
``name:call_id``); each earlier user turn on its own; and the recent user turns joined, so that a request split
across turns is seen whole. Long texts are judged in overlapping pieces (the worst decides) rather than refused.
:meth:`Conversation.output_input` is how an output rail judges an answer: as the response to the recent turns;
:meth:`Conversation.tool_call_input` how it judges a tool call the model proposes: as an action, with the last
user turn as its task.

The proxy reads OpenAI-shaped requests into one (:mod:`railguard.server.proxy.conversation`); the integrations read
their framework's messages (:mod:`railguard.integrations`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .agent.actions import Action, tool_call_label
from .types import GuardInput

_JOIN = "\n\n"
# What of the last user turn a proposed tool call is judged with, as its task (the agent heads read its start).
TASK_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Conversation:
    """The user's turns (in order), the documents the model reads, the tools' outputs (``(label, text)``: see
    :func:`railguard.agent.actions.tool_label`), and the images and audio of the request."""

    turns: tuple[str, ...] = ()
    documents: tuple[str, ...] = ()
    tool_outputs: tuple[tuple[str | None, str], ...] = ()
    images: tuple[bytes, ...] = ()
    audio: tuple[bytes, ...] = ()
    recent: int = 4  # how many of the last user turns are also judged joined
    piece_chars: int = 32_768  # a longer text is judged in overlapping pieces of this many characters

    @property
    def prompt(self) -> str:
        """The text the answer is judged as the response to: the recent user turns, joined."""
        return _JOIN.join(self.turns[-self.recent:])

    @property
    def chars(self) -> int:
        return (sum(map(len, self.turns)) + sum(map(len, self.documents))
                + sum(len(text) for _, text in self.tool_outputs))

    def guard_inputs(self) -> list[GuardInput]:
        """What the input rail judges; the first is the last user turn with the documents and media.

        A text longer than ``piece_chars`` is judged in overlapping pieces, each an input of its own, and the
        documents are packed into inputs of at most ``piece_chars``: the worst piece decides, and a long request
        takes turns with other requests in the micro-batcher instead of holding the guard for one long call."""
        piece_chars = self.piece_chars
        last = self.turns[-1] if self.turns else ""
        groups = _pack([p for doc in self.documents for p in pieces(doc, piece_chars)], piece_chars)
        first, *rest = pieces(last, piece_chars)
        out = [GuardInput(prompt=first, context=groups[0] if groups else (), images=self.images, audio=self.audio)]
        out += [GuardInput(prompt=p) for p in rest]
        out += [GuardInput(prompt="", context=group) for group in groups[1:]]
        for label, text in self.tool_outputs:
            out += [GuardInput(prompt="", context=group, id=label) for group in _pack(pieces(text, piece_chars),
                                                                                      piece_chars)]
        seen = {last}
        earlier = [t for t in self.turns[:-1] if t.strip()]
        if len(self.turns) > 1:
            earlier.append(self.prompt)
        for turn in earlier:
            if turn not in seen:
                seen.add(turn)
                out += [GuardInput(prompt=p) for p in pieces(turn, piece_chars)]
        return out

    def output_input(self, completion: str) -> GuardInput:
        """An answer as the rail judges it: the response to the recent turns (their last ``piece_chars``)."""
        return GuardInput(prompt=self.prompt[-self.piece_chars:], response=completion)

    def tool_call_input(self, call: Mapping[str, Any]) -> GuardInput:
        """A tool call the model proposed (a chat ``tool_calls`` entry or a Responses ``function_call`` item) as
        the rail judges it: the action, with the start of the last user turn as its task, named ``name:call_id``.
        Raises :class:`railguard.InputError` for a call that cannot be read as an action."""
        task = self.turns[-1][:TASK_CHARS].strip() if self.turns else ""
        return GuardInput(action=Action.from_tool_call(call, task=task or None), id=tool_call_label(call))


# Consecutive pieces of a long text share this many characters, so that a sentence (or an encoder window of a
# few hundred tokens) cut by one piece's end is whole in the next.
PIECE_OVERLAP = 2048


def pieces(text: str, size: int) -> list[str]:
    """``text`` in pieces of at most ``size`` characters, consecutive ones overlapping (one piece if it fits)."""
    if len(text) <= size:
        return [text]
    overlap = min(PIECE_OVERLAP, size // 4)
    step = size - overlap
    return [text[i:i + size] for i in range(0, len(text) - overlap, step)]


def _pack(texts: list[str], size: int) -> list[tuple[str, ...]]:
    """Texts of at most ``size`` characters each, in order, grouped into groups of at most ``size`` in all."""
    groups: list[list[str]] = []
    total = 0
    for text in texts:
        if not groups or total + len(text) > size:
            groups.append([])
            total = 0
        groups[-1].append(text)
        total += len(text)
    return [tuple(g) for g in groups]
