"""The one on-disk cache of encoder vectors used in training (heads, probes, agent heads, ``railguard improve``,
the feedback and robustness benchmarks).

Keys are a window's token ids, in a folder per encoder named by its identity (the sha256 of the encoder file,
:func:`encoder_identity`): another encoder never hits, and a copy of the same encoder (a run that reuses a
fine-tuned one with --encoder-from) does. Training runs use it when ``RAILGUARD_EMBED_CACHE=DIR`` is set
(:meth:`EmbeddingCache.for_encoder`); :class:`railguard.train.features.FeatureCache` keeps one in
``~/.cache/railguard/features`` by default. Without a folder it caches in memory only.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..models.artifacts import sha256_file
from ..models.encoder import TextEncoder, Window

ENV = "RAILGUARD_EMBED_CACHE"


def encoder_identity(enc: TextEncoder) -> str:
    """What names an encoder's vectors: the sha256 of its file."""
    return sha256_file(enc.onnx_path)


class EmbeddingCache:
    def __init__(self, folder: Path | None, encoder_id: str) -> None:
        self.folder = None if folder is None else Path(folder) / hashlib.sha256(encoder_id.encode()).hexdigest()[:16]
        self.vectors: dict[bytes, np.ndarray] = {}
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for shard in sorted(self.folder.glob("*.npz")):
            with np.load(shard, allow_pickle=False) as z:
                self.vectors.update(zip(map(bytes, z["keys"]), z["vectors"]))

    @classmethod
    def for_encoder(cls, enc: TextEncoder) -> EmbeddingCache | None:
        folder = os.environ.get(ENV)
        if not folder:
            return None
        return cls(Path(folder), encoder_identity(enc))

    @staticmethod
    def key(w: Window) -> bytes:
        return hashlib.sha256(np.asarray(w.ids + w.type_ids, np.int64).tobytes()).digest()[:16]

    def encode(self, enc: TextEncoder, windows: list[Window]) -> np.ndarray:
        keys = [self.key(w) for w in windows]
        missing = [i for i, k in enumerate(keys) if k not in self.vectors]
        if missing:
            fresh = enc.encode([windows[i] for i in missing])
            new = {keys[i]: v for i, v in zip(missing, fresh)}
            self.vectors.update(new)
            if self.folder is not None:
                shard = self.folder / f"{len(list(self.folder.glob('*.npz'))):06d}-{os.getpid()}.npz"
                np.savez(shard, keys=np.array(list(new), dtype="S16"), vectors=np.stack(list(new.values())))
        return np.stack([self.vectors[k] for k in keys]).astype(np.float32)
