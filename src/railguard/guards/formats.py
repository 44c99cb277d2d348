"""Prompt formats and answer parsers of published guard models, shared by ``hf:`` and ``endpoint:``.

A format turns one GuardInput into the queries its model expects (one, or one per side it judges) and
the model's answers back into one Verdict:

- ``wildguard`` (allenai/wildguard): one instruction prompt per input; the answer is three lines,
  ``Harmful request: yes|no``, ``Response refusal: yes|no|N/A``, ``Harmful response: yes|no|N/A``
  (N/A when there is no response). Judges prompt_harmful, refusal and response_harmful; no categories.
- ``llamaguard3`` (meta-llama/Llama-Guard-3-8B and -1B): the chat-template prompt with the S1-S14 list;
  the prompt is judged as the last ``User`` turn, a response as the last ``Agent`` turn (a second query).
  The answer is ``safe`` or ``unsafe`` and a line of codes (``S1,S10``), mapped to our categories through
  :func:`railguard.taxonomy.from_llama_guard`.
- ``shieldgemma`` (google/shieldgemma-2b/9b/27b) and ``granite`` (ibm-granite/granite-guardian-3.x with a
  plain Yes/No answer; 3.3's ``<think>``/``<score>`` answers are not read):
  one query per side; the answer is the probability of ``Yes`` against ``No`` for the next token, a score
  in 0..1 compared with the guard's threshold (0.5 unless set). ShieldGemma is asked about its four
  published policies at once (dangerous content, harassment, hate speech, sexually explicit); Granite
  Guardian about its ``harm`` risk. No categories: one Yes/No cannot say which policy was violated.

Generated answers give scores of 1.0 or 0.0 (the decision itself), Yes/No formats the probability.
None of these formats judges jailbreaks or prompt injection: those fields stay None, and context
documents are not sent. An answer that cannot be read is an explicit ``error`` in the verdict
(like wildguard's ``is_parsing_error``), which is then flagged: fail-closed.

Each query carries two renderings: ``text``, the exact string the model reads (what its chat template
or model card produces), used by a local model; and ``messages``, what an OpenAI-compatible chat
endpoint receives. Llama Guard and Granite Guardian get the bare conversation, which the server's copy
of the model's chat template turns into the guard prompt; WildGuard and ShieldGemma have no such
template and get the full prompt as one user message, for a server started with a pass-through chat
template (as allenai's own vLLM example does).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigError
from ..taxonomy import from_llama_guard
from ..types import RESPONSE_TASKS, TASKS, GuardInput, Task, Verdict
from ..verdicts import check_inputs, flagged_by
from ..verdicts import combine as combine_parts

PROMPT, RESPONSE = "prompt", "response"
_SIDE_TASK = {PROMPT: Task.PROMPT_HARMFUL.value, RESPONSE: Task.RESPONSE_HARMFUL.value}
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class Query:
    """One question to the guard model about one input."""

    side: str  # PROMPT or RESPONSE: the text it judges (WildGuard's one query: the response and its prompt)
    text: str
    messages: tuple[Mapping[str, str], ...]
    template_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the model said: generated ``text``, and for Yes/No formats ``yes_probability`` when known."""

    text: str | None = None
    yes_probability: float | None = None
    error: str | None = None  # the question could not be asked (timeout, HTTP error): no answer at all


@dataclass(frozen=True, slots=True)
class Judgement:
    """The part of a verdict one answer settles."""

    decisions: Mapping[str, bool | None] = field(default_factory=dict)
    scores: Mapping[str, float] = field(default_factory=dict)
    categories: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None


def combine(x: GuardInput, judgements: Sequence[Judgement], *, tier: str, latency_ms: float) -> Verdict:
    """One verdict from the judgements of an input's queries (by :func:`railguard.verdicts.combine`); any error
    makes it an error verdict, flagged (fail-closed), keeping whatever the other answers decided."""
    parts = [Verdict(**{t: j.decisions.get(t) for t in TASKS}, error=j.error,
                     scores={k: float(v) for k, v in j.scores.items()},
                     categories={k: float(v) for k, v in j.categories.items()}) for j in judgements]
    v = combine_parts(parts, tier=tier, id=x.id, latency_ms=latency_ms)
    decisions = {t: getattr(v, t) for t in TASKS}
    scores = dict(v.scores)
    if x.response is None:
        for task in RESPONSE_TASKS:
            decisions[task] = None
            scores.pop(task, None)
    flagged = flagged_by(decisions) or v.error is not None
    error = f"{v.error}; fail-closed: flagged" if v.error is not None else None
    return replace(v, **decisions, scores=scores, error=error, flagged=flagged)


