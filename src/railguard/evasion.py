"""Normalized readings ("evasion views") of a text that hides what it says: invisible characters, look-alike
letters, leetspeak, base64 / hex / rot13 payloads, repetition and spaced-out letters.

:func:`views` returns the extra texts worth judging besides the original; a guard judges them like the
windows of a long text, and the worst one decides. Ordinary text gets no view at all, so the common case
costs a few regular-expression scans: a transformation only runs where its own cheap test says the text
looks transformed, and a payload is decoded only where a run looks encoded and decodes to readable text.

Each view names what produced it (``invisible``, ``homoglyph``, ``leet``, ``spacing``, ``repetition``,
``rot13``, ``base64``, ``hex``, ``tags``; joined by ``+`` when one applied on top of another). A decoded
payload gives two views: the payload alone (``base64:payload``) and the text with the payload replaced
(``base64``). A view of a long text keeps only the neighbourhood of what changed, so one odd token in a
long document does not double the document's cost.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: The most views one text gets (nested payloads included).
MAX_VIEWS = 8
#: A changed region keeps this many characters of context on each side in the view of a long text.
CONTEXT_CHARS = 400
#: Texts up to this length are viewed whole; longer ones only around their changes.
WHOLE_TEXT_CHARS = 2 * CONTEXT_CHARS
#: Decoded payloads longer than this are cut (a view is judged, not stored).
MAX_PAYLOAD_CHARS = 20_000
#: How deep decoded payloads are viewed again (base64 of leetspeak, hex of base64).
MAX_DEPTH = 2


@dataclass(frozen=True, slots=True)
class View:
    """One normalized reading of a text: ``name`` says which transformation produced it."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int
    end: int
    text: str


def _apply(text: str, edits: Sequence[_Edit], *, whole: bool = False) -> str:
    """``text`` with non-overlapping ``edits`` applied; unless ``whole``, a long text keeps only each change's
    neighbourhood (changes far apart come out as passages separated by a blank line)."""
    edits = sorted(edits, key=lambda e: e.start)
    if whole or len(text) <= WHOLE_TEXT_CHARS:
        clusters = [(0, len(text), edits)]
    else:
        clusters = []
        for e in edits:
            lo, hi = max(0, e.start - CONTEXT_CHARS), min(len(text), e.end + CONTEXT_CHARS)
            if clusters and lo <= clusters[-1][1]:
                clusters[-1] = (clusters[-1][0], max(hi, clusters[-1][1]), clusters[-1][2] + [e])
            else:
                clusters.append((lo, hi, [e]))
    parts = []
    for lo, hi, group in clusters:
        pos, out = lo, []
        for e in group:
            if e.start < pos:  # overlapping edits: the first one wins
                continue
            out += [text[pos:e.start], e.text]
            pos = e.end
        out.append(text[pos:hi])
        parts.append("".join(out))
    return "\n\n".join(parts)


# -- invisible characters -------------------------------------------------------------------------------------

_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0"
                        "\U000e0000-\U000e007f\U000e0100-\U000e01ef]+")
_TAG_TEXT = re.compile("[\U000e0020-\U000e007e]{4,}")


def strip_invisible(text: str) -> str:
    """``text`` without zero-width, bidi-control, soft-hyphen, tag and variation-selector characters."""
    return _INVISIBLE.sub("", text)


def tag_payload(text: str) -> str:
    """The ASCII text hidden in Unicode tag characters (U+E0020..U+E007E mirror ASCII), "" when none."""
    return " ".join("".join(chr(ord(c) - 0xE0000) for c in m.group()) for m in _TAG_TEXT.finditer(text))


# -- look-alike letters ---------------------------------------------------------------------------------------

_CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "һ": "h", "ӏ": "l",
    "ԛ": "q", "ԝ": "w", "ь": "b", "ɡ": "g",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W", "Һ": "H", "Ӏ": "I",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Latin look-alikes outside ASCII
    "ı": "i", "ℓ": "l", "ɑ": "a", "ɩ": "i", "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e",
    "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p",
    "ʀ": "r", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
}
_CONFUSABLE_RE = re.compile("[" + "".join(sorted(_CONFUSABLES)) + "]")
# Fullwidth letters and digits, mathematical alphanumerics, circled and squared letters: NFKC makes them ASCII.
_STYLED = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u24b6-\u24e9\U0001d400-\U0001d7ff"
                     "\U0001f130-\U0001f189]")
