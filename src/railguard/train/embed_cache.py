"""An optional on-disk cache of encoder vectors for training runs (``RAILGUARD_EMBED_CACHE=DIR``).

Training a frozen encoder's heads (``railguard train --encoder e5``) spends nearly all its time encoding
the pool; with this set, a second run with other head settings encodes only what it has not seen. Keys
are the window's token ids plus the sha256 of the encoder file: another encoder never hits, and a copy of
the same encoder (a run that reuses a fine-tuned one with --encoder-from) does.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..models.artifacts import sha256_file
from ..models.encoder import TextEncoder, Window

ENV = "RAILGUARD_EMBED_CACHE"


class EmbeddingCache:
    def __init__(self, folder: Path, encoder_id: str) -> None:
        self.folder = folder / hashlib.sha256(encoder_id.encode()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.vectors: dict[bytes, np.ndarray] = {}
        for shard in sorted(self.folder.glob("*.npz")):
            with np.load(shard, allow_pickle=False) as z:
                self.vectors.update(zip(map(bytes, z["keys"]), z["vectors"]))

    @classmethod
    def for_encoder(cls, enc: TextEncoder) -> EmbeddingCache | None:
        folder = os.environ.get(ENV)
        if not folder:
            return None
        return cls(Path(folder), sha256_file(enc.onnx_path))

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
            shard = self.folder / f"{len(list(self.folder.glob('*.npz'))):06d}-{os.getpid()}.npz"
            np.savez(shard, keys=np.array(list(new), dtype="S16"), vectors=np.stack(list(new.values())))
        return np.stack([self.vectors[k] for k in keys]).astype(np.float32)