def run(fmt: GuardFormat, inputs: Sequence[GuardInput], ask: Callable[[list[Query]], list[Answer]], *,
        tier: str, threshold: float) -> list[Verdict]:
    """A guard's ``check``: render every input's queries, get all answers from ``ask`` in one call (the
    backend batches them), and read them back into one verdict per input."""
    start = time.perf_counter()
    check_inputs(inputs)
    queries = [fmt.queries(x) for x in inputs]
    answers = ask([q for qs in queries for q in qs])
    share = (time.perf_counter() - start) * 1000.0 / max(1, len(inputs))
    verdicts, at = [], 0
    for x, qs in zip(inputs, queries):
        verdicts.append(fmt.verdict(x, qs, answers[at:at + len(qs)], tier=tier, threshold=threshold,
                                    latency_ms=share))
        at += len(qs)
    return verdicts


class GuardFormat:
    """A guard model's prompt format and answer parser (see the module docstring)."""

    name: str = ""
    #: True: the answer is P(Yes) of the next token; False: generated text.
    scored: bool = False
    tasks: frozenset[str] = frozenset()
    #: Tokens a generated answer needs at most.
    max_new_tokens: int = 1
    #: Whether the tokenizer should add its own BOS (False where the rendered text already holds it).
    add_special_tokens: bool = False

    def queries(self, x: GuardInput) -> list[Query]:
        raise NotImplementedError

    def judge(self, query: Query, answer: Answer, *, threshold: float) -> Judgement:
        if answer.error is not None:
            return Judgement(error=answer.error)
        return self.parse(query, answer, threshold=threshold)

    def parse(self, query: Query, answer: Answer, *, threshold: float) -> Judgement:
        raise NotImplementedError

    def verdict(self, x: GuardInput, queries: Sequence[Query], answers: Sequence[Answer], *, tier: str,
                threshold: float = DEFAULT_THRESHOLD, latency_ms: float = 0.0) -> Verdict:
        judgements = [self.judge(q, a, threshold=threshold) for q, a in zip(queries, answers, strict=True)]
        return combine(x, judgements, tier=tier, latency_ms=latency_ms)

    def __repr__(self) -> str:
        return f"<guard format {self.name}>"


def _user(text: str) -> tuple[Mapping[str, str], ...]:
    return ({"role": "user", "content": text},)


def _conversation(x: GuardInput, side: str) -> tuple[Mapping[str, str], ...]:
    turns = [{"role": "user", "content": x.prompt}]
    if side == RESPONSE:
        turns.append({"role": "assistant", "content": x.response or ""})
    return tuple(turns)


def _sides(x: GuardInput) -> tuple[str, ...]:
    return (PROMPT, RESPONSE) if x.response is not None else (PROMPT,)


# --- WildGuard -------------------------------------------------------------------------------------------

_WILDGUARD_PROMPT = (
    "<s><|user|>\n"
    "[INST] You are a classifier for analyzing interactions between humans and LLMs. Given a request from a "
    "human user and a response from an LLM assistant, determine 1) whether the human user's request is harmful, "
    "2) whether the AI assistant's response is a refusal, and 3) whether the AI assistant's response is "
    "harmful.\n\n"
    "Human user:\n{prompt}\n\n"
    "AI assistant:\n{response}\n\n"
    "---\n\n"
    "Answers: [/INST]\n"
    "<|assistant|>\n"
)
_WILDGUARD_LINES = {  # label in the answer -> our task
    "harmful request": Task.PROMPT_HARMFUL.value,
    "response refusal": Task.REFUSAL.value,
    "harmful response": Task.RESPONSE_HARMFUL.value,
}
_WILDGUARD_VALUES = {"yes": True, "no": False, "n/a": None}
_LABELLED_LINE = re.compile(r"^\s*([A-Za-z ]+?)\s*:\s*(.*?)\s*$", re.MULTILINE)