_LATIN_LETTER = re.compile("[A-Za-z]")
_WORD = re.compile(r"[^\W\d_]+")


def fold_homoglyphs(text: str) -> str:
    """Styled letters (fullwidth, mathematical, circled) to ASCII and Cyrillic / Greek look-alikes to Latin,
    when the text looks disguised: styled letters, or look-alikes inside Latin words or in a mostly Latin
    text. Returns ``text`` unchanged otherwise (Russian or Greek prose is not folded)."""
    out = text
    if len(_STYLED.findall(text)) >= 3:
        out = _STYLED.sub(lambda m: unicodedata.normalize("NFKC", m.group()), out)
    if _CONFUSABLE_RE.search(out) and _looks_disguised(out):
        out = _CONFUSABLE_RE.sub(lambda m: _CONFUSABLES[m.group()], out)
    return out


def _looks_disguised(text: str) -> bool:
    latin = disguised = 0
    for word in _WORD.findall(text):
        has_latin = bool(_LATIN_LETTER.search(word))
        if has_latin and _CONFUSABLE_RE.search(word):
            return True  # one word mixing scripts: "bоmb" with a Cyrillic o
        latin += has_latin
        disguised += not has_latin and all(c in _CONFUSABLES for c in word)
    return disguised > 0 and latin > disguised  # whole look-alike words ("рор") in a mostly Latin text


# -- leetspeak ------------------------------------------------------------------------------------------------

_LEET = {"4": "a", "@": "a", "8": "b", "3": "e", "6": "g", "9": "g", "1": "i", "!": "i", "|": "l", "0": "o",
         "5": "s", "$": "s", "7": "t", "+": "t", "2": "z"}
_TOKEN = re.compile(r"\S+")
_LEET_CHARS = re.compile(r"[0-9@$!|+]")
# A letter, one or two of the usual stand-ins for a, e, i, l, o, s, t, a letter: "b0mb", "h4ck3r", "k!ll";
# not "sha256sum", "utf8mb4", "i18n" or "a+b".
_LEET_INSIDE = re.compile(r"[^\W\d_][013457@$!|]{1,2}[^\W\d_]")
_HEXISH = re.compile(r"[0-9a-fA-F\-]+")
_EMAIL_OR_URL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}|[a-z][a-z0-9+.-]*://", re.I)
_LONE_LEET = re.compile(r"(?<!\S)[4@1](?!\S)")
# Numeronyms ("i18n", "a11y", "l10n") and upper-case codes with digits ("A1B2C3", "X7Y9").
_CODE = re.compile(r"[a-z]\d{2,}[a-z]{1,2}|(?=.*[A-Z])(?=(?:.*\d){2})[A-Z0-9]+")
_UNIT = re.compile(r"\d+(?:[.,]\d+)?[a-zA-Z]{1,3}")  # "3pm", "16gb", "2nd"
_LEAD = "\"'([{<*_#"
_LEET_TEXT_WORDS = 3  # words mixing letters and leet characters that, as half of a text's words, make it leet
_TRAIL = ".,;:?!\"')]}>*_"


def _leet_token(token: str) -> bool:
    """Whether a token mixes letters with leet digits or symbols inside the word."""
    core = token.lstrip(_LEAD).rstrip(_TRAIL)
    if not 4 <= len(core) <= 24 or not _LEET_INSIDE.search(core):
        return False
    if _HEXISH.fullmatch(core) or _EMAIL_OR_URL.search(core) or _CODE.fullmatch(core):
        return False  # commit ids, UUID parts, addresses, numeronyms ("a11y"), codes ("A1B2C3")
    letters = sum(c.isalpha() for c in core)
    return letters >= 2 and letters + len(_LEET_CHARS.findall(core)) >= len(core) - 1


