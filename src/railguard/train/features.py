"""Encoder features of training examples, computed once and cached on disk.

Retraining the heads (``railguard improve``, ``train --augment crome`` heads-only, the feedback and
robustness benchmarks) never changes the encoder, so each text is embedded once per encoder: the cache is
an ``.npz`` per encoder (named by the encoder file's sha256) holding a key per example (sha256 of its view,
text and pair) and its pooled vector from the example's first window, as training uses it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..models.artifacts import EMBEDDED_DIR, read_manifest
from ..models.encoder import TextEncoder
from ..progress import progress_bar
from .data import PROMPT, Example

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path.home() / ".cache" / "railguard" / "features"
_STEP = 256


def example_key(ex: Example) -> str:
    return hashlib.sha256(f"{ex.view}\x00{ex.text}\x00{ex.pair or ''}".encode("utf-8", "surrogatepass")).hexdigest()


def load_encoder(model_dir: str | Path | None = None, *, threads: int | None = None) -> TextEncoder:
    """The encoder of a model folder (the shipped one by default), windowed as its manifest says."""
    model_dir = Path(model_dir or EMBEDDED_DIR)
    return TextEncoder.from_spec(model_dir, read_manifest(model_dir)["encoder"],
                                 **({"threads": threads} if threads else {}))


def encoder_id(model_dir: str | Path | None = None) -> str:
    """A short name of a model folder's encoder: the start of its file's sha256 in the manifest."""
    model_dir = Path(model_dir or EMBEDDED_DIR)
    manifest = read_manifest(model_dir)
    return str(manifest.get("files", {}).get(manifest["encoder"]["onnx"], "unknown"))[:16]


class FeatureCache:
    """Vectors by example key for one encoder; ``embed`` fills what is missing and saves."""

    def __init__(self, model_dir: str | Path | None = None, cache_dir: str | Path | None = DEFAULT_CACHE) -> None:
        self.model_dir = Path(model_dir or EMBEDDED_DIR)
        self.path = None if cache_dir is None else Path(cache_dir) / f"{encoder_id(self.model_dir)}.npz"
        self._vectors: dict[str, np.ndarray] = {}
        self._encoder: TextEncoder | None = None
        if self.path is not None and self.path.is_file():
            with np.load(self.path, allow_pickle=False) as z:
                self._vectors = dict(zip((k for k in z["keys"].astype(str)), z["x"]))

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = load_encoder(self.model_dir)
        return self._encoder

    def embed(self, examples: Sequence[Example], *, label: str = "examples", progress: bool = False) -> np.ndarray:
        keys = [example_key(ex) for ex in examples]
        missing = list({k: ex for k, ex in zip(keys, examples) if k not in self._vectors}.items())
        if missing:
            enc = self.encoder
            with progress_bar(f"encoding {label}", total=len(missing), enabled=progress) as bar:
                for s in range(0, len(missing), _STEP):
                    part = missing[s: s + _STEP]
                    windows = [enc.windows(ex.text)[0] if ex.view == PROMPT else enc.pair_windows(ex.text, ex.pair or "")[0]
                               for _, ex in part]
                    for (k, _), v in zip(part, enc.encode(windows)):
                        self._vectors[k] = v.astype(np.float32)
                    bar.advance(len(part))
            self.save()
        dim = next(iter(self._vectors.values())).shape[0] if self._vectors else 0
        return np.stack([self._vectors[k] for k in keys]) if keys else np.zeros((0, dim), np.float32)

    def embed_texts(self, texts: Sequence[str], **kw) -> np.ndarray:
        return self.embed([Example(text=t, targets={}, source="-") for t in texts], **kw)

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        keys = list(self._vectors)
        np.savez(tmp, keys=np.array(keys), x=np.stack([self._vectors[k] for k in keys]))
        tmp.replace(self.path)
