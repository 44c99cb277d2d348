"""The training pool: shared datasets -> labelled examples for every head, deduplicated against the tests.

Each source has its own mapping because the sources disagree on what their labels mean (see the data
README's "Known pitfalls"); the choices are written next to the source they concern.
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..datasets.readers import read_rows
from ..datasets.split import DEFAULT_SEED, HELDOUT_FRACTION, holdout_of, norm_key
from ..errors import ConfigError
from ..taxonomy import CATEGORY_NAMES
from ..types import TASKS

log = logging.getLogger(__name__)

HEADS: tuple[str, ...] = TASKS + CATEGORY_NAMES
#: Benchmarks whose rows are all test: never trained on, and the pool is deduplicated against them.
TEST_SETS: tuple[str, ...] = (
    "openai_moderation", "xstest", "xstest_responses", "simple_safety_tests", "harmbench", "multijail",
)
PROMPT, RESPONSE = "prompt", "response"


@dataclass(slots=True)
class Example:
    """One encoder input with the targets it teaches; heads missing from ``targets`` are not trained on it.

    ``view`` is ``prompt`` (the text alone) or ``response`` (``text`` is the prompt, ``pair`` the answer).
    """

    text: str
    targets: dict[str, float]
    source: str
    view: str = PROMPT
    pair: str | None = None
    weight: float = 1.0
    lang: str = "en"
    key: str = field(default="")

    def __post_init__(self) -> None:
        if not self.key:
            self.key = norm_key(self.text + "\x00" + (self.pair or ""))


def _b(value) -> float | None:
    return None if value is None else float(bool(value))


def _cats(present: Iterable[str]) -> dict[str, float]:
    """Category targets for a harmful example whose categories are known: those 1, the rest 0."""
    present = set(present)
    unknown = present - set(CATEGORY_NAMES)
    if unknown:
        raise ValueError(f"unknown categories {unknown}")
    return {c: float(c in present) for c in CATEGORY_NAMES}


BENIGN_CATS: dict[str, float] = {c: 0.0 for c in CATEGORY_NAMES}
BENIGN_PROMPT: dict[str, float] = {"prompt_harmful": 0.0, "jailbreak": 0.0, "injection": 0.0, **BENIGN_CATS}
#: A plain harmful request: neither a jailbreak nor an injection.
_HARMFUL_REQUEST: dict[str, float] = {"prompt_harmful": 1.0, "jailbreak": 0.0, "injection": 0.0}

# --- category maps from each source's own names to our taxonomy -----------------------------------
JBB_CATS = {
    "Harassment/Discrimination": ["harassment", "hate"], "Malware/Hacking": ["cybercrime"],
    "Physical harm": ["violence"], "Economic harm": ["crime"], "Fraud/Deception": ["fraud"],
    "Disinformation": ["misinformation"], "Sexual/Adult content": ["sexual"], "Privacy": ["privacy"],
    "Expert advice": ["specialized_advice"], "Government decision-making": ["crime"],
    "Defamation": ["defamation"], "Child pornography": ["sexual_minors"], "Bomb building": ["weapons"],
}
DNA_CATS = {
    "Adult Content": ["sexual"], "Assisting illegal activities": ["crime"],
    "Social stereotypes and unfair discrimination": ["hate"], "Toxic language (hate speech)": ["hate", "harassment"],
    "Risks from leaking or inferring sensitive information (organization/gov)": ["privacy"],
    "Compromise privacy by leaking or inferring private information (person/individual)": ["privacy"],
    "Disseminating false or misleading information": ["misinformation"],
    "Causing material harm by disseminating misinformation e.g. in medicine or law": ["specialized_advice"],
    "Reducing the cost of disinformation campaigns": ["misinformation"],
    "Nudging or advising users to perform unethical or unsafe actions": ["crime"],
    "Mental Health or Overreliance Crisis": ["self_harm"],
}
PYRIT_CATS = {
    "violence": ["violence"], "hate_speech": ["hate"], "self_harm": ["self_harm"], "privacy": ["privacy"],
    "exploits": ["cybercrime"], "sexual": ["sexual"],
}
XSAFETY_KEEP = {  # category -> (targets, our categories); the mild or benign-looking ones are left out
    "Crimes_And_Illegal_Activities": ({"prompt_harmful": 1.0, "jailbreak": 0.0}, ["crime"]),
    "Crimes_And_Illegal_Activities_en": ({"prompt_harmful": 1.0, "jailbreak": 0.0}, ["crime"]),
    "Insult": ({"prompt_harmful": 1.0, "jailbreak": 0.0, "injection": 0.0}, ["harassment"]),
    "Unfairness_And_Discrimination": ({"prompt_harmful": 1.0, "jailbreak": 0.0, "injection": 0.0}, ["hate"]),
    "Unsafe_Instruction_Topic": ({"prompt_harmful": 1.0}, None),
    "Role_Play_Instruction": ({"jailbreak": 1.0}, None),
    "Goal_Hijacking": ({"injection": 1.0}, None),
}


def _first_cats(row_cats: Iterable[str], table: dict[str, list[str]]) -> list[str] | None:
    found = [c for name in row_cats for c in table.get(name, [])]
    return sorted(set(found)) or None


def _prompt_example(text, targets, source, cats=None, **kw) -> Example:
    t = dict(targets)
    if cats is not None:
        t.update(_cats(cats))
    elif t.get("prompt_harmful") == 0.0:
        t.update(BENIGN_CATS)
    return Example(text=text, targets=t, source=source, **kw)


def _response_example(prompt, response, targets, source, cats=None, **kw) -> Example:
    t = dict(targets)
    if cats is not None and t.get("response_harmful") == 1.0:
        t.update(_cats(cats))
    elif t.get("response_harmful") == 0.0:
        t.update(BENIGN_CATS)
    return Example(text=prompt, pair=response, targets=t, source=source, view=RESPONSE, **kw)


def _train(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("split") == "train" and isinstance(r.get("prompt"), str)]


# --- one function per source -----------------------------------------------------------------------
def _advbench(rows, rng):
    for r in rows:
        yield _prompt_example(r["prompt"], _HARMFUL_REQUEST, "advbench")


def _benign_instructions(rows, rng):
    by_kind = defaultdict(list)
    for r in rows:
        by_kind[r["categories"][0] if r["categories"] else ""].append(r)
    caps = {"gsm8k": 1200, "code_alpaca": 1800, "instructionwild": 1302}
    for kind, items in by_kind.items():
        rng.shuffle(items)
        for n, r in enumerate(items[: caps.get(kind, 1000)]):
            yield _prompt_example(r["prompt"], BENIGN_PROMPT, "benign_instructions")
            if r.get("response") and n % 2 == 0:
                yield _response_example(r["prompt"], r["response"],
                                        {"response_harmful": 0.0, "refusal": 0.0}, "benign_instructions")
            elif r.get("response") and len(r["response"]) > 80:
                # Answers are documents (prose, code) full of imperative sentences that are not injections.
                yield _prompt_example(r["response"][:600], BENIGN_PROMPT, "benign_documents")


def _toxigen(rows, rng):
    for r in rows:
        harmful = _b(r["prompt_harmful"])
        if harmful is None:
            continue
        cats = ["hate"] if harmful else None
        yield _prompt_example(r["prompt"], {"prompt_harmful": harmful, "jailbreak": 0.0, "injection": 0.0},
                              "toxigen", cats)


def _davidson(rows, rng):
    # "offensive_language" tweets are labelled not harmful there but count as harassment for OpenAI-style
    # moderation; we keep a sample of them as harassment with a low weight instead of either extreme.
    rows = list(rows)
    rng.shuffle(rows)
    offensive = 0
    for r in rows:
        kind = r["categories"][0] if r["categories"] else ""
        base = {"jailbreak": 0.0, "injection": 0.0}
        if kind == "hate_speech":
            yield _prompt_example(r["prompt"], {**base, "prompt_harmful": 1.0}, "davidson", ["hate", "harassment"])
        elif kind == "offensive_language":
            offensive += 1
            if offensive <= 2000:
                yield _prompt_example(r["prompt"], {**base, "prompt_harmful": 1.0}, "davidson", ["harassment"],
                                      weight=0.25)
        elif kind == "neither":
            yield _prompt_example(r["prompt"], BENIGN_PROMPT, "davidson")


def _xsafety(rows, rng, *, keep_non_english: float = 0.45, non_english_weight: float = 0.3):
    # Every labelled row is harmful and nine languages appear only as positives: keep the clearly harmful
    # categories, and give non-English rows a low weight (benign_multilingual supplies their negatives).
    # A multilingual encoder reads them: it keeps them all at full weight (see build_pool's source_options).
    for r in rows:
        cat = r["categories"][0] if r["categories"] else ""
        if cat not in XSAFETY_KEEP:
            continue
        targets, cats = XSAFETY_KEEP[cat]
        english = r.get("lang") == "en"
        if not english and rng.random() > keep_non_english:
            continue
        weight = 1.0 if english else non_english_weight
        yield _prompt_example(r["prompt"], targets, "xsafety", cats, weight=weight, lang=r.get("lang") or "en")


def _degenerate(text: str) -> bool:
    stripped = text.strip()
    return len(stripped) < 8 or len(set(stripped)) < 6


def _tensor_trust(rows, rng):
    # Negatives here are defence system prompts (another genre than the attacks); benign instructions
    # and documents elsewhere in the pool are the same genre as attacks, which breaks the shortcut.
    for r in rows:
        if _degenerate(r["prompt"]):
            continue
        if r.get("injection"):
            yield _prompt_example(r["prompt"], {"injection": 1.0, "jailbreak": 1.0}, "tensor_trust")
        else:
            yield _prompt_example(r["prompt"], BENIGN_PROMPT, "tensor_trust", weight=0.5)


def _common_affix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _bipia(rows, rng):
    # Injections sit anywhere in long documents. Every attacked document also exists clean, so the
    # injected span is found by comparing with its clean twin; we train on a slice around that span
    # and on random slices of clean documents.
    rows = [r for r in rows if r.get("injection") is not None]
    clean = [r["prompt"] for r in rows if not r["injection"]]
    by_prefix = defaultdict(list)
    for c in clean:
        by_prefix[c[:40]].append(c)
    slice_chars = 480
    for r in rows:
        text = r["prompt"]
        if not r["injection"]:
            if len(text) <= slice_chars:
                yield _prompt_example(text, {"injection": 0.0, "jailbreak": 0.0}, "bipia")
            else:
                for _ in range(2):
                    s = rng.randrange(0, len(text) - slice_chars)
                    yield _prompt_example(text[s : s + slice_chars], {"injection": 0.0, "jailbreak": 0.0}, "bipia")
            continue
        candidates = by_prefix.get(text[:40]) or clean
        best, best_score = None, 0
        for c in candidates[:50]:
            pre = _common_affix(text, c)
            suf = _common_affix(text[::-1], c[::-1])
            if pre + suf > best_score:
                best, best_score = (pre, len(text) - suf), pre + suf
        if best is None or best_score < 0.3 * len(text):
            if len(text) <= slice_chars:
                yield _prompt_example(text, {"injection": 1.0}, "bipia")
            continue
        start, end = best
        start, end = min(start, end), max(start, end)
        pad = max(0, (slice_chars - (end - start)) // 2)
        yield _prompt_example(text[max(0, start - pad) : end + pad], {"injection": 1.0}, "bipia")


def _injection_sets(source):
    def gen(rows, rng):
        for r in rows:
            label = r.get("injection")
            if label is None:
                continue
            text = r["prompt"]
            kinds = set(r.get("categories") or [])
            if label:
                if len(text.split()) <= 3:  # "Inject", "Log system": no signal, only noise
                    continue
                jailbreak = 1.0 if kinds & {"jailbreak", "persona_replacement"} else None
                targets = {"injection": 1.0}
                if jailbreak is not None:
                    targets["jailbreak"] = jailbreak
                yield _prompt_example(text, targets, source)
            else:
                yield _prompt_example(text, BENIGN_PROMPT, source)
    return gen


_REFUSAL_START = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry|i apologi[sz]e|i cannot|i can'?t|i can ?not|i won'?t|i will not|"
    r"i'?m (not able|unable)|i am (not able|unable)|as an ai|i'?m just an ai|i must (decline|refuse)|"
    r"i refuse|nope|no,? i|i do not feel comfortable|i'?m not comfortable|unfortunately,? i)", re.I)


def weak_refusal(response: str, harmful: float | None) -> float | None:
    """Refusal label for answers whose source gives none: an opening refusal phrase means 1, a harmful
    (complying) answer means 0, anything else stays unlabelled."""
    if _REFUSAL_START.search(response[:200]):
        return 1.0
    return 0.0 if harmful == 1.0 else None


def _response_targets(harmful: float | None, response: str) -> dict[str, float]:
    targets = {"response_harmful": harmful, "refusal": weak_refusal(response, harmful)}
    return {k: v for k, v in targets.items() if v is not None}


def _labelled_response(r: dict) -> dict[str, float]:
    """The response labels a row states itself (response harm, refusal), without the missing ones."""
    targets = {"response_harmful": _b(r.get("response_harmful")), "refusal": _b(r.get("response_refusal"))}
    return {k: v for k, v in targets.items() if v is not None}


def _request_and_answer(r: dict, seen: set[str], source: str, cats: list[str] | None,
                        ask: bool = True) -> Iterator[Example]:
    """A harmful request's row: its prompt once per text (unless ``ask`` is false), and its answer with the
    labels the row states."""
    if r["prompt"] not in seen:
        seen.add(r["prompt"])
        if ask:
            yield _prompt_example(r["prompt"], _HARMFUL_REQUEST, source, cats)
    if r.get("response"):
        targets = _labelled_response(r)
        if targets:
            yield _response_example(r["prompt"], r["response"], targets, source, cats)


def _jbb(rows, rng):
    for r in rows:
        cats = _first_cats(r["categories"], JBB_CATS)
        harmful = _b(r["prompt_harmful"])
        targets = {"prompt_harmful": harmful, "jailbreak": _b(r["adversarial"]), "injection": 0.0}
        targets = {k: v for k, v in targets.items() if v is not None}
        yield _prompt_example(r["prompt"], targets, "jbb", cats if harmful else None)
        if r.get("response") and r.get("response_harmful") is not None:
            yield _response_example(r["prompt"], r["response"],
                                    _response_targets(_b(r["response_harmful"]), r["response"]), "jbb", cats)


def _do_not_answer(rows, rng):
    seen = set()
    for r in rows:
        cats = _first_cats(r["categories"], DNA_CATS)
        chatbot = "Human-Chatbot Interaction Harms" in r["categories"]
        # "are you my friend?" is not a harmful prompt
        yield from _request_and_answer(r, seen, "do_not_answer", cats, ask=not chatbot)


def _pyrit(rows, rng):
    # info_integrity grades hallucination and representational grades bias: not safety harm. The prompts
    # are harm-probing requests (some wrapped in fiction), so they count as harmful at a reduced weight.
    seen = set()
    for r in rows:
        kind = r["categories"][0] if r["categories"] else ""
        if kind not in PYRIT_CATS or r.get("response_harmful") is None or not r.get("response"):
            continue
        if r["prompt"] not in seen:
            seen.add(r["prompt"])
            yield _prompt_example(r["prompt"], {"prompt_harmful": 1.0, "injection": 0.0}, "pyrit",
                                  PYRIT_CATS[kind], weight=0.7)
        yield _response_example(r["prompt"], r["response"],
                                _response_targets(_b(r["response_harmful"]), r["response"]), "pyrit",
                                PYRIT_CATS[kind])


def _benign_multilingual(rows, rng, *, permissive: bool = False):
    by_lang = defaultdict(list)
    for r in rows:
        if permissive and set(r.get("categories") or []) & BENIGN_MULTILINGUAL_RESTRICTED:
            continue
        by_lang[r.get("lang") or "en"].append(r)
    for lang, items in by_lang.items():
        rng.shuffle(items)
        for r in items[:300]:
            yield _prompt_example(r["prompt"], BENIGN_PROMPT, "benign_multilingual", lang=lang)


# --- second pool ---------------------------------------------------------------------------------
def _lang(r) -> str:
    return r.get("lang") or "en"


def _english(r) -> bool:
    return _lang(r) == "en"


ALERT_CATS = {  # ALERT's prefixes -> our categories
    "crime_cyber": ["cybercrime"], "crime_injury": ["violence"], "crime_kidnap": ["violence", "crime"],
    "crime_other": ["crime"], "crime_privacy": ["privacy"], "crime_propaganda": ["misinformation"],
    "crime_tax": ["fraud", "crime"], "crime_theft": ["crime"], "hate_": ["hate"], "self_harm": ["self_harm"],
    "sex_harassment": ["sexual", "harassment"], "sex_": ["sexual"], "substance_": ["crime"],
    "weapon_": ["weapons"],
}


def _prefix_cats(row_cats, table: dict[str, list[str]]) -> list[str] | None:
    found = [c for name in row_cats for prefix, cats in table.items() if name.startswith(prefix) for c in cats]
    return sorted(set(found)) or None


def _alert(rows, rng):
    # Red-team first turns, some of them mild ("why do ..."): harmful, but at a low weight so that they do
    # not teach "every question about a group is harmful" (benign group questions exist in augment.py).
    for r in rows:
        yield _prompt_example(r["prompt"], _HARMFUL_REQUEST, "alert", _prefix_cats(r["categories"], ALERT_CATS),
                              weight=0.5)


def _harmful_requests(source: str, table: dict[str, list[str]] | None = None, benign: frozenset[str] = frozenset(),
                      weight: float = 1.0, fixed: list[str] | None = None):
    """Sources whose rows are harmful requests (categories from ``table``); row categories in ``benign``
    are benign look-alikes of the same genre (FigStep's legal, financial and health questions)."""
    def gen(rows, rng):
        for r in rows:
            if not _english(r):
                continue
            row_cats = r.get("categories") or []
            if benign & set(row_cats):
                yield _prompt_example(r["prompt"], BENIGN_PROMPT, source, weight=weight)
                continue
            cats = fixed or (_first_cats(row_cats, table) if table else None)
            yield _prompt_example(r["prompt"], _HARMFUL_REQUEST, source, cats, weight=weight)
    return gen


SAP_CATS = {"fraud": ["fraud"], "politics": ["misinformation"], "race": ["hate"], "religion": ["hate"],
            "suicide": ["self_harm"], "terrorism": ["violence", "weapons"], "violence": ["violence"],
            "pornography_sexual_minors": ["sexual"]}
SGBENCH_CATS = {"O1: Toxic content": ["harassment"], "O2: Stereotyping & Bias": ["hate"],
                "O3: Misinformation": ["misinformation"], "O4: Privacy leak & Privacy infringement": ["privacy"],
                "O6: Malicious Use": ["crime"]}
FIGSTEP_CATS = {"Illegal Activity": ["crime"], "Hate Speech": ["hate"], "Malware Generation": ["cybercrime"],
                "Physical Harm": ["violence"], "Fraud": ["fraud"], "Adult Content": ["sexual"],
                "Privacy Violation": ["privacy"]}
#: FigStep files ordinary advice questions ("Which private equity firms should I approach?") as harmful; for
#: a guard they are benign look-alikes of the same genre.
FIGSTEP_BENIGN = frozenset({"Legal Opinion", "Financial Advice", "Health Consultation"})
_MINOR = re.compile(r"\b(child|children|minor|minors|underage|kid|kids|preteen|teen|\d{1,2}[- ]?(year|yr)s?[- ]old|"
                    r"schoolgirl|schoolboy|loli|pedo\w*)\b", re.I)


def _sap(rows, rng):
    # Role-play attack prompts: harmful requests and jailbreaks at once. Sexual rows name minors only sometimes.
    for r in rows:
        cats = _first_cats(r["categories"], SAP_CATS) or []
        if "sexual" in cats and _MINOR.search(r["prompt"]):
            cats = sorted(set(cats) | {"sexual_minors"})
        yield _prompt_example(r["prompt"], {"prompt_harmful": 1.0, "jailbreak": 1.0, "injection": 0.0}, "sap",
                              cats or None, weight=0.7)


def _jade(rows, rng):
    # Chinese harmful questions with judged answers; the English-first encoder reads only the English rows.
    for r in rows:
        if not _english(r):
            continue
        yield _prompt_example(r["prompt"], _HARMFUL_REQUEST, "jade_db")
        if r.get("response") and r.get("response_harmful") is not None:
            yield _response_example(r["prompt"], r["response"],
                                    _response_targets(_b(r["response_harmful"]), r["response"]), "jade_db")


def _sgbench(rows, rng):
    seen = set()
    for r in rows:
        cats = _first_cats(r["categories"], SGBENCH_CATS)
        yield from _request_and_answer(r, seen, "sgbench_malicious", cats)


def _cyberseceval_frr(rows, rng):
    # Alarming-looking but benign coding requests (some machine-translated): negatives for every prompt head.
    for r in rows:
        yield _prompt_example(r["prompt"], BENIGN_PROMPT, "cyberseceval_frr", lang=_lang(r))


#: DiaSafety's notion of an unsafe reply is wider than policy harm: agreeing with toxicity, offending the user and
#: biased opinions are kept as response harm; unqualified expertise and risk ignorance are not policy harm.
DIASAFETY_HARM = {"Toxicity Agreement": ["hate", "harassment"], "Offending User": ["harassment"],
                  "Biased Opinion": ["hate"]}


def _diasafety(rows, rng):
    for r in rows:
        if not r.get("response") or r.get("response_harmful") is None:
            continue
        kind = (r.get("categories") or [""])[0]
        harmful = _b(r["response_harmful"])
        if harmful and kind not in DIASAFETY_HARM:
            continue
        # chit-chat answers say nothing of refusal: weak_refusal labels only the clear cases (an opening refusal
        # phrase, a harmful answer), so thousands of casual replies do not teach the head what a non-refusal is
        yield _response_example(r["prompt"], r["response"], _response_targets(harmful, r["response"]),
                                "diasafety", DIASAFETY_HARM.get(kind), weight=0.4)


def _gptfuzz(rows, rng):
    # ~100 harmful questions, each answered many times under jailbreak templates (not stored).
    seen = set()
    for r in rows:
        if r["prompt"] not in seen:
            seen.add(r["prompt"])
            yield _prompt_example(r["prompt"], _HARMFUL_REQUEST, "gptfuzz")
        if r.get("response") and r.get("response_harmful") is not None:
            yield _response_example(r["prompt"], r["response"],
                                    _response_targets(_b(r["response_harmful"]), r["response"]), "gptfuzz",
                                    weight=0.6)


def _mostly_ascii(text: str) -> bool:
    return sum(c.isascii() for c in text) >= 0.8 * max(1, len(text))


def _latent_jailbreak(rows, rng):
    # A toxic instruction hidden inside text to translate: an injection in data and a jailbreak. Responses
    # are mostly Chinese; the English-first encoder learns response harm from the English ones only.
    seen = set()
    for r in rows:
        if r["prompt"] not in seen:
            seen.add(r["prompt"])
            yield _prompt_example(r["prompt"], {"injection": 1.0, "jailbreak": 1.0}, "latent_jailbreak", weight=0.5)
        if r.get("response") and r.get("response_harmful") is not None and _mostly_ascii(r["response"]):
            harmful = _b(r["response_harmful"])
            yield _response_example(r["prompt"], r["response"], _response_targets(harmful, r["response"]),
                                    "latent_jailbreak", ["hate"] if harmful else None, weight=0.5)


def _safetext(rows, rng):
    # Commonsense physical danger ("taste it to check"): response harm of a wider kind, at a low weight.
    for r in rows:
        if r.get("response") and r.get("response_harmful") is not None:
            harmful = _b(r["response_harmful"])
            yield _response_example(r["prompt"], r["response"], _response_targets(harmful, r["response"]),
                                    "safetext", ["self_harm"] if harmful else None, weight=0.3)


PYRIT_PAIR_CATS = {"exploits": ["cybercrime"], "privacy": ["privacy"], "violence": ["violence"],
                   "self_harm": ["self_harm"], "sexual_content": ["sexual"], "bias": ["hate"]}


def _pyrit_pairs(rows, rng):
    seen = set()
    for r in rows:
        cats = _first_cats(r.get("categories") or [], PYRIT_PAIR_CATS)
        harmful_prompt = _b(r.get("prompt_harmful"))
        if r["prompt"] not in seen and harmful_prompt is not None:
            seen.add(r["prompt"])
            yield _prompt_example(r["prompt"], {**_HARMFUL_REQUEST, "prompt_harmful": harmful_prompt},
                                  "pyrit_response_pairs", cats if harmful_prompt else None)
        if r.get("response"):
            targets = _labelled_response(r)
            if targets:
                yield _response_example(r["prompt"], r["response"], targets, "pyrit_response_pairs", cats)


def _labelled_injections(source: str, weight: float = 1.0):
    """Injection / jailbreak rows labelled per row (``adversarial`` is a jailbreak when not an injection)."""
    def gen(rows, rng):
        for r in rows:
            injection, adversarial = _b(r.get("injection")), _b(r.get("adversarial"))
            if injection is None and adversarial is None:
                continue
            if not injection and not adversarial:
                if r.get("prompt_harmful"):  # a plain harmful request among the rules
                    yield _prompt_example(r["prompt"], _HARMFUL_REQUEST, source, lang=_lang(r), weight=weight)
                else:
                    yield _prompt_example(r["prompt"], BENIGN_PROMPT, source, lang=_lang(r), weight=weight)
                continue
            targets = {"injection": injection} if injection is not None else {}
            if adversarial and not injection:
                targets["jailbreak"] = 1.0
            if r.get("prompt_harmful") is not None:
                targets["prompt_harmful"] = _b(r["prompt_harmful"])
            yield _prompt_example(r["prompt"], targets, source, lang=_lang(r), weight=weight)
    return gen


def _jailbreak_templates(source: str, cap: int):
    # Templates (AutoDAN variants are near-copies of each other): a few of each, as jailbreaks.
    def gen(rows, rng):
        rows = list(rows)
        rng.shuffle(rows)
        for r in rows[:cap]:
            yield _prompt_example(r["prompt"], {"jailbreak": 1.0}, source)
    return gen


def _ethos(rows, rng):
    # isHate is the share of annotators who saw hate: >= 0.5 is hate, 0 is benign, the rest is unclear.
    for r in rows:
        score = next((float(c.split("=")[1].split()[0]) for c in r.get("categories") or [] if c.startswith("isHate=")),
                     None)
        if score is None or 0.0 < score < 0.5:
            continue
        if score >= 0.5:
            yield _prompt_example(r["prompt"], _HARMFUL_REQUEST, "ethos", ["hate"])
        else:
            yield _prompt_example(r["prompt"], BENIGN_PROMPT, "ethos")


def _korean_hate(rows, rng):
    # Korean news comments; "offensive" rows are unlabelled there (null), "hate" is harmful, "none" benign.
    for r in rows:
        harmful = _b(r.get("prompt_harmful"))
        if harmful is None:
            continue
        yield _prompt_example(r["prompt"], _HARMFUL_REQUEST if harmful else BENIGN_PROMPT, "korean_hate_speech",
                              ["hate"] if harmful else None, lang="ko")


SOURCES = {
    "advbench_maliciousinstruct": _advbench,
    "benign_instructions": _benign_instructions,
    "toxigen": _toxigen,
    "davidson_hate_offensive": _davidson,
    "xsafety": _xsafety,
    "tensor_trust": _tensor_trust,
    "bipia": _bipia,
    "injection_slabs": _injection_sets("injection_slabs"),
    "injection_neuralchemy": _injection_sets("injection_neuralchemy"),
    "jbb_artifacts": _jbb,
    "do_not_answer_responses": _do_not_answer,
    "pyrit_harm": _pyrit,
    "benign_multilingual": _benign_multilingual,
    # second pool
    "alert": _alert,
    "aart": _harmful_requests("aart", weight=0.8),
    "sap": _sap,
    "jade_db": _jade,
    "sgbench_malicious": _sgbench,
    "figstep_safebench": _harmful_requests("figstep_safebench", FIGSTEP_CATS, FIGSTEP_BENIGN),
    "cyberseceval_interpreter": _harmful_requests("cyberseceval_interpreter", fixed=["cybercrime"]),
    "harmfulq": _harmful_requests("harmfulq"),
    "cyberseceval_frr": _cyberseceval_frr,
    "diasafety": _diasafety,
    "gptfuzz": _gptfuzz,
    "latent_jailbreak": _latent_jailbreak,
    "safetext": _safetext,
    "pyrit_response_pairs": _pyrit_pairs,
    "injection_yanismiraoui": _labelled_injections("injection_yanismiraoui"),
    "injection_small_pkgs": _labelled_injections("injection_small_pkgs"),
    "easyjailbreak_templates": _jailbreak_templates("easyjailbreak_templates", 30),
    "pyrit_jailbreak_templates": _jailbreak_templates("pyrit_jailbreak_templates", 91),
    "promptmap_rules": _labelled_injections("promptmap_rules"),
    "ethos": _ethos,
    "korean_hate_speech": _korean_hate,
}
#: Sources an English-first model does not read (kept for multilingual encoders; see pipeline.train).
MULTILINGUAL_ONLY: frozenset[str] = frozenset({"korean_hate_speech"})

#: Each source's license as stated, and whether it lets a model trained on it be used without conditions
#: beyond attribution (MIT, Apache-2.0, CC BY). ``railguard train --licenses permissive`` uses only those.
LICENSES: dict[str, tuple[str, bool]] = {
    "advbench_maliciousinstruct": ("MIT", True),
    "benign_instructions": ("Apache-2.0 (Code Alpaca), MIT (GSM8K), Apache-2.0 (InstructionWild)", True),
    "toxigen": ("MIT", True),
    "davidson_hate_offensive": ("MIT", True),
    "xsafety": ("Apache-2.0", True),
    "tensor_trust": ("not stated (see repository README)", False),
    "bipia": ("MIT", True),
    "injection_slabs": ("MIT", True),
    "injection_neuralchemy": ("Apache-2.0; HackAPrompt rows CC BY 4.0", True),
    "jbb_artifacts": ("MIT", True),
    "do_not_answer_responses": ("Apache-2.0 in the copy; original card CC BY-NC-SA 4.0", False),
    "pyrit_harm": ("MIT", True),
    "benign_multilingual": ("CC BY-SA 4.0 / CC BY 4.0 / Apache-2.0 / CC BY-NC 4.0 (llmzoo_q) / not stated "
                            "(msvamp, ruifeval)", False),
    "alert": ("CC BY-NC-SA 4.0", False),
    "aart": ("CC BY 4.0", True),
    "sap": ("Apache-2.0", True),
    "jade_db": ("MIT", True),
    "sgbench_malicious": ("GPL-3.0", False),
    "figstep_safebench": ("MIT", True),
    "cyberseceval_interpreter": ("MIT", True),
    "harmfulq": ("MIT", True),
    "cyberseceval_frr": ("MIT", True),
    "diasafety": ("Apache-2.0", True),
    "gptfuzz": ("MIT", True),
    "latent_jailbreak": ("MIT", True),
    "safetext": ("MIT", True),
    "pyrit_response_pairs": ("MIT", True),
    "korean_hate_speech": ("CC BY-SA 4.0", False),
    "injection_yanismiraoui": ("Apache-2.0", True),
    "injection_small_pkgs": ("MIT", True),
    "easyjailbreak_templates": ("GPL-3.0", False),
    "pyrit_jailbreak_templates": ("MIT", True),
    "promptmap_rules": ("GPL-3.0", False),
    "ethos": ("GPL-3.0", False),
}
#: benign_multilingual's sub-sources that carry conditions (non-commercial, or no license stated).
BENIGN_MULTILINGUAL_RESTRICTED = frozenset({"llmzoo_q", "msvamp", "ruifeval"})
LICENSE_MODES = ("all", "permissive")


def licensed_sources(mode: str, names: Iterable[str] | None = None) -> list[str]:
    """The sources a build may read: every one, or with ``permissive`` those without conditions."""
    if mode not in LICENSE_MODES:
        raise ConfigError(f"licenses must be one of {', '.join(LICENSE_MODES)}, got {mode!r}")
    names = list(SOURCES) if names is None else list(names)
    if mode == "all":
        return names
    # benign_multilingual stays: its restricted sub-sources are dropped row by row (permissive=True)
    return [n for n in names if LICENSES[n][1] or n == "benign_multilingual"]


_STOP = frozenset("""a an the i me my we you your he she it they them is are was were be been do does did how
what where when why who which can could should would will to of in on for with at by from and or not this that
there any some way best easy need give tell me please""".split())


def content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in norm_key(text).split() if w not in _STOP)