def _leet_edits(text: str) -> list[_Edit]:
    spans: dict[int, int] = {}
    for m in _LEET_INSIDE.finditer(text):  # one scan; tokens are looked at only around its hits
        start = max(text.rfind(c, 0, m.start()) for c in " \t\n") + 1
        end = min((i for i in (text.find(c, m.end()) for c in " \t\n") if i >= 0), default=len(text))
        spans[start] = end
    leet = [(s, e) for s, e in spans.items() if _leet_token(text[s:e])]
    if not spans:
        return []
    tokens = list(_TOKEN.finditer(text))
    loose = [(m.start(), m.end()) for m in tokens if _short_leet(m.group(), codes=True)]
    leetish = sum(_leetish(m.group()) for m in tokens)
    # A leet text: two words that are plainly leet, or most of its words mixing letters with leet characters
    # ("H0w d0 1 g37 4 7w3lv3 y34r 0ld"). There short words ("h0w", "d0"), words that would pass for codes
    # ("c4570r", "y34r") and lone "4" / "@" are leet too.
    leet_text = len(leet) >= 2 or (leetish >= _LEET_TEXT_WORDS and 2 * leetish >= len(tokens))
    if leet_text:
        leet = sorted(set(leet) | set(loose))
    if not leet:
        return []
    edits = []
    for s, e in leet:
        word = text[s:e]
        start = s + len(word) - len(word.lstrip(_LEAD))
        end = e - (len(word) - len(word.rstrip(_TRAIL)))
        edits.append(_Edit(start, end, "".join(_LEET.get(c, c) for c in text[start:end])))
    if leet_text:
        edits += [_Edit(m.start(), m.end(), _LEET[m.group()]) for m in _LONE_LEET.finditer(text)]
    return _non_overlapping(edits)


def _short_leet(token: str, *, codes: bool = False) -> bool:
    """In a text already written in leetspeak: a word of letters and leet characters, any length ("h0w");
    ``codes`` counts words shaped like numeronyms or codes ("c4570r", "y34r") too."""
    core = token.lstrip(_LEAD).rstrip(_TRAIL)
    if len(core) < 2 or _EMAIL_OR_URL.search(core) or (not codes and _CODE.fullmatch(core)):
        return False
    if not any(c.isalpha() for c in core):
        return len(core) <= 3 and all(c in _LEET for c in core)  # "47" (at) between leet words
    return bool(_LEET_CHARS.search(core)) and all(c.isalpha() or c in _LEET for c in core)


def _leetish(token: str) -> bool:
    """A word that counts towards calling a text leet: letters mixed with leet characters, lower case somewhere
    ("g37", "y34r"), not an amount with a unit ("3pm", "16gb") nor a code in capitals ("A1", "4GB")."""
    core = token.lstrip(_LEAD).rstrip(_TRAIL)
    return (_short_leet(core, codes=True) and any(c.islower() for c in core) and not _UNIT.fullmatch(core)
            and any(c.isalpha() for c in core))


def fold_leet(text: str) -> str:
    """Leetspeak words back into letters (4→a, 3→e, 1→i, 0→o, 5→s, 7→t, @→a, $→s, ...), only where a word
    mixes letters with such digits or symbols inside it; other text is returned unchanged."""
    return _apply(text, _leet_edits(text), whole=True)


# -- spaced-out letters ---------------------------------------------------------------------------------------

_SPACED = re.compile(r"(?<![^\W\d_])[^\W\d_](?:(?: {1,3}|\t)[^\W\d_]){2,}(?![^\W\d_])")
_JOINED = re.compile(r"(?<![^\W\d_])[^\W\d_](?P<sep>[.\-_*·|/~+])[^\W\d_](?:(?P=sep)[^\W\d_])+(?P=sep)?"
                     r"(?![^\W\d_])")


def _spacing_edits(text: str) -> list[_Edit]:
    edits = []
    for m in _SPACED.finditer(text):
        run, start = m.group(), m.start()
        if run[0] in "aAI" and run[1] == " " and re.search(r"[^\W\d_]{2} $", text[:start]):
            run, start = run[2:], start + 2  # "make a b o m b": the article stays a word
        words = re.split(r" {2,}|\t", run)
        edits.append(_Edit(start, m.end(), " ".join(w.replace(" ", "") for w in words)))
    for m in _JOINED.finditer(text):
        edits.append(_Edit(m.start(), m.end(), m.group().replace(m.group("sep"), "")))
    return _non_overlapping(edits)


def join_spacing(text: str) -> str:
    """Letters spelled apart joined: "b o m b", "b.o.m.b", "b-o-m-b" (two or more spaces between letters mark
    a word break: "h o w  t o"); other text is returned unchanged."""
    return _apply(text, _spacing_edits(text), whole=True)


# -- repetition -----------------------------------------------------------------------------------------------

_CHAR_RUN = re.compile(r"([A-Za-z])\1{3,}")
_PUNCTUATION = ".,;:!?\"'"
_MAX_PERIOD = 64


