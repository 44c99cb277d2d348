"""Linear task/category heads over pooled encoder vectors, with per-head Platt calibration (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError

HEADS_FILE = "heads.npz"


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


@dataclass(frozen=True)
class Heads:
    """``probs(x) = sigmoid(a * (x @ W.T + b) + c)``: one row per head, named by ``names``."""

    names: tuple[str, ...]
    weight: np.ndarray  # (heads, dim)
    bias: np.ndarray  # (heads,)
    calib_scale: np.ndarray  # (heads,)
    calib_shift: np.ndarray  # (heads,)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weight.T + self.bias

    def probs(self, x: np.ndarray) -> np.ndarray:
        return sigmoid(self.calib_scale * self.logits(x) + self.calib_shift)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def with_calibration(self, scale: np.ndarray, shift: np.ndarray) -> Heads:
        return Heads(self.names, self.weight, self.bias, np.asarray(scale, np.float32), np.asarray(shift, np.float32))

    def save(self, model_dir: str | Path) -> None:
        np.savez(
            Path(model_dir) / HEADS_FILE,
            weight=self.weight.astype(np.float32),
            bias=self.bias.astype(np.float32),
            calib_scale=self.calib_scale.astype(np.float32),
            calib_shift=self.calib_shift.astype(np.float32),
        )

    @classmethod
    def load(cls, model_dir: str | Path, names: Sequence[str]) -> Heads:
        path = Path(model_dir) / HEADS_FILE
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in ("weight", "bias", "calib_scale", "calib_shift")}
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"cannot read heads from {path}: {exc}") from None
        if arrays["weight"].shape[0] != len(names):
            raise ModelError(f"{path} has {arrays['weight'].shape[0]} heads, manifest names {len(names)}")
        return cls(tuple(names), **arrays)
