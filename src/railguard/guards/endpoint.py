"""``endpoint:<base_url>#<model>[?format=...]``: a guard model served by an OpenAI-compatible chat API.

vLLM, Ollama, llama.cpp's server, TGI and hosted APIs all answer ``POST <base_url>/chat/completions``.
railguard sends each input in the model's prompt format (:mod:`.formats`: WildGuard, Llama Guard 3,
ShieldGemma, Granite Guardian), greedily (``temperature: 0``), and reads the answer back into a Verdict.
Yes/No formats ask for ``logprobs`` of one token and score P(Yes); a server that gives no log-probabilities
still works, with the generated ``Yes``/``No`` as a score of 1 or 0.

Examples::

    endpoint:http://localhost:8000/v1#meta-llama/Llama-Guard-3-8B          # vLLM; format from the name
    endpoint:http://localhost:11434/v1#llama-guard3:1b?format=llamaguard3  # Ollama
    endpoint:http://gpu-box:8000#allenai/wildguard?timeout=10&concurrency=16

Options (after ``?``, or keyword options of ``load_guard``): ``format`` (wildguard|llamaguard3|shieldgemma|
granite; default: from the model name), ``threshold`` (Yes/No formats, default 0.5), ``max_tokens``
(default: what the format needs), and the HTTP options of :class:`.http.HttpOptions` (``timeout``,
``retries``, ``backoff``, ``concurrency``, ``api_key_env``). A request that fails, times out or is
answered with something unreadable gives that input an error verdict, flagged (fail-closed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..registry import register
from ..types import GuardInput, Verdict
from . import spec
from .formats import DEFAULT_THRESHOLD, Answer, Query, resolve_format, run
from .http import HttpOptions, JsonClient, RemoteError

EXAMPLE = "endpoint:http://localhost:8000/v1#meta-llama/Llama-Guard-3-8B"
TOP_LOGPROBS = 5  # Yes and No are among a guard's top few next tokens; every server accepts 5


@dataclass(frozen=True, slots=True)
class EndpointOptions(HttpOptions):
    format: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        HttpOptions.__post_init__(self)
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be at least 1, got {self.max_tokens}")


def _token_probabilities(logprobs: Any) -> dict[str, float]:
    """First generated token's alternatives, ``{"yes": p, "no": p}`` summed over spellings (" Yes", "▁yes")."""
    out: dict[str, float] = {}
    try:
        first = logprobs["content"][0]
        seen = {c["token"]: c["logprob"] for c in first.get("top_logprobs") or []}
        seen.setdefault(first["token"], first["logprob"])
    except (KeyError, IndexError, TypeError):
        return out
    for token, logprob in seen.items():
        if not isinstance(token, str) or not isinstance(logprob, int | float):
            continue
        word = token.strip().lstrip("▁Ġ").lower()
        if word in ("yes", "no"):
            out[word] = out.get(word, 0.0) + math.exp(logprob)
    return out


def chat_answer(data: Mapping[str, Any], *, scored: bool) -> Answer:
    """An OpenAI chat completion -> the format's Answer (RemoteError when it is not one)."""
    try:
        choice = data["choices"][0]
        content = choice["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise RemoteError("the answer has no choices[0].message; is this an OpenAI-compatible chat API?") from None
    probability = None
    if scored:
        p = _token_probabilities(choice.get("logprobs"))
        total = p.get("yes", 0.0) + p.get("no", 0.0)
        probability = p.get("yes", 0.0) / total if total > 0 else None
    return Answer(text=content if isinstance(content, str) else None, yes_probability=probability)


class EndpointGuard:
    """A guard model behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(self, base_url: str, model: str, options: EndpointOptions | None = None) -> None:
        options = options or EndpointOptions()
        if not model.strip():
            raise ConfigError(f"name the served model after '#', e.g. {EXAMPLE}")
        self.model = model.strip()
        self.format = resolve_format(options.format, self.model, what=f"the endpoint model '{self.model}'")
        self.threshold = options.threshold
        self.max_tokens = 1 if self.format.scored else (options.max_tokens or self.format.max_new_tokens)
        self.client = JsonClient(base_url, options, name=f"endpoint:{self.model}")
        self.name = f"endpoint:{self.client.base_url}#{self.model}"
        self.tasks = self.format.tasks
        self.thresholds = dict.fromkeys(self.tasks, self.threshold)

    def provenance(self) -> dict:
        return {"endpoint": self.client.base_url, "model": self.model, "format": self.format.name}

    def _ask(self, query: Query) -> Answer:
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in query.messages],
                                "temperature": 0, "max_tokens": self.max_tokens, "stream": False}
        if query.template_kwargs:
            body["chat_template_kwargs"] = dict(query.template_kwargs)
        if self.format.scored:
            body |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        data = self.client.post("chat/completions", body)
        try:
            return chat_answer(data, scored=self.format.scored)
        except RemoteError as exc:
            raise RemoteError(f"{self.client.name}: {exc}") from None

    def _ask_all(self, queries: list[Query]) -> list[Answer]:
        return [a if isinstance(a, Answer) else Answer(error=str(a)) for a in self.client.map(self._ask, queries)]

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        return run(self.format, inputs, self._ask_all, tier=self.name, threshold=self.threshold)

    def close(self) -> None:
        self.client.close()


@register("endpoint", f"a guard model on an OpenAI-compatible chat API (vLLM, Ollama, llama.cpp): {EXAMPLE}",
          extra="remote", modules=("httpx",), argument=True)
def _endpoint(argument: str | None = None, **options) -> EndpointGuard:
    target, given = spec.split(argument, kind="endpoint", example=EXAMPLE)
    base_url, _, model = target.partition("#")
    if not model:
        raise ConfigError(f"name the served model after '#': endpoint:{target}#MODEL, e.g. {EXAMPLE}")
    return EndpointGuard(base_url, model, spec.options(EndpointOptions, given | options, kind="endpoint"))
