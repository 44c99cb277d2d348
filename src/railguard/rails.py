"""What a rail decides, for every place that puts one around an LLM: the proxy and the integrations.

A rail **blocks** exactly when the guard's (policy's) verdict is flagged (:func:`blocks`); ``flag`` and ``allow``
pass, reported in the verdict. :func:`why` says in one line what made a verdict block.

A **streamed answer** is checked with a windowed hold-back (:class:`StreamWindow`): every chunk is held until a
check covering its text, and ``holdback_chars`` of text after it, passed. Checks run at sentence ends or every
``check_tokens`` chunks, on all of the answer so far; part of an answer must stay under the stricter
``partial_threshold`` on its response-harm score where the policy blocks harmful answers
(:func:`partial_threshold`), since the harm of an answer often shows only sentences after its first, when those
would already be on their way. So no text leaves before a check passed on it. To bound the time to the first
token by one check rather than a whole sentence, a **first window** (``first_window_chars``) is judged as soon as
an answer has text: if it read at most that many characters and they stay under half the partial threshold
(:func:`first_window_threshold`, so only where the policy blocks harmful answers), they are released at once,
without the hold-back; otherwise they wait for the next check as any other text does (a first window never cuts).
The proxy
(:mod:`railguard.server.proxy`) and the integrations (:mod:`railguard.integrations`) use this one window.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from .guard import HasPolicy
from .types import FLAG_TASKS, Verdict

#: What a caller gets in place of a blocked request or answer, unless the operator sets another message.
REFUSAL_MESSAGE = "I can't help with that request."

# A sentence ends at . ! ? (and their CJK forms), maybe followed by closing quotes or brackets, then a space,
# the end of the text so far, or a line break.
SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f][\"')\]\u201d\u2019]*(?=\s|$)|\n")

P = TypeVar("P")


def blocks(verdict: Verdict) -> bool:
    """Whether a rail blocks: the verdict is flagged, i.e. the policy's action is ``block`` (a ``flag`` or ``allow``
    passes, reported in the verdict), or the guard could not judge and fails closed."""
    return verdict.flagged


def why(verdict: Verdict, partial: float | None = None) -> str:
    """What made a verdict block, in one line: the policy rules that said ``block`` with their scores, else the
    flagged tasks (a guard without a policy), else the error of a guard that could not judge; for part of a
    streamed answer that only the stricter ``partial`` threshold cut, that threshold."""
    score = verdict.scores.get("response_harmful")
    if not blocks(verdict) and partial is not None and score is not None and score >= partial:
        return f"response_harmful {score:.2f} >= {partial:.2f} (the threshold for part of a streamed answer)"
    if verdict.explanation:
        parts = []
        for r in verdict.explanation:
            if r.action != "block":
                continue
            score = "" if r.score is None else f" {r.score:.2f}"
            threshold = "" if r.threshold is None else f" >= {r.threshold:.2f}"
            detail = f" ({r.detail})" if r.detail else ""
            parts.append(f"{r.rule}{score}{threshold}{detail}")
        if parts:
            return "; ".join(parts)
    tasks = [f"{t} {verdict.scores[t]:.2f}" if t in verdict.scores else t for t in FLAG_TASKS if getattr(verdict, t)]
    if tasks:
        return ", ".join(tasks)
    if verdict.error:
        return f"the guard could not judge ({verdict.error})"
    return "flagged" if verdict.flagged else "not flagged"


@dataclass(frozen=True, slots=True)
class WindowSettings:
    """How a streamed answer is checked: at each sentence end (``check="sentence"``, at most ``check_tokens``
    chunks apart) or every ``check_tokens`` chunks; text is released once a passed check also covered
    ``holdback_chars`` characters after it; ``partial_threshold`` is the response-harm score that cuts part of an
    answer (the whole answer is judged as unstreamed); ``first_window_chars`` (0: off) is the first window: the first
    check runs as soon as there is text, and releases it at once when it read at most that many characters and
    they stay under :func:`first_window_threshold` (the hold-back counts only after them)."""

    check: Literal["sentence", "tokens"] = "sentence"
    check_tokens: int = 24
    holdback_chars: int = 160
    partial_threshold: float = 0.2
    first_window_chars: int = 0  # 0: no first window (the proxy's setting turns it on)


#: The window the proxy's settings and the integrations start from.
DEFAULT_WINDOW = WindowSettings()


def blocks_partial(verdict: Verdict, threshold: float | None) -> bool:
    """The output rail on part of an answer: stricter than on the whole one (``threshold`` on the response-harm
    score). ``None``: the policy does not block harmful answers, so no stricter rule."""
    score = verdict.scores.get("response_harmful")
    return blocks(verdict) or (threshold is not None and score is not None and score >= threshold)


def first_window_threshold(threshold: float | None) -> float | None:
    """The stricter threshold under which a short first window is released without the hold-back: half the
    answer's partial threshold. None where the policy lets harmful answers through (no partial threshold): then
    nothing is released early, since the early release rests on that stricter rule."""
    return None if threshold is None else threshold / 2


def partial_threshold(threshold: float, input_verdicts: Sequence[Verdict], *, harm_blocks: bool) -> float | None:
    """The partial-text threshold for one answer (None where the policy lets harmful answers through or only
    flags them): ``threshold``, halved when the prompt itself looked harmful but was let through (a prompt score
    at or over it)."""
    if not harm_blocks:
        return None
    prompt_scores = [s for v in input_verdicts if (s := v.scores.get("prompt_harmful")) is not None]
    return threshold / 2 if prompt_scores and max(prompt_scores) >= threshold else threshold


def response_harm_blocks(guard: Any) -> bool:
    """Whether the guard's verdicts block a harmful answer: its policy's ``response_harmful`` rule says ``block``
    (a guard without a policy flags every harmful answer)."""
    if not isinstance(guard, HasPolicy):  # a PolicyGuard, or the media wrapper that passes its policy through
        return True
    rule = guard.policy.tasks["response_harmful"]
    return rule.enabled and rule.action == "block"


@dataclass(slots=True)
class StreamWindow(Generic[P]):
    """One streamed answer on its way through an output rail (one per answer: nothing is shared). ``P`` is what
    the stream is made of (the proxy's event payloads, LangChain's message chunks); the text of each is
    :meth:`add`-ed per choice index and the chunk :meth:`hold`-en until :meth:`releasable` lets it go. A chunk
    held as carrying a tool call (``call``) is not released by :meth:`releasable`, nor is anything after it (to
    keep the order): it waits until the whole answer, its tool calls judged, passed (:meth:`rest`)."""

    texts: dict[int, str] = field(default_factory=dict)  # choice index -> its text so far
    checked: dict[int, int] = field(default_factory=dict)  # choice index -> characters covered by a passed check
    # chunk, text end per choice, whether it carries a tool call (held until the calls are judged)
    held: deque[tuple[P, dict[int, int], bool]] = field(default_factory=deque)
    verdicts: dict[int, Verdict] = field(default_factory=dict)  # latest verdict per choice
    early: dict[int, int] = field(default_factory=dict)  # choice index -> characters a first window released
    tokens_since_check: int = 0
    sent_content: bool = False

    def add(self, texts: Iterable[tuple[int, str]]) -> dict[int, int]:
        """One chunk's text per choice index; returns where each choice's text ends after it."""
        ends: dict[int, int] = {}
        for index, content in texts:
            if content:
                self.texts[index] = self.texts.get(index, "") + content
                self.tokens_since_check += 1
            ends[index] = len(self.texts.get(index, ""))
        return ends

    def hold(self, chunk: P, ends: Mapping[int, int], *, call: bool = False) -> None:
        """Hold one chunk: where each choice's text ends after it, and whether it carries part of a tool call."""
        self.held.append((chunk, dict(ends), call))

    def unchecked(self) -> list[int]:
        return [i for i, text in self.texts.items() if len(text) > self.checked.get(i, 0)]

    def due(self, window: WindowSettings) -> bool:
        """Whether the text so far should be checked now."""
        pending = self.unchecked()
        if not pending:
            return False
        if self.tokens_since_check >= window.check_tokens:
            return True
        if window.first_window_chars and any(i not in self.verdicts for i in pending):
            return True  # the first window: judged as soon as there is text
        return window.check == "sentence" and any(
            SENTENCE_END.search(self.texts[i], self.checked.get(i, 0)) for i in pending)

    def pending(self) -> dict[int, str]:
        """The text so far of every choice with unchecked text: what the next check judges."""
        return {i: self.texts[i] for i in self.unchecked()}

    def record(self, snapshot: Mapping[int, str], verdicts: Sequence[Verdict], *, whole: bool,
               threshold: float | None, first_window: int = 0) -> list[int]:
        """The verdicts of a check on ``snapshot``; returns the choices whose check failed. Part of an answer
        (``whole`` false) is held to the stricter partial ``threshold``. A choice's first check, when it read at
        most ``first_window`` characters, is its first window: under :func:`first_window_threshold` its text is
        released without the hold-back; otherwise the text only waits for the next check (the first window never
        cuts an answer, so it changes what is cut nowhere, only when checked text leaves)."""
        self.tokens_since_check = 0
        failed = []
        stricter = first_window_threshold(threshold)
        for i, v in zip(snapshot, verdicts):
            first = (not whole and stricter is not None and i not in self.verdicts
                     and len(snapshot[i]) <= first_window)
            self.verdicts[i] = v
            if first:  # a word or two out of context: released when clearly harmless, else held for the next check
                if not blocks_partial(v, stricter):
                    self.checked[i] = self.early[i] = len(snapshot[i])
            elif blocks(v) if whole else blocks_partial(v, threshold):
                failed.append(i)
            else:
                self.checked[i] = len(snapshot[i])
        return failed

    def releasable(self, holdback_chars: int = 0) -> list[P]:
        """Held chunks whose text, and ``holdback_chars`` of text after it, a passed check covered (or that lie in
        a released first window)."""
        out = []
        while self.held and not self.held[0][2] and all(
                end <= self.early.get(i, 0) or end + holdback_chars <= self.checked.get(i, 0)
                for i, end in self.held[0][1].items()):
            chunk, ends, _ = self.held.popleft()
            self.sent_content |= any(ends.values())
            out.append(chunk)
        return out

    def rest(self) -> list[P]:
        """Every chunk still held (once the whole answer passed)."""
        out = [chunk for chunk, _, _ in self.held]
        self.sent_content |= any(any(ends.values()) for _, ends, _ in self.held)
        self.held.clear()
        return out