class NearDuplicates:
    """Finds texts whose content words overlap a test prompt's by ``threshold`` (Jaccard) or more."""

    def __init__(self, texts: Iterable[str], threshold: float = 0.6) -> None:
        self.threshold = threshold
        self.sets: list[frozenset[str]] = []
        self.index: dict[str, list[int]] = defaultdict(list)
        for t in texts:
            words = content_words(t)
            if words:
                for w in words:
                    self.index[w].append(len(self.sets))
                self.sets.append(words)

    def __contains__(self, text: str) -> bool:
        words = content_words(text)
        if not words:
            return False
        candidates = Counter(i for w in words for i in self.index.get(w, ()))
        for i, shared in candidates.items():
            if shared / len(words | self.sets[i]) >= self.threshold:
                return True
        return False


def _test_prompts(data_dir: Path) -> list[str]:
    out = []
    for name in TEST_SETS:
        if (Path(data_dir) / name / "data.jsonl.gz").is_file():
            out += [r["prompt"] for r in read_rows(data_dir, name) if isinstance(r.get("prompt"), str)]
    return out


#: The largest sources are sampled down so that no single genre dominates (and fine-tuning fits on a CPU).
SOURCE_CAPS: dict[str, int] = {"injection_slabs": 4500, "davidson_hate_offensive": 4500,
                               "benign_multilingual": 6000, "alert": 3500, "diasafety": 2500, "gptfuzz": 2500,
                               "aart": 1500, "korean_hate_speech": 3000}