def _repetition_edits(text: str) -> list[_Edit]:
    edits = [_Edit(m.start(), m.end(), m.group(1)) for m in _CHAR_RUN.finditer(text)]
    words = text.split()
    repeats = _repeats([w.casefold().strip(_PUNCTUATION) for w in words])
    tokens = list(_TOKEN.finditer(text)) if repeats else []  # text.split()'s words, with their offsets
    if len(tokens) == len(words):
        covered = -1
        for period, start, end in repeats:
            if start > covered:  # keep the first copy, drop the ones after it
                edits.append(_Edit(tokens[start + period - 1].end(), tokens[end - 1].end(), ""))
                covered = end - 1
    return _non_overlapping(edits)


def collapse_repetition(text: str) -> str:
    """One copy of a phrase repeated back to back (2+ copies of 2+ words, 3+ copies of one word) and one
    letter of a run of four or more ("bommmmb"); other text is returned unchanged."""
    return _apply(text, _repetition_edits(text), whole=True)


def _repeats(words: list[str]) -> list[tuple[int, int, int]]:
    """(period, start, end) of word stretches that are one phrase repeated back to back."""
    index: dict[str, int] = {}
    ids = [index.setdefault(w, len(index)) if w else -1 - i for i, w in enumerate(words)]
    last: dict[int, int] = {}
    gaps = []
    for i, w in enumerate(ids):
        j = last.get(w)
        last[w] = i
        if j is not None and i - j <= _MAX_PERIOD:
            gaps.append(i - j)
    found = []
    # In a repeated phrase, a word that occurs once in the phrase recurs exactly one period later.
    for period, count in Counter(gaps).most_common(4):
        if count < max(2, period // 2):
            continue
        same = bytes(a == b for a, b in zip(ids, ids[period:]))  # same[k]: word k + period repeats word k
        for m in re.finditer(b"\x01{%d,}" % (period if period > 1 else 2), same):
            copies = (m.end() - m.start() + period) // period
            found.append((period, m.start(), m.start() + period * copies))
    return sorted(found, key=lambda f: (f[1], -f[2], f[0]))


def _non_overlapping(edits: Iterable[_Edit]) -> list[_Edit]:
    out: list[_Edit] = []
    for e in sorted(edits, key=lambda e: (e.start, -e.end)):
        if not out or e.start >= out[-1].end:
            out.append(e)
    return out


# -- rot13 ----------------------------------------------------------------------------------------------------

# Common English words; none is the rot13 of another ("be" / "or" are left out for that reason).
COMMON_WORDS = frozenset("""
the of and to a in is it you that he was for on are with as i his they at this have from one had by word
but not what all were we when your can said there use each which she do how their if will up other about
out many then them these so some her would make like him into time has look two more write go see number no
way could people my than first water been call who its now find long down day did get come made may part
over new sound take only little work know place year live me back give most very after thing our just name
good sentence man think say great where help through much before line right too mean old any same tell boy
follow came want show also around form three small set put end does another well large must big even such
because turn here why ask went men read need land different home us move try kind hand picture again change
off play spell air away animal house point page letter mother answer found study still learn should world
am an being doing done every few given going got let makes making someone something telling ways without
yourself please explain step steps list best easy quickly
""".split())
_ROT13 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                       "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm")
_SEGMENT = re.compile(r"[^.!?:;\n]+")
_ASCII_WORD = re.compile(r"[A-Za-z]+")


def rot13(text: str) -> str:
    return text.translate(_ROT13)


def decode_rot13(text: str) -> list[tuple[int, int, str]]:
    """(start, end, decoded) of each sentence that reads as English once rot13-decoded and not before: its
    rot13 has at least two common words and more than twice as many as the sentence itself."""
    if sum(w.lower() in COMMON_WORDS for w in _ASCII_WORD.findall(rot13(text))) < 2:
        return []  # one scan settles ordinary text
    out = []
    for m in _SEGMENT.finditer(text):
        words = [w.lower() for w in _ASCII_WORD.findall(m.group())]
        if len(words) < 2:
            continue
        plain = sum(w in COMMON_WORDS for w in words)
        decoded = sum(rot13(w) in COMMON_WORDS for w in words)
        if decoded >= 2 and decoded > 2 * plain and decoded >= 0.4 * len(words):
            out.append((m.start(), m.end(), rot13(m.group())))
    return out


# -- base64 and hex -------------------------------------------------------------------------------------------

_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re.compile(r"(?<![0-9A-Za-z])(?:(?:0x|\\x)?[0-9a-fA-F]{2}(?:, ?|[ :])?){8,}(?![0-9A-Za-z])")


