"""Template-written examples for gaps no licensed source fills (written by us, over our own word lists, which
live in ``railguard/data/templates.json``).

- Short conversational turns ("hello", "go on", "summarize the document above"): benign for every prompt
  head. Without them a model learns "short text is an injection" from the injection sets' short positives.
- Minors, weapons and drugs mentioned in ordinary contexts (parenting, school, hunting, prescriptions):
  benign; and sexual requests involving minors, a recall-first category with positives of its own.
- Requests to reproduce copyrighted text (full lyrics, long book passages) with their benign neighbours
  (summaries, a single quoted line, public-domain works, originals "in the style of").
- Benign look-alikes: violent words in their ordinary senses (kill a process, shoot a portrait), questions
  about what a harmful thing is, why it happened or how to protect oneself from it, and games and fiction.
  Without them the request-genre harm sets teach "a question about a dangerous topic is harmful".
- Contrast requests: the same subjects (groups, lawful ownership, crisis, definitions, public figures, figures
  of speech) asked benignly, with harmful neighbours, so the topic alone decides nothing.
- Look-alike requests in volume: harmful-sounding verbs in their ordinary senses (slash costs, kill a process),
  games and fiction, fictional characters' "private" details, absurd questions about things' rights, figures of
  speech, news reports of crime and political opinions (statements, not requests), with harmful neighbours that
  use the same verbs on people. The request-genre harm sets otherwise teach that the verb decides.
- Prefixes of responses (first sentence, first two), so a streamed answer can be judged before it is complete.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import replace
from importlib import resources

from .data import BENIGN_CATS, RESPONSE, Example, _cats

_SOURCE = "synthetic_templates"
# The word lists live in railguard/data/templates.json, read once here.
_WORDS = json.loads((resources.files("railguard") / "data" / "templates.json").read_text(encoding="utf-8"))
# Families of their own size get their own source name, so that the per-source weighting of training does not
# thin the short turns and look-alikes out as the other families grow.
_CONTRAST_SOURCE = "synthetic_contrast"
_COPYRIGHT_SOURCE = "synthetic_copyright"
_LOOKALIKE_SOURCE = "synthetic_lookalikes"


def _example(text: str, harmful: bool, cats: Iterable[str] = (), weight: float = 1.0) -> Example:
    targets = {"prompt_harmful": float(harmful), "jailbreak": 0.0, "injection": 0.0}
    targets.update(_cats(cats) if harmful else BENIGN_CATS)
    return Example(text=text, targets=targets, source=_SOURCE, weight=weight)


def _vary(text: str, rng: random.Random) -> str:
    """Casing and punctuation variants, as people type them."""
    r = rng.random()
    if r < 0.25:
        return text.lower().rstrip(".!?")
    if r < 0.35:
        return text.rstrip(".!?") + "?" if not text.endswith("?") else text
    if r < 0.45:
        return text + " " + rng.choice(["please", "thanks", ":)", "pls"])
    return text


# --- short conversational turns ------------------------------------------------------------------------
_GREETINGS, _CONTINUE, _THANKS, _META = (
    _WORDS[k] for k in ("greetings", "continue", "thanks", "meta"))


def conversational_turns(rng: random.Random) -> list[Example]:
    pool = _GREETINGS + _CONTINUE + _THANKS + _META
    out = [_example(t, False, weight=1.5) for t in pool]
    out += [_example(_vary(rng.choice(pool), rng), False, weight=1.0) for _ in range(400)]
    # two turns typed in one message
    out += [_example(f"{rng.choice(_GREETINGS)}. {rng.choice(_META)}", False) for _ in range(150)]
    return out


# --- minors, weapons and drugs in ordinary contexts; sexual content involving minors ------------------------
_KIDS, _KID_BENIGN, _SEXUAL_MINOR, _MINOR_NOUNS, _CSAM_DIRECT, _WEAPON_BENIGN, _DRUG_BENIGN = (
    _WORDS[k] for k in ("kids", "kid_benign", "sexual_minor", "minor_nouns", "csam_direct", "weapon_benign",
        "drug_benign"))


def minors_weapons_drugs(rng: random.Random) -> list[Example]:
    out = []
    ages = list(range(3, 18))
    for t in _KID_BENIGN:
        for _ in range(3):
            k = rng.choice(_KIDS).format(a=rng.choice(ages))
            out.append(_example(_vary(t.replace("{K}", k[0].upper() + k[1:]).replace("{k}", k), rng), False))
    for t in _SEXUAL_MINOR:
        for _ in range(4):
            k = rng.choice(_MINOR_NOUNS).format(a=rng.choice(ages))
            out.append(_example(_vary(t.format(k=k), rng), True, ["sexual_minors", "sexual"], weight=2.0))
    out += [_example(t, True, ["sexual_minors", "sexual"], weight=2.0) for t in _CSAM_DIRECT]
    out += [_example(_vary(t, rng), False) for t in _WEAPON_BENIGN + _DRUG_BENIGN for _ in range(2)]
    return out


# --- benign look-alikes -----------------------------------------------------------------------------------------
# A harmful-sounding word in its ordinary sense, each phrase with the question forms people use.
# Harmful topics asked about as knowledge, history, news or protection.
_ORDINARY_SENSES, _ORDINARY_FORMS, _TOPICS, _TOPIC_FORMS, _HISTORY, _HISTORY_FORMS, _FICTION = (
    _WORDS[k] for k in ("ordinary_senses", "ordinary_forms", "topics", "topic_forms", "history", "history_forms",
        "fiction"))


def benign_lookalikes(rng: random.Random) -> list[Example]:
    out = [_example(_vary(rng.choice(_ORDINARY_FORMS).format(p=p), rng), False) for p in _ORDINARY_SENSES for _ in range(2)]
    out += [_example(_vary(f.format(t=t), rng), False) for t in _TOPICS for f in rng.sample(_TOPIC_FORMS, 3)]
    out += [_example(_vary(f.format(h=h), rng), False) for h in _HISTORY for f in rng.sample(_HISTORY_FORMS, 2)]
    out += [_example(_vary(t, rng), False) for t in _FICTION for _ in range(2)]
    return out


# --- contrast pairs: the same subject asked benignly and harmfully ------------------------------------------------
# What decides is the intent, not the topic: questions about a group, lawful ownership, safety, support for
# someone in crisis, definitions, public facts and figures of speech are benign; the neighbours written beside
# them (demeaning a group, getting around the law, hurting someone) are harmful, so the topic alone teaches
# nothing either way.
(_GROUPS, _GROUP_BENIGN, _GROUP_HARMFUL, _BIAS_WORDS, _BIAS_BENIGN, _ITEMS, _PLACES, _ITEM_BENIGN, _ITEM_HARMFUL,
 _DANGERS, _DANGER_FORMS, _SAFETY, _CRISIS_BENIGN, _CRISIS_HARMFUL, _RELATIVES, _TERMS, _TERM_FORMS, _PUBLIC,
 _PUBLIC_FORMS, _PRIVATE_HARMFUL, _FIRST_NAMES, _FIGURES) = (
    _WORDS[k] for k in ("groups", "group_benign", "group_harmful", "bias_words", "bias_benign", "items", "places",
        "item_benign", "item_harmful", "dangers", "danger_forms", "safety", "crisis_benign", "crisis_harmful",
        "relatives", "terms", "term_forms", "public", "public_forms", "private_harmful", "first_names", "figures"))


def contrast_requests(rng: random.Random) -> list[Example]:
    """Benign requests on subjects that harmful ones share, with harmful neighbours on the same subjects."""
    out = [_example(_vary(f.format(g=g), rng), False) for g in _GROUPS for f in rng.sample(_GROUP_BENIGN, 3)]
    out += [_example(_vary(f.format(g=g), rng), True, ["hate"]) for g in _GROUPS for f in rng.sample(_GROUP_HARMFUL, 1)]
    out += [_example(_vary(f.format(b=b), rng), False) for b in _BIAS_WORDS for f in rng.sample(_BIAS_BENIGN, 2)]
    for i in _ITEMS:
        out += [_example(_vary(rng.choice(_ITEM_BENIGN).format(i=i, p=rng.choice(_PLACES)), rng), False) for _ in range(2)]
        out.append(_example(_vary(rng.choice(_ITEM_HARMFUL).format(i=i, p=rng.choice(_PLACES)), rng), True,
                            ["violence", "weapons"]))
    out += [_example(_vary(f.format(d=d), rng), False) for d in _DANGERS for f in rng.sample(_DANGER_FORMS, 2)]
    out += [_example(_vary(t, rng), False) for t in _SAFETY for _ in range(2)]
    out += [_example(_vary(rng.choice(_CRISIS_BENIGN).format(r=r), rng), False) for r in _RELATIVES for _ in range(2)]
    out += [_example(_vary(t.format(r=rng.choice(_RELATIVES)), rng), True, ["self_harm"]) for t in _CRISIS_HARMFUL
            for _ in range(2)]
    out += [_example(_vary(f.format(t=t), rng), False) for t in _TERMS for f in rng.sample(_TERM_FORMS, 2)]
    out += [_example(_vary(f.format(n=n), rng), False) for n in _PUBLIC for f in rng.sample(_PUBLIC_FORMS, 2)]
    out += [_example(_vary(t.format(f=rng.choice(_FIRST_NAMES)), rng), True, ["privacy"]) for t in _PRIVATE_HARMFUL
            for _ in range(2)]
    out += [_example(_vary(t, rng), False) for t in _FIGURES for _ in range(2)]
    return [replace(ex, source=_CONTRAST_SOURCE) for ex in out]


# --- look-alikes in volume ---------------------------------------------------------------------------------------
(_SENSES, _SENSE_FORMS, _GAMES, _CHARACTERS, _CHARACTER_PRIVATE, _THINGS, _ABSURD_RIGHTS, _FIGURES_MORE,
 _NEWS_SUBJECTS, _NEWS_EVENTS, _NEWS_TAILS, _OPINIONS, _HARM_NEIGHBOURS) = (
    _WORDS[k] for k in ("senses", "sense_forms", "games", "characters", "character_private", "things",
        "absurd_rights", "figures_more", "news_subjects", "news_events", "news_tails", "opinions",
        "harm_neighbours"))


def lookalike_requests(rng: random.Random) -> list[Example]:
    """Benign texts whose words harmful requests share, and harmful neighbours with the same verbs aimed at
    people: the verb alone decides nothing."""
    forms = _ORDINARY_FORMS + _SENSE_FORMS
    out = [_example(_vary(f.format(p=p), rng), False) for p in _SENSES for f in rng.sample(forms, 2)]
    out += [_example(_vary(t, rng), False) for t in _GAMES + _FIGURES_MORE + _OPINIONS for _ in range(2)]
    out += [_example(_vary(f.format(c=c), rng), False) for c in _CHARACTERS for f in rng.sample(_CHARACTER_PRIVATE, 2)]
    out += [_example(_vary(f.format(x=x), rng), False) for x in _THINGS for f in rng.sample(_ABSURD_RIGHTS, 2)]
    news = [f"{s} {e}{t}" for s in _NEWS_SUBJECTS for e in _NEWS_EVENTS for t in _NEWS_TAILS]
    out += [_example(t, False) for t in rng.sample(news, 120)]
    out += [_example(_vary(t, rng), True, cats) for t, cats in _HARM_NEIGHBOURS for _ in range(3)]
    return [replace(ex, source=_LOOKALIKE_SOURCE) for ex in out]


# --- copyrighted text ---------------------------------------------------------------------------------------
# Our own lists of modern (in-copyright) works; none is a title of the test sets (the pool also drops anything
# near a test prompt). Public-domain works are the benign neighbours.
_SONGS, _BOOKS, _PUBLIC_DOMAIN, _COPY_SONG, _COPY_BOOK, _SONG_BENIGN, _BOOK_BENIGN, _PD_FULL = (
    _WORDS[k] for k in ("songs", "books", "public_domain", "copy_song", "copy_book", "song_benign", "book_benign",
        "pd_full"))


def copyright_requests(rng: random.Random) -> list[Example]:
    out = []
    for works, copying, benign in ((_SONGS, _COPY_SONG, _SONG_BENIGN), (_BOOKS, _COPY_BOOK, _BOOK_BENIGN)):
        for t, a in works:
            out += [_example(_vary(f.format(t=t, a=a), rng), True, ["intellectual_property"])
                    for f in rng.sample(copying, 3)]
            out += [_example(_vary(f.format(t=t, a=a), rng), False) for f in rng.sample(benign, 3)]
    for t, a in _PUBLIC_DOMAIN:
        out += [_example(f.format(t=t, a=a), False) for f in _PD_FULL]
    return [replace(ex, source=_COPYRIGHT_SOURCE) for ex in out]


# --- response prefixes ----------------------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+|\n+")


def response_prefixes(examples: Iterable[Example], rng: random.Random, share: float = 0.5) -> list[Example]:
    """The first sentence and the first two of answers that have more, with the whole answer's labels
    (a streamed answer is judged on its start). Categories follow only when the answer is harmful."""
    out = []
    for ex in examples:
        if ex.view != RESPONSE or not ex.pair or "response_harmful" not in ex.targets or rng.random() > share:
            continue
        parts = [p for p in _SENTENCE_END.split(ex.pair.strip()) if p.strip()]
        if len(parts) < 3:
            continue
        targets = ex.targets
        for n in (1, 2):
            prefix = " ".join(parts[:n])
            if len(prefix) >= 12:
                out.append(Example(text=ex.text, pair=prefix, targets=dict(targets), source=ex.source,
                                   view=RESPONSE, weight=ex.weight * 0.5, lang=ex.lang))
    return out


def template_examples(seed: int) -> list[Example]:
    rng = random.Random(seed + 7)
    return (conversational_turns(rng) + minors_weapons_drugs(rng) + copyright_requests(rng)
            + benign_lookalikes(rng) + contrast_requests(rng) + lookalike_requests(rng))