def _test_keys(data_dir: Path) -> set[str]:
    keys = set()
    for name in TEST_SETS + ("bipia", "injection_slabs", "injection_neuralchemy"):
        path = Path(data_dir) / name / "data.jsonl.gz"
        if not path.is_file():
            continue
        for r in read_rows(data_dir, name):
            if r.get("split") != "test":
                continue
            for text in (r.get("prompt"), r.get("response")):
                if isinstance(text, str) and len(text) > 12:
                    k = norm_key(text)
                    keys.add(k)
                    keys.add(k[:80])
    return keys


def _is_test(ex: Example, test_keys: set[str]) -> bool:
    k = norm_key(ex.text)
    if k in test_keys or (len(k) >= 80 and k[:80] in test_keys):
        return True
    if ex.pair is not None:
        p = norm_key(ex.pair)
        return p in test_keys or (len(p) >= 80 and p[:80] in test_keys)
    return False


@dataclass
class Pool:
    train: list[Example]
    heldout: list[Example]
    stats: dict


def build_pool(data_dir: Path, *, seed: int = DEFAULT_SEED, heldout_fraction: float = HELDOUT_FRACTION,
               augmenter: Callable[[list[Example]], list[Example]] | None = None,
               sources: Iterable[str] | None = None, source_options: dict[str, dict] | None = None) -> Pool:
    """All training examples, deduplicated within the pool and against every test set, split by text.

    ``source_options`` passes keyword arguments to a source's reader (``{"xsafety": {...}}``)."""
    rng = random.Random(seed)
    data_dir = Path(data_dir)
    test_keys = _test_keys(data_dir)
    examples: list[Example] = []
    names = list(sources) if sources is not None else list(SOURCES)
    read: list[str] = []
    for name in names:
        if not (data_dir / name / "data.jsonl.gz").is_file():
            log.warning("dataset %s is missing from %s; skipped", name, data_dir)
            continue
        read.append(name)
        produced = list(SOURCES[name](_train(read_rows(data_dir, name)), rng, **(source_options or {}).get(name, {})))
        cap = SOURCE_CAPS.get(name)
        if cap is not None and len(produced) > cap:
            produced = rng.sample(produced, cap)
        examples.extend(produced)
    extra = augmenter(examples) if augmenter else []
    if extra:  # synthetic text is written by us: drop anything close to a test prompt, not only copies
        near = NearDuplicates(_test_prompts(data_dir))
        kept = [ex for ex in extra if ex.text not in near]
        near_dropped = len(extra) - len(kept)
        examples.extend(kept)
    else:
        near_dropped = 0

    dropped_test = 0
    merged: dict[tuple[str, str], Example] = {}
    conflicts = 0
    for ex in examples:
        if _is_test(ex, test_keys):
            dropped_test += 1
            continue
        k = (ex.view, ex.key)
        if k in merged:
            old = merged[k]
            for head, v in ex.targets.items():
                if head in old.targets and old.targets[head] != v:
                    conflicts += 1
                    old.targets.pop(head)  # conflicting labels teach nothing: drop that head
                elif head not in old.targets:
                    old.targets[head] = v
            continue
        merged[k] = ex
    pool = [ex for ex in merged.values() if ex.targets]
    train, heldout = [], []
    for ex in pool:
        (heldout if holdout_of(norm_key(ex.text), heldout_fraction, seed) else train).append(ex)
    stats = {
        "examples": len(pool),
        "train": len(train),
        "heldout": len(heldout),
        "dropped_overlapping_test": dropped_test,
        "dropped_synthetic_near_test": near_dropped,
        "label_conflicts_dropped": conflicts,
        "by_source": dict(Counter(ex.source for ex in pool)),
        "datasets": read,
    }
    return Pool(train, heldout, stats)


def iter_targets(examples: Iterable[Example], head: str) -> Iterator[tuple[Example, float]]:
    for ex in examples:
        if head in ex.targets:
            yield ex, ex.targets[head]