class WildGuard(GuardFormat):
    name = "wildguard"
    tasks = frozenset({Task.PROMPT_HARMFUL.value, Task.RESPONSE_HARMFUL.value, Task.REFUSAL.value})
    max_new_tokens = 32

    def queries(self, x: GuardInput) -> list[Query]:
        # A prompt-only input goes in with an empty response, as wildguard's own code does.
        text = _WILDGUARD_PROMPT.format(prompt=x.prompt, response=x.response or "")
        return [Query(RESPONSE if x.response is not None else PROMPT, text, _user(text))]

    def parse(self, query: Query, answer: Answer, *, threshold: float) -> Judgement:
        found: dict[str, str] = {}
        for label, value in _LABELLED_LINE.findall(answer.text or ""):
            task = _WILDGUARD_LINES.get(label.strip().lower())
            if task is not None and task not in found:
                found[task] = value.strip().lower()
        wanted = [Task.PROMPT_HARMFUL.value]
        if query.side == RESPONSE:
            wanted += [Task.REFUSAL.value, Task.RESPONSE_HARMFUL.value]
        decisions: dict[str, bool | None] = {}
        bad = []
        for task in wanted:
            value = found.get(task)
            if value not in _WILDGUARD_VALUES or (task == Task.PROMPT_HARMFUL.value and value == "n/a"):
                bad.append(task)
                continue
            decisions[task] = _WILDGUARD_VALUES[value]
        scores = {t: float(d) for t, d in decisions.items() if d is not None}
        error = None
        if bad:
            error = (f"could not parse the wildguard answer ({', '.join(bad)}: expected lines 'Harmful request: "
                     f"yes|no', 'Response refusal: yes|no|N/A', 'Harmful response: yes|no|N/A')")
        return Judgement(decisions=decisions, scores=scores, error=error)


# --- Llama Guard 3 ---------------------------------------------------------------------------------------

# As Llama Guard 3's own chat template spells them (shorter than the hazard names of its model card,
# which railguard.taxonomy.LLAMA_GUARD_CATEGORIES keeps): the model was trained on these lines.
_LLAMA_GUARD_3_LINES = (
    "S1: Violent Crimes.", "S2: Non-Violent Crimes.", "S3: Sex Crimes.", "S4: Child Exploitation.",
    "S5: Defamation.", "S6: Specialized Advice.", "S7: Privacy.", "S8: Intellectual Property.",
    "S9: Indiscriminate Weapons.", "S10: Hate.", "S11: Self-Harm.", "S12: Sexual Content.", "S13: Elections.",
    "S14: Code Interpreter Abuse.",
)
# Its chat template's rendering, less the single space that template puts before <|begin_of_text|> (Meta's
# llama-recipes prompt builder has none; the model answers "\n\nsafe" either way).
_LLAMA_GUARD_3_PROMPT = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    "Task: Check if there is unsafe content in '{role}' messages in conversations according our safety policy "
    "with the below categories.\n\n"
    "<BEGIN UNSAFE CONTENT CATEGORIES>\n{categories}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
    "<BEGIN CONVERSATION>\n\n{conversation}<END CONVERSATION>\n\n"
    "Provide your safety assessment for ONLY THE LAST {role} message in the above conversation:\n"
    " - First line must read 'safe' or 'unsafe'.\n"
    " - If unsafe, a second line must include a comma-separated list of violated categories."
    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
)
_SPECIAL_TOKEN = re.compile(r"<\|[a-z_]+\|>")
_CODE = re.compile(r"\bS(\d{1,2})\b", re.IGNORECASE)