def readable(raw: bytes) -> str | None:
    """``raw`` as text when it is UTF-8 and mostly printable with some letters, else None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < 4:
        return None
    printable = sum(c.isprintable() or c in "\n\r\t" for c in text)
    letters = sum(c.isalpha() for c in text)
    words = sum(c.isalnum() or c.isspace() for c in text)  # leetspeak is letters, digits and spaces
    if printable < 0.95 * len(text) or letters < 0.4 * len(text) and (letters < 0.25 * len(text)
                                                                       or words < 0.8 * len(text)):
        return None
    return text[:MAX_PAYLOAD_CHARS]


def decode_base64(text: str) -> list[tuple[int, int, str]]:
    """(start, end, decoded) of each run that looks like base64 (16+ characters of its alphabet, standard or
    URL-safe) and decodes to readable UTF-8 text."""
    out = []
    for m in _BASE64_RUN.finditer(text):
        run = m.group().rstrip("=")
        if len(run) % 4 == 1 or run.isalpha() and (run.islower() or run.isupper()):
            continue  # not a whole number of bytes, or a long plain word
        try:
            raw = base64.b64decode(run + "=" * (-len(run) % 4), altchars=b"-_" if "-" in run or "_" in run
                                   else None, validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = readable(raw)
        if decoded is not None:
            out.append((m.start(), m.end(), decoded))
    return out


def decode_hex(text: str) -> list[tuple[int, int, str]]:
    """(start, end, decoded) of each run of 8+ hex byte pairs (plain, spaced, ``\\x``- or ``0x``-prefixed)
    that decodes to readable UTF-8 text; a sha256 digest decodes to noise and is left alone."""
    out = []
    for m in _HEX_RUN.finditer(text):
        digits = re.sub(r"0x|\\x|[ :,]", "", m.group())
        if len(digits) % 2:
            continue
        decoded = readable(bytes.fromhex(digits))
        if decoded is not None:
            out.append((m.start(), m.end(), decoded))
    return out


_DECODERS = (("base64", decode_base64), ("hex", decode_hex), ("rot13", decode_rot13))
_EDITORS = (("leet", _leet_edits), ("spacing", _spacing_edits), ("repetition", _repetition_edits))


# -- the views ------------------------------------------------------------------------------------------------

def views(text: str, *, depth: int = MAX_DEPTH) -> list[View]:
    """The extra readings of ``text`` worth judging, at most :data:`MAX_VIEWS`; [] for ordinary text."""
    out: list[View] = []
    _collect(text, depth, "", out)
    seen = {text}
    unique = []
    for v in out:
        if v.text.strip() and v.text not in seen:
            seen.add(v.text)
            unique.append(v)
    return unique[:MAX_VIEWS]


def _normalized(text: str) -> tuple[str, list[str], list[_Edit]]:
    """The text without invisible characters and with look-alikes folded, the stages that changed it, and
    edits marking the changes in the normalized text (for the view of a long text)."""
    stages: list[str] = []
    marks: list[_Edit] = []
    removed = 0
    for m in _INVISIBLE.finditer(text):
        marks.append(_Edit(m.start() - removed, m.start() - removed, ""))
        removed += m.end() - m.start()
    base = text
    if marks:
        base = _INVISIBLE.sub("", text)
        stages.append("invisible")
    folded = fold_homoglyphs(base)
    if folded != base:  # folding maps one character to one (NFKC of a styled letter too), offsets hold
        marks += [_Edit(i, i, "") for i, (a, b) in enumerate(zip(base, folded)) if a != b]
        base = folded
        stages.append("homoglyph")
    return base, stages, marks


def _collect(text: str, depth: int, prefix: str, out: list[View]) -> None:
    hidden = tag_payload(text)
    if hidden:
        out.append(View(prefix + "tags:payload", hidden))
    base, stages, marks = _normalized(text)
    if stages:
        out.append(View(prefix + "+".join(stages), _apply(base, marks)))
    name = prefix + "".join(s + "+" for s in stages)
    for kind, editor in _EDITORS:
        edits = editor(base)
        if edits:
            out.append(View(name + kind, _apply(base, edits)))
    for kind, decoder in _DECODERS:
        found = decoder(base)
        if not found:
            continue
        out.append(View(name + kind, _apply(base, [_Edit(s, e, decoded) for s, e, decoded in found])))
        payload = "\n".join(decoded for _, _, decoded in found)[:MAX_PAYLOAD_CHARS]
        out.append(View(name + kind + ":payload", payload))
        if depth > 1:
            _collect(payload, depth - 1, name + kind + ">", out)
