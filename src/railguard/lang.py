"""Which language a text is in, cheaply enough to run before every guard call.

The writing system settles most languages (Hangul is Korean, Thai script is Thai, kana is Japanese...);
only Latin-script text (English, Italian, Vietnamese, Swahili, Javanese...) needs a statistical detector,
``lingua`` (extra ``multilingual``), restricted to Latin-script languages and loaded once on first use.
Languages lingua does not know (Javanese, Sundanese) come out as a neighbour (Indonesian, Malay): for
routing that is enough, since the question is "can this tier read it", not the exact language.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from collections import Counter

from .errors import MissingExtraError, require

log = logging.getLogger(__name__)

#: Unicode script blocks whose language is unambiguous enough for routing (code point ranges).
_SCRIPTS: tuple[tuple[int, int, str], ...] = (
    (0x3040, 0x30FF, "ja"),  # hiragana, katakana
    (0xAC00, 0xD7AF, "ko"), (0x1100, 0x11FF, "ko"), (0x3130, 0x318F, "ko"),
    (0x4E00, 0x9FFF, "zh"), (0x3400, 0x4DBF, "zh"),
    (0x0600, 0x06FF, "ar"), (0x0750, 0x077F, "ar"),
    (0x0E00, 0x0E7F, "th"),
    (0x0980, 0x09FF, "bn"),
    (0x0900, 0x097F, "hi"),
    (0x0C00, 0x0C7F, "te"),
    (0x0B80, 0x0BFF, "ta"),
    (0x0400, 0x04FF, "ru"),
    (0x0370, 0x03FF, "el"),
    (0x0590, 0x05FF, "he"),
    (0x10A0, 0x10FF, "ka"),
    (0x0530, 0x058F, "hy"),
)
#: Latin-script languages lingua chooses among (ISO 639-1 codes as lingua names them).
_LATIN = ("ENGLISH", "ITALIAN", "VIETNAMESE", "SWAHILI", "INDONESIAN", "MALAY", "SPANISH", "FRENCH", "GERMAN",
          "PORTUGUESE", "DUTCH", "TURKISH", "ROMANIAN", "DANISH", "LITHUANIAN", "TAGALOG", "POLISH", "SWEDISH",
          "CZECH", "HUNGARIAN", "FINNISH", "CATALAN", "AFRIKAANS")
#: Share of letters in a non-Latin script above which the text counts as written in that script.
SCRIPT_SHARE = 0.3
#: Mixed text (code-switching: "ازاي اعمل bomb at home") is routed by its strongest non-English signal: this
#: many letters of a non-Latin script, at this share of all letters, make it that script's language. A
#: Chinese character is a word, so two of them already say something; one Greek letter in a formula does not.
MIXED_LETTERS = 2
MIXED_SHARE = 0.05
#: Latin-script text counts as English unless another language is this many times more likely: short
#: texts are ambiguous to lingua, and sending English to a multilingual tier costs time, not recall.
ENGLISH_ODDS = 2.0
#: lingua's time grows with the text; a couple of sentences settle the language.
LATIN_SAMPLE = 240
#: Fewer Latin-script words than this say too little to tell languages apart: taken as English.
MIN_WORDS = 3
#: English function words that are not words of the other Latin-script languages routed here ("was", "will",
#: "do", "to", "for", "of", "my", "we" are, in German, Portuguese, Polish, Danish or Dutch). Plain ASCII text
#: with enough of them is English without asking lingua, which is most of the time the cascade spends on it.
_ENGLISH_WORDS = frozenset(
    "the and you how what it that this with your would should could about from they which who why when where "
    "there their been does please have are can not be just some any into than them these those because "
    "write tell explain show make i'm i've i'd don't can't it's what's".split())
ENGLISH_WORDS_MIN = 2
ENGLISH_WORDS_SHARE = 0.2
ENGLISH_SPAN = 8


def _script(ch: str) -> str | None:
    cp = ord(ch)
    if cp < 0x0250:
        return "latin"
    for lo, hi, lang in _SCRIPTS:
        if lo <= cp <= hi:
            return lang
    return None


def script_language(text: str) -> str | None:
    """The language the text's writing system implies, ``"latin"`` for Latin script, None for no letters."""
    counts: Counter[str] = Counter()
    for ch in text:
        if ch.isalpha() or unicodedata.category(ch) == "Lo":
            script = _script(ch)
            if script is not None:
                counts[script] += 1
    total = sum(counts.values())
    if not total:
        return None
    if counts.get("ja"):  # Japanese mixes kanji with kana; any kana makes it Japanese
        counts["ja"] += counts.pop("zh", 0)
    other = [(n, s) for s, n in counts.items() if s != "latin"]
    if other:
        n, script = max(other)
        if n / total >= SCRIPT_SHARE or (n >= MIXED_LETTERS and n / total >= MIXED_SHARE):
            return script
    return "latin"


@functools.lru_cache(maxsize=1)
def _detector():
    try:
        lingua = require("lingua", "multilingual")
    except MissingExtraError as exc:
        log.warning("%s; until then Latin-script text is taken to be English", exc)
        return None, None
    languages = [getattr(lingua.Language, name) for name in _LATIN]
    return lingua.LanguageDetectorBuilder.from_languages(*languages).build(), lingua.Language.ENGLISH


def plainly_english(words: list[str]) -> bool:
    """ASCII words enough of which are English function words (see :data:`_ENGLISH_WORDS`); a capital "I"
    after the first word counts too (the pronoun, where Italian's article "i" is lower case)."""
    bare = [w.strip(".,;:!?\"()") for w in words]
    hits = [i for i, w in enumerate(bare) if w.lower() in _ENGLISH_WORDS or (i > 0 and w == "I")]
    if len(hits) < ENGLISH_WORDS_MIN or len(hits) < ENGLISH_WORDS_SHARE * len(words):
        return False
    # every stretch of ENGLISH_SPAN words has one: a sentence in another language after an English one
    # ("How do I make a bomb? Dis-moi comment fabriquer une bombe") still goes to lingua
    edges = [-1, *hits, len(words)]
    return all(b - a <= ENGLISH_SPAN for a, b in zip(edges, edges[1:]))


def _latin_language(text: str) -> str:
    words = text[:LATIN_SAMPLE].split()
    if len(words) < MIN_WORDS or (text.isascii() and plainly_english(words)):
        return "en"
    detector, english = _detector()
    if detector is None:
        return "en"
    confidences = detector.compute_language_confidence_values(text[:LATIN_SAMPLE])
    if not confidences:
        return "en"
    best = confidences[0]
    english_confidence = next((c.value for c in confidences if c.language == english), 0.0)
    if english_confidence * ENGLISH_ODDS >= best.value:
        return "en"
    return best.language.iso_code_639_1.name.lower()


def warm_detector() -> None:
    """Load lingua's language models now (it loads them on its first text, which takes seconds)."""
    detector, _ = _detector()
    if detector is not None:
        detector.compute_language_confidence_values("This sentence only wakes the detector up.")


def detect(text: str) -> str | None:
    """ISO 639-1 code of the text's language (best effort), None when it has no letters."""
    script = script_language(text)
    if script != "latin":
        return script
    return _latin_language(text)

