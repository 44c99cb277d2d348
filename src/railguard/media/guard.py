"""Images and audio through any text guard: read them into text, check each part, merge into one verdict.

Which task each part feeds (the inner guard decides; this module only places the text):

- the typed prompt, response and context are checked as they are;
- an image's text is checked as a prompt (harm, jailbreak, categories: a meme or screenshot the user sends
  says what the user says) *and* as a context document (injection: text in a screenshot that tells the
  agent what to do is an indirect injection);
- an audio clip's transcript is checked as a prompt (a voice message is the user speaking).

The merged verdict takes, per task and category, the strongest answer of any part (as the embedded guard
does across windows of one text). Its ``explanation`` holds one ``source`` reason per part (``text``,
``image[i]``, ``audio[j]``) with the text read, OCR boxes or speech timestamps, and what the guard decided
on that part alone; a policy's reasons name the part they fired on. When a policy redacts PII, the text
read is redacted too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..config import MediaSettings
from ..errors import MediaError, MissingExtraError
from ..guard import (Closeable, Describes, HasEncoder, HasLayerViews, HasManifest, HasPolicy, HasThresholds,
                     JudgesTasks, ReadsLanguages, Steps, check_steps, pass_through, run_steps)
from ..types import Extraction, Finding, GuardInput, Reason, TextSpan, Verdict
from ..verdicts import by_severity, check_inputs, combine, failed
from .load import load_audio, load_image
from .readers import read_audio, read_image

log = logging.getLogger(__name__)

TEXT_SOURCE = "text"


def image_source(i: int) -> str:
    return f"image[{i}]"


def audio_source(j: int) -> str:
    return f"audio[{j}]"


def _readers(x: GuardInput):
    """(source, item, loader, reader) for every image and clip of an input, images first."""
    for i, item in enumerate(x.images):
        yield image_source(i), item, load_image, read_image
    for j, item in enumerate(x.audio):
        yield audio_source(j), item, load_audio, read_audio


def extract(x: GuardInput, settings: MediaSettings) -> list[Extraction]:
    """The text of every image and clip of one input, in order; MediaError names the first bad one."""
    out = []
    for source, item, load, read in _readers(x):
        start = time.perf_counter()
        found = read(load(item, settings, source=source), settings, source=source)
        out.append(replace(found, ms=(time.perf_counter() - start) * 1000.0))
    return out


def validate(x: GuardInput, settings: MediaSettings | None = None) -> None:
    """Open every image and clip of an input without running a model: MediaError for the first one that is
    missing, corrupt, in an unsupported format or over a limit (the CLI and server call this first)."""
    settings = settings or MediaSettings.from_env()
    for source, item, load, _ in _readers(x):
        load(item, settings, source=source)


def _part(x: GuardInput, found: Extraction) -> GuardInput:
    if found.kind == "ocr":
        return GuardInput(prompt=found.text, context=(found.text,), id=x.id)
    return GuardInput(prompt=found.text, id=x.id)


@dataclass(slots=True)
class _Plan:
    """The parts one input became: (source, extraction or None for the typed text, index into the batch)."""

    parts: list[tuple[str, Extraction | None, int]]
    error: str | None = None
    ms: float = 0.0


#: The capabilities of :mod:`railguard.guard` that the media wrapper passes through from the guard it wraps
#: (it reads images and audio into text, so what the wrapped guard says of itself holds for it too).
PASSED_THROUGH: tuple[type, ...] = (HasThresholds, HasManifest, Describes, JudgesTasks, ReadsLanguages,
                                    HasLayerViews, HasPolicy, HasEncoder, Closeable)


class MediaGuard:
    """Wraps any guard; inputs without images or audio go straight through, untouched. It has the capabilities
    in ``PASSED_THROUGH`` that the wrapped guard has (``isinstance(media_guard, HasThresholds)`` answers for
    the inner guard), and no other attribute of it."""

    def __init__(self, inner: Any, settings: MediaSettings | None = None) -> None:
        self.inner = inner
        #: the limits and reader settings, read once here (from the environment unless given)
        self.settings = settings if settings is not None else MediaSettings.from_env()
        self.name = inner.name
        pass_through(self, inner, PASSED_THROUGH)

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        return run_steps(self.check_steps(inputs))

    def check_steps(self, inputs: Sequence[GuardInput], *, max_windows: int | None = None) -> Steps:
        """:meth:`check` in the inner guard's steps (see :class:`railguard.guard.ChecksInSteps`); reading the
        images and audio is the first step."""
        inputs = check_inputs(inputs)
        if not any(x.has_media for x in inputs):
            if max_windows is None:
                return self.inner.check(inputs)
            return (yield from check_steps(self.inner, inputs, max_windows=max_windows))
        settings = self.settings
        batch: list[GuardInput] = []
        plans: list[_Plan] = []
        for x in inputs:
            plans.append(self._plan(x, settings, batch))
        start = time.perf_counter()
        verdicts = (yield from check_steps(self.inner, batch, max_windows=max_windows)) if batch else []
        share = (time.perf_counter() - start) * 1000.0 / max(1, len(batch))
        return [self._merge(x, plan, verdicts, share) for x, plan in zip(inputs, plans)]

    def _plan(self, x: GuardInput, settings: MediaSettings, batch: list[GuardInput]) -> _Plan:
        text_only = GuardInput(prompt=x.prompt, response=x.response, context=x.context, id=x.id)
        if not x.has_media:
            batch.append(text_only)
            return _Plan([(TEXT_SOURCE, None, len(batch) - 1)])
        start = time.perf_counter()
        try:
            found = extract(x, settings)
        except (MediaError, MissingExtraError) as exc:
            return _Plan([], error=str(exc), ms=(time.perf_counter() - start) * 1000.0)
        except Exception as exc:  # noqa: BLE001 - a reader that breaks gives a failed verdict, not a crash
            log.warning("reading media failed: %s", type(exc).__name__)
            return _Plan([], error=f"reading images/audio failed ({type(exc).__name__})",
                         ms=(time.perf_counter() - start) * 1000.0)
        parts: list[tuple[str, Extraction | None, int]] = []
        if x.prompt.strip() or x.response is not None or x.context:
            batch.append(text_only)
            parts.append((TEXT_SOURCE, None, len(batch) - 1))
        for f in found:
            if f.text.strip():
                batch.append(_part(x, f))
                parts.append((f.source, f, len(batch) - 1))
            else:
                parts.append((f.source, f, -1))  # nothing to read: reported, not checked
        if all(index < 0 for _, _, index in parts):
            batch.append(text_only)  # an input whose parts say nothing is judged as the (empty) text it is
            parts.append((TEXT_SOURCE, None, len(batch) - 1))
        return _Plan(parts, ms=(time.perf_counter() - start) * 1000.0)

    def _merge(self, x: GuardInput, plan: _Plan, verdicts: list[Verdict], share: float) -> Verdict:
        tier = self.inner.name or self.name
        if plan.error is not None:  # no policy: fail closed, as every guard does
            on_error = self.inner.policy.on_error if isinstance(self.inner, HasPolicy) else None
            return failed(plan.error, tier=tier, id=x.id, on_error=on_error, latency_ms=plan.ms)
        if not x.has_media:
            return verdicts[plan.parts[0][2]]  # as if it had come alone
        judged = [(source, found, verdicts[i]) for source, found, i in plan.parts if i >= 0]
        errors = [f"{s}: {v.error}" if s != TEXT_SOURCE else v.error for s, _, v in judged if v.error]
        policy_reasons: list[Reason] = []
        source_reasons: list[Reason] = []
        findings: list[Finding] = []
        any_findings = False
        text_verdict = None
        for source, found, index in plan.parts:
            if index < 0:
                source_reasons.append(Reason("source", "allow", source=source, detail="no text found",
                                             extraction=found))
                continue
            v = verdicts[index]
            if source == TEXT_SOURCE:
                text_verdict = v
            for r in v.explanation or ():
                policy_reasons.append(replace(r, source=source))
            if v.pii is not None:
                any_findings = True
                findings += [f if source == TEXT_SOURCE else replace(f, field=source)
                             for f in v.pii if source == TEXT_SOURCE or f.field == "prompt"]
            extraction = _judged(found, source, v)
            top = max((v.scores.get(t, 0.0) for t in ("prompt_harmful", "jailbreak", "injection")), default=0.0)
            source_reasons.append(Reason("source", v.action or ("flag" if v.flagged else "allow"), score=top,
                                         source=source, extraction=extraction, detail=_detail(extraction)))
        # The parts' verdicts combine by the one rule (railguard.verdicts); the reasons name their part, the
        # errors their source, and the redacted texts are the typed text's.
        return combine(
            [v for _, _, v in judged],
            tier=tier,
            id=x.id,
            latency_ms=plan.ms + share * len(judged),
            error="; ".join(errors) if errors else None,
            pii=tuple(findings) if any_findings else None,
            redacted_text=text_verdict.redacted_text if text_verdict is not None else None,
            redacted_response=text_verdict.redacted_response if text_verdict is not None else None,
            explanation=tuple(by_severity(policy_reasons) + source_reasons),
        )


def _judged(found: Extraction | None, source: str, v: Verdict) -> Extraction:
    """The part's extraction with the guard's decision on it; its text redacted when the policy redacted."""
    if found is None:
        return Extraction(source=source, kind="text", flagged=v.flagged, categories=dict(v.categories))
    out = replace(found, flagged=v.flagged, categories=dict(v.categories))
    if v.redacted_text is not None:
        masked = [f for f in v.pii or () if f.field == "prompt"]
        out = replace(out, text=v.redacted_text, redacted=True,
                      spans=tuple(_mask_span(s, masked) for s in found.spans))
    return out


def _mask_span(span: TextSpan, findings: list[Finding]) -> TextSpan:
    """A line or segment with every finding overlapping it replaced by ``<TYPE>`` (its offsets stay those
    of the unredacted text, so boxes and timestamps still point at the right place)."""
    text = span.text
    for f in sorted(findings, key=lambda f: -f.start):
        lo, hi = max(f.start, span.start) - span.start, min(f.end, span.end) - span.start
        if lo < hi:
            text = text[:lo] + f"<{f.type}>" + text[hi:]
    return replace(span, text=text)


def _detail(found: Extraction) -> str:
    if found.kind == "ocr":
        return f"OCR, {len(found.spans)} line(s)"
    if found.kind == "speech":
        end = found.spans[-1].seconds[1] if found.spans and found.spans[-1].seconds else 0.0
        return f"speech, {len(found.spans)} segment(s), {end:.1f} s"
    return "typed text"


def with_media(guard: Any, settings: MediaSettings | None = None) -> Any:
    """``guard`` able to take images and audio (a no-op for inputs without them), with ``settings`` (else the
    environment's) or, for a guard that already is one, with its own unless ``settings`` are given."""
    if isinstance(guard, MediaGuard):
        return guard if settings is None else MediaGuard(guard.inner, settings)
    return MediaGuard(guard, settings)
