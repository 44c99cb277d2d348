"""Encoder features of training examples, computed once per encoder and text.

Retraining the heads (``railguard improve``, ``train --augment crome`` heads-only, the feedback and
robustness benchmarks) never changes the encoder, so each example's first window, as training uses it, is
encoded once: :class:`FeatureCache` keeps the vectors in the training cache (:mod:`.embed_cache`), in
``~/.cache/railguard/features`` unless told otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..models.artifacts import EMBEDDED_DIR, encoder_sha256, read_manifest
from ..models.encoder import TextEncoder
from ..progress import progress_bar
from .data import Example
from .embed_cache import EmbeddingCache, encoder_identity
from .finetune import first_window

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path.home() / ".cache" / "railguard" / "features"
_STEP = 256


def encode_examples(enc: TextEncoder, examples: Sequence[Example], store: EmbeddingCache | None, *,
                    label: str = "examples", progress: bool = False) -> np.ndarray:
    """The pooled vector of each example's first window (as training reads it), through ``store`` if given."""
    out = np.zeros((len(examples), enc.dim), np.float32)
    with progress_bar(f"encoding {label}", total=len(examples), enabled=progress) as bar:
        for s in range(0, len(examples), _STEP):
            part = examples[s: s + _STEP]
            windows = [first_window(enc, ex) for ex in part]
            out[s: s + len(part)] = store.encode(enc, windows) if store is not None else enc.encode(windows)
            bar.advance(len(part))
    return out


def load_encoder(model_dir: str | Path | None = None, *, threads: int | None = None) -> TextEncoder:
    """The encoder of a model folder (the shipped one by default), windowed as its manifest says."""
    model_dir = Path(model_dir or EMBEDDED_DIR)
    return TextEncoder.from_spec(model_dir, read_manifest(model_dir)["encoder"],
                                 **({"threads": threads} if threads else {}))


class FeatureCache:
    """Vectors of examples for one model folder's encoder; ``embed`` encodes what the cache lacks."""

    def __init__(self, model_dir: str | Path | None = None, cache_dir: str | Path | None = DEFAULT_CACHE) -> None:
        self.model_dir = Path(model_dir or EMBEDDED_DIR)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._encoder: TextEncoder | None = None
        self._store: EmbeddingCache | None = None

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = load_encoder(self.model_dir)
        return self._encoder

    def embed(self, examples: Sequence[Example], *, label: str = "examples", progress: bool = False) -> np.ndarray:
        enc = self.encoder
        if self._store is None:
            # the manifest's record of the encoder's sha256, else the file's own (no second read of the file)
            identity = encoder_sha256(read_manifest(self.model_dir)) or encoder_identity(enc)
            self._store = EmbeddingCache(self.cache_dir, identity)
        return encode_examples(enc, examples, self._store, label=label, progress=progress)

    def embed_texts(self, texts: Sequence[str], **kw) -> np.ndarray:
        return self.embed([Example(text=t, targets={}, source="-") for t in texts], **kw)