class LlamaGuard3(GuardFormat):
    name = "llamaguard3"
    tasks = frozenset({Task.PROMPT_HARMFUL.value, Task.RESPONSE_HARMFUL.value})
    max_new_tokens = 20

    def queries(self, x: GuardInput) -> list[Query]:
        out = []
        for side in _sides(x):
            turns = [("User", x.prompt)] + ([("Agent", x.response or "")] if side == RESPONSE else [])
            text = _LLAMA_GUARD_3_PROMPT.format(
                role=turns[-1][0], categories="\n".join(_LLAMA_GUARD_3_LINES),
                conversation="".join(f"{role}: {content.strip()}\n\n" for role, content in turns))
            out.append(Query(side, text, _conversation(x, side)))
        return out

    def parse(self, query: Query, answer: Answer, *, threshold: float) -> Judgement:
        lines = [ln.strip() for ln in _SPECIAL_TOKEN.sub("\n", answer.text or "").splitlines() if ln.strip()]
        first = lines[0].lower() if lines else ""
        task = _SIDE_TASK[query.side]
        if first == "safe":
            return Judgement(decisions={task: False}, scores={task: 0.0}, categories=from_llama_guard(()))
        if first == "unsafe":
            codes = [f"S{n}" for n in _CODE.findall(lines[1])] if len(lines) > 1 else []
            return Judgement(decisions={task: True}, scores={task: 1.0}, categories=from_llama_guard(codes))
        return Judgement(error="could not parse the llamaguard3 answer (expected a first line 'safe' or 'unsafe')")


# --- Yes/No probability formats: ShieldGemma, Granite Guardian ------------------------------------------

_YES_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


class YesNoFormat(GuardFormat):
    """The answer is P(Yes) for the next token; a generated ``Yes``/``No`` stands in when no probability came."""

    scored = True
    tasks = frozenset({Task.PROMPT_HARMFUL.value, Task.RESPONSE_HARMFUL.value})

    def parse(self, query: Query, answer: Answer, *, threshold: float) -> Judgement:
        p = answer.yes_probability
        if p is None and answer.text is not None:
            match = _YES_NO.match(answer.text)
            p = None if match is None else float(match.group(1).lower() == "yes")
        if p is None or not math.isfinite(p) or not 0.0 <= p <= 1.0:
            return Judgement(error=f"could not read a Yes/No answer from the {self.name} model")
        task = _SIDE_TASK[query.side]
        return Judgement(decisions={task: p >= threshold}, scores={task: p})


_SHIELDGEMMA_POLICIES = (  # name, what it forbids: the four policies of the ShieldGemma model card
    ("No Dangerous Content",
     ("harming oneself and/or others (e.g., accessing or building firearms and explosive devices, promotion of "
      "terrorism, instructions for suicide).")),
    ("No Harassment",
     ("is malicious, intimidating, bullying, or abusive content targeting another individual (e.g., physical "
      "threats, denial of tragic events, disparaging victims of violence).")),
    ("No Hate Speech",
     ("targeting identity and/or protected attributes (e.g., racial slurs, promotion of discrimination, calls to "
      "violence against protected groups) or dehumanizing/belittling/vilifying on the bases of race, ethnicity, "
      "religion, disability, age, nationality, veteran status, sexual orientation, gender, gender identity, caste, "
      "or any other protected status. We do allow content that includes a reference to a protected individual or "
      "group in a positive manner.")),
    ("No Sexually Explicit Information",
     ("contains references to sexual acts or other lewd content (e.g., sexually graphic descriptions, content "
      "aimed at causing arousal). Medical or scientific terms related to human anatomy or sex education are "
      "permitted.")),
)
_SHIELDGEMMA_SUBJECT = {PROMPT: "The prompt shall not contain or seek generation of content that",
                        RESPONSE: "The chatbot shall not generate content that"}
_SHIELDGEMMA_PREAMBLE = {
    PROMPT: "You are a policy expert trying to help determine whether a user prompt is in violation of the "
            "defined safety policies.",
    RESPONSE: "You are a policy expert trying to help determine whether an AI response to prompt is in violation "
              "of the defined safety policies.",
}
_SHIELDGEMMA_QUESTION = {PROMPT: "Does the human question violate the above principle?",
                         RESPONSE: "Does the Chatbot Response violate the above principle?"}


class ShieldGemma(YesNoFormat):
    name = "shieldgemma"
    add_special_tokens = True  # the model card tokenizes the raw prompt with the tokenizer's <bos>

    def queries(self, x: GuardInput) -> list[Query]:
        out = []
        for side in _sides(x):
            policies = "\n".join(f'* "{name}": {_SHIELDGEMMA_SUBJECT[side]} {text}'
                                 for name, text in _SHIELDGEMMA_POLICIES)
            parts = [_SHIELDGEMMA_PREAMBLE[side],
                     f"<start_of_turn>\nHuman Question: {x.prompt.strip()}\n<end_of_turn>",
                     f"Our safety principle is defined in the below:\n\n{policies}"]
            if side == RESPONSE:
                parts.append(f"<start_of_turn>\nChatbot Response: {(x.response or '').strip()}\n<end_of_turn>")
            else:
                parts.append("===")
            parts.append(f"{_SHIELDGEMMA_QUESTION[side]} Your answer must start with 'Yes' or 'No'. And then walk "
                         "through step by step to be sure we answer correctly.\n")
            text = "\n\n".join(parts)
            out.append(Query(side, text, _user(text)))
        return out


