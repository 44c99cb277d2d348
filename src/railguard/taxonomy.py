"""Our harm categories and their mapping to WildGuard, Llama Guard 3 (S1-S14) and OpenAI moderation names.

One table (``CATEGORIES``) holds every mapping; the functions below only read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    description: str
    wildguard: tuple[str, ...]
    llama_guard: tuple[str, ...]
    openai: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("violence", "violent crimes, threats, physical harm to people or animals",
             ("violence_and_physical_harm",), ("S1",), ("violence",)),
    Category("weapons", "weapons, explosives, chemical/biological/nuclear agents",
             ("violence_and_physical_harm",), ("S9",), ("illicit/violent",)),
    Category("hate", "hate speech, slurs and discrimination against protected groups",
             ("social_stereotypes_and_discrimination", "toxic_language_hate_speech"), ("S10",), ("hate",)),
    Category("harassment", "insults, bullying and abuse aimed at a person",
             ("toxic_language_hate_speech",), ("S10",), ("harassment",)),
    Category("sexual", "sexual content and sexual services involving adults",
             ("sexual_content",), ("S12",), ("sexual",)),
    Category("sexual_minors", "any sexual content involving minors",
             ("sexual_content",), ("S4",), ("sexual/minors", "sexual")),
    Category("self_harm", "suicide, self-injury, eating disorders",
             ("mental_health_over-reliance_crisis",), ("S11",),
             ("self-harm", "self-harm/intent", "self-harm/instructions")),
    Category("crime", "non-violent crimes: drugs, theft, trafficking, evasion of law enforcement",
             ("fraud_assisting_illegal_activities", "encouraging_unethical_unsafe_actions"), ("S2",), ("illicit",)),
    Category("cybercrime", "malware, hacking, intrusion, abuse of code execution",
             ("cyberattack",), ("S2", "S14"), ("illicit",)),
    Category("fraud", "fraud, scams, phishing, deception for gain",
             ("fraud_assisting_illegal_activities",), ("S2",), ("illicit",)),
    Category("privacy", "personal or sensitive information about people or organisations",
             ("private_information_individual", "sensitive_information_organization_government"), ("S7",), ()),
    Category("misinformation", "false or misleading claims, disinformation, election interference",
             ("false_or_misleading_information", "material_harm_by_misinformation"), ("S13",), ()),
    Category("defamation", "false statements that damage a real person's reputation",
             ("false_or_misleading_information",), ("S5",), ("harassment",)),
    Category("specialized_advice", "dangerous medical, legal or financial advice",
             ("material_harm_by_misinformation",), ("S6",), ()),
    Category("intellectual_property", "reproducing copyrighted works, piracy",
             ("copyright_violations",), ("S8",), ()),
)

CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in CATEGORIES)
_BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}

WILDGUARD_CATEGORIES: tuple[str, ...] = (
    "sensitive_information_organization_government",
    "private_information_individual",
    "copyright_violations",
    "false_or_misleading_information",
    "material_harm_by_misinformation",
    "social_stereotypes_and_discrimination",
    "violence_and_physical_harm",
    "toxic_language_hate_speech",
    "sexual_content",
    "cyberattack",
    "fraud_assisting_illegal_activities",
    "encouraging_unethical_unsafe_actions",
    "mental_health_over-reliance_crisis",
)

LLAMA_GUARD_CATEGORIES: dict[str, str] = {
    "S1": "Violent Crimes",
    "S2": "Non-Violent Crimes",
    "S3": "Sex-Related Crimes",
    "S4": "Child Sexual Exploitation",
    "S5": "Defamation",
    "S6": "Specialized Advice",
    "S7": "Privacy",
    "S8": "Intellectual Property",
    "S9": "Indiscriminate Weapons",
    "S10": "Hate",
    "S11": "Suicide & Self-Harm",
    "S12": "Sexual Content",
    "S13": "Elections",
    "S14": "Code Interpreter Abuse",
}

OPENAI_CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
# OpenAI names that mean "X and violent": scored as the smaller of the two parents.
_OPENAI_CONJUNCTIONS: dict[str, tuple[str, str]] = {
    "harassment/threatening": ("harassment", "violence"),
    "hate/threatening": ("hate", "violence"),
}


def category(name: str) -> Category:
    return _BY_NAME[name]


def _project(scores: Mapping[str, float], field: str, names) -> dict[str, float]:
    """Scores under another taxonomy: each target name gets the max over our categories mapped to it."""
    out = dict.fromkeys(names, 0.0)
    for name, score in scores.items():
        if name in _BY_NAME:
            for target in getattr(_BY_NAME[name], field):
                out[target] = max(out[target], score)
    return out


def to_wildguard(scores: Mapping[str, float]) -> dict[str, float]:
    """Our category scores -> WildGuard's 13 subcategories."""
    return _project(scores, "wildguard", WILDGUARD_CATEGORIES)


def to_llama_guard(scores: Mapping[str, float]) -> dict[str, float]:
    """Our category scores -> Llama Guard 3 codes S1..S14."""
    return _project(scores, "llama_guard", LLAMA_GUARD_CATEGORIES)


def to_openai(scores: Mapping[str, float]) -> dict[str, float]:
    """Our category scores -> OpenAI moderation ``category_scores``."""
    out = _project(scores, "openai", OPENAI_CATEGORIES)
    for name, (a, b) in _OPENAI_CONJUNCTIONS.items():
        out[name] = max(out[name], min(out[a], out[b]))
    return out


def from_llama_guard(codes) -> dict[str, float]:
    """Llama Guard codes (``S1``..``S14``) a model reported -> our categories: 1.0 for every category mapped to
    one of the codes, 0.0 for the rest. A code covering several of ours (S2) marks each of them."""
    reported = {str(c).strip().upper() for c in codes}
    return {c.name: 1.0 if reported.intersection(c.llama_guard) else 0.0 for c in CATEGORIES}


def _openai_sources(cat: Category) -> tuple[str, ...]:
    # A name another category lists first belongs to that one: "sexual" evidences sexual, not sexual_minors.
    firsts = {c.openai[0] for c in CATEGORIES if c.openai and c is not cat}
    return tuple(n for i, n in enumerate(cat.openai) if i == 0 or n not in firsts)


def from_openai(scores: Mapping[str, float]) -> dict[str, float]:
    """OpenAI moderation ``category_scores`` -> our categories (each the highest score of the names it maps to).

    A sub-category no category lists (``violence/graphic``, ``harassment/threatening``) counts as its parent;
    categories OpenAI has no name for (privacy, misinformation, ...) are left out rather than scored 0.
    """
    by_name: dict[str, float] = {}
    for name, score in scores.items():
        try:
            value = float(score)
        except (TypeError, ValueError):
            continue
        listed = any(name in c.openai for c in CATEGORIES)
        key = name if listed else name.split("/")[0]
        by_name[key] = max(by_name.get(key, 0.0), value)
    out: dict[str, float] = {}
    for cat in CATEGORIES:
        sources = _openai_sources(cat)
        if sources:
            out[cat.name] = max((by_name.get(n, 0.0) for n in sources), default=0.0)
    return out
