"""What the peers share: checked inputs and one batched scoring pass over prompts and context documents."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ...types import GuardInput
from ...verdicts import check_inputs


#: The inputs as a list; InputError for anything that is not a GuardInput.
checked = check_inputs


@dataclass(frozen=True, slots=True)
class Scored:
    """One input's scores: its prompt's, and the highest over the prompt and every context document."""

    prompt: float
    highest: float
    latency_ms: float


def score_texts(items: list[GuardInput], score: Callable[[list[str]], list[float]], *,
                context: bool, batch_size: int) -> list[Scored]:
    """Score every prompt (and, with ``context``, every context document) of ``items`` (as :func:`checked`
    returns them) in batches of ``batch_size``.

    Blank texts are not sent and score 0 (nothing there to judge). Each input's latency is its share of
    the time the batch took.
    """
    texts: list[str] = []
    slots: list[tuple[int, bool]] = []  # (which input, is it the prompt) for each text sent
    for i, x in enumerate(items):
        for is_prompt, text in ((True, x.prompt), *((False, doc) for doc in (x.context if context else ()))):
            if text.strip():
                texts.append(text)
                slots.append((i, is_prompt))
    start = time.perf_counter()
    values: list[float] = []
    for at in range(0, len(texts), batch_size):
        values.extend(float(v) for v in score(texts[at:at + batch_size]))
    share = (time.perf_counter() - start) * 1000.0 / max(len(items), 1)
    prompt = [0.0] * len(items)
    highest = [0.0] * len(items)
    for (i, is_prompt), value in zip(slots, values, strict=True):  # a peer that drops a text must not shift the rest
        if is_prompt:
            prompt[i] = value
        highest[i] = max(highest[i], value)
    return [Scored(p, h, share) for p, h in zip(prompt, highest)]