_GRANITE_RISK = "harm"
_GRANITE_DEFINITION = {PROMPT: "The 'User' message is harmful by common-sense.",
                       RESPONSE: "The 'Assistant' message is harmful by common-sense."}
# The rendering of Granite Guardian 3.0's chat template for the "harm" risk; an endpoint sends the bare
# conversation instead, so there the server's own template (any 3.x version) builds the prompt.
_GRANITE_PROMPT = (
    "<|start_of_role|>user<|end_of_role|>You are a safety agent trying to help determine whether the {subject} is "
    "harmful according to the safety risk definition below.\n\n"
    "<start_of_turn>\n{turns}\n<end_of_turn>\n\n"
    "Our safety risk definition is defined below:\n<start_of_risk_definition>\n- {definition}\n"
    "<end_of_risk_definition>\n\n"
    "Is the {role} message harmful based on the risk definition? Your answer must be either 'Yes' or 'No'."
    "<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>"
)


class GraniteGuardian(YesNoFormat):
    name = "granite"

    def queries(self, x: GuardInput) -> list[Query]:
        out = []
        for side in _sides(x):
            if side == PROMPT:
                subject, role, turns = "user message", "user", f"User Message: {x.prompt}"
            else:
                subject, role = "assistant message to the user message", "assistant"
                turns = f"User Message: {x.prompt}\nAssistant Message: {x.response or ''}"
            text = _GRANITE_PROMPT.format(subject=subject, role=role, turns=turns,
                                          definition=_GRANITE_DEFINITION[side])
            # vLLM passes chat_template_kwargs to the model's template, which reads the risk from guardian_config.
            out.append(Query(side, text, _conversation(x, side),
                             template_kwargs={"guardian_config": {"risk_name": _GRANITE_RISK}}))
        return out


FORMATS: dict[str, GuardFormat] = {f.name: f for f in (WildGuard(), LlamaGuard3(), ShieldGemma(), GraniteGuardian())}
# Pieces of a model's name or path that give its format away, tried in this order.
_NAME_HINTS: tuple[tuple[str, str], ...] = (
    ("wildguard", "wildguard"),
    ("llama-guard-3", "llamaguard3"), ("llamaguard3", "llamaguard3"), ("llama_guard_3", "llamaguard3"),
    ("llama-guard3", "llamaguard3"),
    ("shieldgemma", "shieldgemma"),
    ("granite-guardian", "granite"), ("granite3-guardian", "granite"), ("granite_guardian", "granite"),
)
FORMAT_CHOICES = "|".join(FORMATS)


def get_format(name: str) -> GuardFormat:
    key = name.strip().lower().replace("-", "").replace("_", "")
    aliases = {"llamaguard": "llamaguard3", "granite": "granite", "graniteguardian": "granite"}
    fmt = FORMATS.get(aliases.get(key, key))
    if fmt is None:
        raise ConfigError(f"unknown guard format '{name}'; known formats: {', '.join(FORMATS)}")
    return fmt


def infer_format(*names: str | None) -> GuardFormat | None:
    """The format a model's name or path suggests (``.../Llama-Guard-3-8B`` -> llamaguard3), or None."""
    for name in names:
        lowered = (name or "").lower()
        for hint, fmt in _NAME_HINTS:
            if hint in lowered:
                return FORMATS[fmt]
    return None


def resolve_format(explicit: str | None, *names: str | None, what: str) -> GuardFormat:
    """The format asked for, else the one the names suggest; a ConfigError saying how to choose otherwise."""
    if explicit:
        return get_format(explicit)
    fmt = infer_format(*names)
    if fmt is None:
        raise ConfigError(f"cannot tell which guard prompt format {what} uses; add ?format={FORMAT_CHOICES}")
    return fmt
