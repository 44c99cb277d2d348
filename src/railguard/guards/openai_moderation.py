"""``openai-moderation:<base_url>[#model]``: any ``/v1/moderations`` API as a guard.

OpenAI's own (``openai-moderation:https://api.openai.com/v1#omni-moderation-latest``, key from
``OPENAI_API_KEY``) or another railguard server (``openai-moderation:http://guard-host:8000``).

How its answers map onto a Verdict:

- every input sends its prompt, and its response when it has one, as separate texts of one request
  (``batch_size`` texts per request, requests of a batch in parallel up to ``concurrency``);
- ``prompt_harmful`` is the prompt's ``flagged``; ``response_harmful`` the response's ``flagged`` (the
  moderation API judges a text alone, so the response is judged without its prompt);
- the task scores are the highest ``category_scores`` value of that text (OpenAI gives no overall score,
  so a text can be flagged with a score under 0.5, e.g. a railguard server flags jailbreaks that have no
  OpenAI category);
- ``categories``: OpenAI's scores mapped back onto ours with :func:`railguard.taxonomy.from_openai`
  (the higher of prompt and response);
- ``refusal``, ``jailbreak`` and ``injection`` stay None; context documents are not sent.

Options: ``batch_size`` (texts per request, default 32) and the HTTP options of :class:`.http.HttpOptions`.
A failed request gives its inputs error verdicts, flagged (fail-closed).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..registry import register
from ..taxonomy import from_openai
from ..types import GuardInput, Task, Verdict
from . import spec
from .formats import Judgement, check_inputs, combine
from .http import HttpOptions, JsonClient, RemoteError

EXAMPLE = "openai-moderation:https://api.openai.com/v1#omni-moderation-latest"


@dataclass(frozen=True, slots=True)
class ModerationOptions(HttpOptions):
    batch_size: int = 32

    def __post_init__(self) -> None:
        HttpOptions.__post_init__(self)
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")


def judgement(result: Any, task: str) -> Judgement:
    """One ``results[i]`` of a moderation answer -> the decision, score and categories of one text."""
    if not isinstance(result, Mapping) or not isinstance(result.get("flagged"), bool):
        return Judgement(error="the moderation result has no boolean 'flagged'")
    scores = result.get("category_scores")
    scores = scores if isinstance(scores, Mapping) else {}
    numbers = [float(v) for v in scores.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    return Judgement(decisions={task: result["flagged"]}, scores={task: max(numbers, default=0.0)},
                     categories=from_openai(scores))


class ModerationGuard:
    """A ``/moderations`` API behind the Guard protocol."""

    tasks = frozenset({Task.PROMPT_HARMFUL.value, Task.RESPONSE_HARMFUL.value})

    def __init__(self, base_url: str, model: str | None = None, options: ModerationOptions | None = None) -> None:
        self.options = options or ModerationOptions()
        self.model = (model or "").strip() or None
        self.client = JsonClient(base_url, self.options, name="openai-moderation")
        self.name = f"openai-moderation:{self.client.base_url}" + (f"#{self.model}" if self.model else "")

    def provenance(self) -> dict:
        return {"endpoint": self.client.base_url, "model": self.model}

    def _moderate(self, texts: list[str]) -> list[Any]:
        body: dict[str, Any] = {"input": texts}
        if self.model:
            body["model"] = self.model
        results = self.client.post("moderations", body).get("results")
        if not isinstance(results, list) or len(results) != len(texts):
            raise RemoteError(f"{self.client.name}: the answer does not hold one result per text")
        return results

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        start = time.perf_counter()
        check_inputs(inputs)
        texts: list[tuple[int, str, str]] = []  # (input index, task, text)
        for i, x in enumerate(inputs):
            texts.append((i, Task.PROMPT_HARMFUL.value, x.prompt))
            if x.response is not None:
                texts.append((i, Task.RESPONSE_HARMFUL.value, x.response))
        size = self.options.batch_size
        chunks = [texts[k:k + size] for k in range(0, len(texts), size)]
        answers = self.client.map(lambda chunk: self._moderate([t for _, _, t in chunk]), chunks)
        judgements: list[list[Judgement]] = [[] for _ in inputs]
        for chunk, answer in zip(chunks, answers):
            for n, (i, task, _) in enumerate(chunk):
                failed = isinstance(answer, RemoteError)
                judgements[i].append(Judgement(error=str(answer)) if failed else judgement(answer[n], task))
        share = (time.perf_counter() - start) * 1000.0 / max(1, len(inputs))
        return [combine(x, js, tier=self.name, latency_ms=share) for x, js in zip(inputs, judgements)]

    def close(self) -> None:
        self.client.close()


@register("openai-moderation", f"any /v1/moderations API (OpenAI's, another railguard server): {EXAMPLE}",
          extra="remote", modules=("httpx",), argument=True)
def _openai_moderation(argument: str | None = None, **options) -> ModerationGuard:
    target, given = spec.split(argument, kind="openai-moderation", example=EXAMPLE)
    base_url, _, model = target.partition("#")
    return ModerationGuard(base_url, model, spec.options(ModerationOptions, given | options, kind="openai-moderation"))
