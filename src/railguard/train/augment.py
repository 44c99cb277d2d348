"""Synthetic training examples that the public pool lacks.

- Hard negatives: benign prompts that use alarming words (``kill a Python process``), fiction and games,
  history, definitions, safety questions. Without them a model learns "scary word = harmful".
- Contrasts: the same words aimed at people, so recall does not drop.
- Refusals: model answers that decline (fully or partly), paired with harmful and benign prompts; the
  pool has few labelled refusals.
- Documents: injections and harmful requests buried in benign text (with the clean text as a negative for
  injection and prompt harm), and benign posts run together (long informal text is not harmful by its genre).
- Keyword categories for harmful prompts whose source gives none.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Any

from .data import BENIGN_CATS, BENIGN_PROMPT, PROMPT, Example, _cats
from .templates import response_prefixes, template_examples


def _load_words() -> dict[str, Any]:
    return json.loads((resources.files("railguard") / "data" / "augment.json").read_text(encoding="utf-8"))


# The word lists live in railguard/data/augment.json, read once here.
_WORDS = _load_words()
_VERBS: list[tuple[str, list[str], list[str]]] = [(v["verb"], v["benign"], v["harmful"]) for v in _WORDS["verbs"]]
_VERB_CATS: dict[str, list[str]] = {v["verb"]: v["categories"] for v in _WORDS["verbs"]}
_TEMPLATES: list[str] = _WORDS["question_templates"]
_BENIGN_EXTRA: list[str] = [text for group in _WORDS["benign_prompts"].values() for text in group]
_HARMFUL_EXTRA: list[tuple[str, list[str]]] = [(p["text"], p["categories"]) for p in _WORDS["harmful_prompts"]]
_REFUSAL_OPENERS: list[str] = _WORDS["refusal_parts"]["openers"]
_REFUSAL_ACTS: list[str] = _WORDS["refusal_parts"]["acts"]
_REFUSAL_REASONS: list[str] = _WORDS["refusal_parts"]["reasons"]
_REFUSAL_ALTERNATIVES: list[str] = _WORDS["refusal_parts"]["alternatives"]
REFUSALS: list[str] = _WORDS["refusals"]
PARTIAL: list[str] = _WORDS["partial_refusals"]
COMPLIANCE: list[str] = _WORDS["compliance"]
_KEYWORDS: list[tuple[re.Pattern, str]] = [(re.compile(pattern, re.I), category)
                                           for category, pattern in _WORDS["category_keywords"].items()]
_TASK_INJECTIONS: list[str] = _WORDS["task_injections"]
_HARM_TERMS: list[str] = _WORDS["harm_terms"]
_SAFE_TEMPLATES: list[str] = _WORDS["safe_templates"]
_REQUEST_FRAMES: list[str] = _WORDS["request_frames"]
_HARMFUL_OBJECTIVES: list[tuple[str, list[str]]] = [(o["text"], o["categories"]) for o in _WORDS["harmful_objectives"]]
_BENIGN_OBJECTIVES: list[str] = _WORDS["benign_objectives"]
_GROUPS: list[str] = _WORDS["groups"]
_GROUP_TEMPLATES: list[str] = _WORDS["group_templates"]
_WEAPONS: list[str] = _WORDS["weapons"]
_WEAPON_FRAMES: list[str] = _WORDS["weapon_frames"]


def keyword_categories(text: str) -> list[str]:
    return sorted({cat for pattern, cat in _KEYWORDS if pattern.search(text)})


def with_keyword_categories(examples: Iterable[Example]) -> Iterator[Example]:
    """Give harmful prompt examples without category labels the categories their keywords name."""
    for ex in examples:
        if (ex.view == PROMPT and ex.targets.get("prompt_harmful") == 1.0 and "violence" not in ex.targets
                and ex.lang == "en"):
            cats = keyword_categories(ex.text)
            if cats:
                ex.targets.update(_cats(cats))
        yield ex


def _prompt(text: str, harmful: bool, cats: list[str] | None = None, weight: float = 1.5) -> Example:
    targets = {"prompt_harmful": float(harmful), "jailbreak": 0.0, "injection": 0.0}
    targets.update(_cats(cats) if harmful and cats else BENIGN_CATS if not harmful else {})
    return Example(text=text, targets=targets, source="synthetic", weight=weight)


def hard_negatives_and_contrasts(rng: random.Random) -> list[Example]:
    out = []
    for verb, benign, harmful in _VERBS:
        for obj in benign:
            for t in rng.sample(_TEMPLATES, 3):
                out.append(_prompt(t.format(v=verb, o=obj), False))
        for obj in harmful:
            for t in rng.sample(_TEMPLATES, 3):
                out.append(_prompt(t.format(v=verb, o=obj), True, _VERB_CATS[verb]))
    out += [_prompt(t, False) for t in _BENIGN_EXTRA]
    out += [_prompt(t, True, cats) for t, cats in _HARMFUL_EXTRA]
    return out


def composed_refusal(rng: random.Random, topic: str) -> str:
    """A refusal assembled from an opener, the act declined, a reason and an offered alternative."""
    act = rng.choice(_REFUSAL_ACTS).format(x=topic)
    return (f"{rng.choice(_REFUSAL_OPENERS)} {act}.{rng.choice(_REFUSAL_REASONS)}"
            f"{rng.choice(_REFUSAL_ALTERNATIVES)}")


def _slice_around(doc: str, insert: str, rng: random.Random, width: int = 480) -> tuple[str, str]:
    """(attacked slice, clean slice) of a document with ``insert`` placed at a random sentence boundary."""
    cuts = [i + 1 for i, ch in enumerate(doc) if ch in ".\n"] or [len(doc)]
    at = rng.choice(cuts)
    attacked = doc[:at] + " " + insert + " " + doc[at:]
    pad = max(0, (width - len(insert)) // 2)
    start = max(0, at - pad)
    return attacked[start : at + len(insert) + 2 + pad], doc[start : start + width]


def indirect_injections(documents: list[str], injections: list[str], rng: random.Random,
                        n: int = 1200) -> list[Example]:
    """Injections hidden inside benign documents (positives) and the same documents clean (negatives)."""
    out = []
    if not documents:
        return out
    for _ in range(n):
        doc = rng.choice(documents)
        insert = rng.choice(_TASK_INJECTIONS) if rng.random() < 0.4 or not injections else rng.choice(injections)
        attacked, clean = _slice_around(doc, insert, rng)
        out.append(Example(text=attacked, targets={"injection": 1.0}, source="synthetic_indirect"))
        out.append(Example(text=clean, targets={"injection": 0.0, "jailbreak": 0.0, "prompt_harmful": 0.0},
                           source="synthetic_indirect"))
    return out


def embedded_harm(documents: list[str], harmful: list[str], rng: random.Random, n: int = 800) -> list[Example]:
    """A harmful request buried in benign text is still harmful: long inputs are judged by windows where
    the request is a minority of the tokens."""
    out = []
    if not documents or not harmful:
        return out
    for _ in range(n):
        attacked, _clean = _slice_around(rng.choice(documents), rng.choice(harmful), rng)
        out.append(Example(text=attacked, targets={"prompt_harmful": 1.0}, source="synthetic_embedded_harm"))
    return out


#: Sources whose benign rows are things people post (tweets, comments, opinions, news), not requests.
STATEMENT_SOURCES = frozenset({"davidson", "toxigen", "ethos", "synthetic_lookalikes"})


def benign_mixtures(statements: list[str], rng: random.Random, n: int = 1200) -> list[Example]:
    """Several benign posts run together, as on a comment page or in a thread: without them, long informal
    text is harmful by its genre (the long texts of the pool are jailbreaks, toxic threads and documents with
    harm inserted). :func:`embedded_harm` puts a harmful request into the same kind of text."""
    out = []
    if len(statements) < 10:
        return out
    for _ in range(n):
        sep = rng.choice((" ", "\n", "\n\n"))
        text = sep.join(rng.sample(statements, rng.randint(3, 9)))
        out.append(Example(text=text, targets=dict(BENIGN_PROMPT), source="synthetic_mixtures"))
    return out


def weapon_requests(rng: random.Random) -> list[Example]:
    """Short, plain requests to build weapons: the most common form of the clearest harm."""
    return [_prompt(f.format(w=w), True, ["weapons"]) for w in _WEAPONS for f in rng.sample(_WEAPON_FRAMES, 4)]


def harmful_requests(rng: random.Random) -> list[Example]:
    """Direct harmful requests across categories (code, chemistry, fraud...) and benign look-alikes."""
    out = []
    for objective, cats in _HARMFUL_OBJECTIVES:
        for frame in rng.sample(_REQUEST_FRAMES, 3):
            out.append(_prompt(frame.format(o=objective), True, cats))
    for objective in _BENIGN_OBJECTIVES:
        for frame in rng.sample(_REQUEST_FRAMES[:6], 2):
            out.append(_prompt(frame.format(o=objective), False))
    for group in _GROUPS:
        for t in rng.sample(_GROUP_TEMPLATES, 3):
            out.append(_prompt(t.format(g=group), False))
    return out


def definitional_negatives(rng: random.Random) -> list[Example]:
    """Questions about harmful topics that ask for understanding, prevention or history, not for help."""
    return [_prompt(t.format(t=term), False) for term in _HARM_TERMS for t in rng.sample(_SAFE_TEMPLATES, 3)]


def _topic(prompt: str) -> str:
    words = re.sub(r"[^\w\s'-]", "", prompt).split()
    return " ".join(words[:8]).lower() or "this"


def synthetic_responses(harmful_prompts: list[str], benign_prompts: list[str], rng: random.Random,
                        n: int = 1500) -> list[Example]:
    """Refusals (full and partial) and compliant answers paired with harmful and benign prompts."""
    out = []
    for _ in range(n):
        harmful = rng.random() < 0.6
        prompt = rng.choice(harmful_prompts if harmful else benign_prompts)
        kind = rng.random()
        if kind < 0.25:
            response = rng.choice(REFUSALS)
            targets = {"refusal": 1.0, "response_harmful": 0.0, **BENIGN_CATS}
        elif kind < 0.5:
            response = composed_refusal(rng, _topic(prompt))
            targets = {"refusal": 1.0, "response_harmful": 0.0, **BENIGN_CATS}
        elif kind < 0.7:
            response = rng.choice(PARTIAL).format(x=_topic(prompt))
            targets = {"refusal": 1.0, "response_harmful": 0.0, **BENIGN_CATS}
        else:
            if harmful:  # compliance with a harmful request is harmful only when the content is: leave that head out
                response = rng.choice(COMPLIANCE).format(x=_topic(prompt))
                targets = {"refusal": 0.0}
            else:
                response = rng.choice(COMPLIANCE).format(x=_topic(prompt))
                targets = {"refusal": 0.0, "response_harmful": 0.0, **BENIGN_CATS}
        out.append(Example(text=prompt, pair=response, targets=targets, source="synthetic_responses",
                           view="response"))
    return out


def augment(pool_examples: list[Example], seed: int) -> list[Example]:
    """All synthetic examples for a pool built from ``pool_examples`` (used only for their prompts)."""
    rng = random.Random(seed + 1)
    harmful = [e.text for e in pool_examples if e.view == PROMPT and e.targets.get("prompt_harmful") == 1.0
               and e.lang == "en" and len(e.text) < 400]
    benign = [e.text for e in pool_examples if e.view == PROMPT and e.targets.get("prompt_harmful") == 0.0
              and e.lang == "en" and len(e.text) < 400]
    out = (hard_negatives_and_contrasts(rng) + definitional_negatives(rng) + harmful_requests(rng)
           + weapon_requests(rng))
    if harmful and benign:
        out += synthetic_responses(harmful, benign, rng, n=2500)
    documents = [e.text for e in pool_examples if e.source == "benign_documents"]
    injections = [e.text for e in pool_examples if e.view == PROMPT and e.targets.get("injection") == 1.0
                  and e.source != "bipia" and 20 < len(e.text) < 300]
    out += indirect_injections(documents, injections, rng)
    templates = template_examples(seed)
    statements = [e.text for e in pool_examples + templates if e.source in STATEMENT_SOURCES and e.view == PROMPT
                  and e.targets.get("prompt_harmful") == 0.0 and 20 < len(e.text) < 400]
    mixtures = benign_mixtures(statements, rng)
    out += embedded_harm(documents + [m.text for m in mixtures], [h for h in harmful if len(h) < 200], rng)
    out += mixtures + templates
    out += response_prefixes(pool_examples + out, rng)
    return out
