"""What a rail judges of a conversation: the user's turns, the documents the model reads, its images and audio.

:meth:`Conversation.guard_inputs` is what an input rail judges: the last user turn with every document as context
(system, developer and tool messages, retrieved text: where indirect prompt injections hide) and with the images
and audio; each earlier user turn on its own; and the recent user turns joined, so that a request split across
turns is seen whole. Long texts are judged in overlapping pieces (the worst decides) rather than refused.
:meth:`Conversation.output_input` is how an output rail judges an answer: as the response to the recent turns.

The proxy reads OpenAI-shaped requests into one (:mod:`railguard.server.conversation`); the integrations read
their framework's messages (:mod:`railguard.integrations`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .types import GuardInput

_JOIN = "\n\n"


@dataclass(frozen=True, slots=True)
class Conversation:
    """The user's turns (in order), the documents the model reads, and the images and audio of the request."""

    turns: tuple[str, ...] = ()
    documents: tuple[str, ...] = ()
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
        return sum(map(len, self.turns)) + sum(map(len, self.documents))

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
