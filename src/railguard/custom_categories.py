"""Custom categories: a name and a handful of examples, scored few-shot with the embedded encoder.

How a score is made. Texts and examples are embedded with the guard's encoder (mean-pooled, then
L2-normalised; a long text is cut into the encoder's windows and the most similar window counts). For
a text ``x`` and a category with ``k`` positive examples ``P`` (and optionally negative examples ``N``):

* ``s_max``: cosine similarity to the nearest positive example;
* ``s_centroid``: cosine similarity to the (normalised) mean of the positive examples;
* ``margin``: ``s_max`` minus the similarity to the nearest negative example, and ``has_negatives``
  (both 0 without negative examples);
* ``log_k = log(1 + k)`` and its products with ``s_max`` and ``s_centroid``: with more examples the
  nearest one is closer to everything, so how much a similarity means depends on ``k``.

A logistic model maps the features to a probability. It is fitted once per encoder by
:func:`railguard.train.custom_categories.fit_calibration` on the shared data: every built-in category of :mod:`railguard.taxonomy` with
enough examples plays a custom category whose examples (1 to 20, drawn at random, half the time with
two benign negatives) come from the training part of the pool, and is scored against the held-out part
(``railguard.train.data.build_pool``'s split, never trained on): positives are held-out texts of that
category, negatives every other held-out prompt (benign ones and other harm categories). Each draw is
weighted to the same prior, ``PRIOR`` = 25% positives, so that a category's score does not depend on how
common it happened to be in the held-out data: a score is the probability that a text belongs to the
category *if one text in four did*, the same scale for every category. The fitted weights ship in
``railguard/data/custom_calibration.json`` with the sha256 of the encoder they were fitted for; with
another encoder they still apply (a warning says so) until the calibration is refitted with
``python bench/custom_categories.py --write-calibration``.

In real traffic a custom category is usually rarer than one in four, so at ``0.5`` expect more false
positives than the score suggests; raise the threshold where a false block is costly. How well a category
separates depends on how well its examples describe it (``bench/custom_categories.py`` reports recall and
precision by number of examples, leave-one-category-out).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from .errors import ModelError
from .guard import HasManifest
from .models.artifacts import encoder_sha256 as manifest_encoder_sha256
from .policy import CustomCategory
from .types import GuardInput

log = logging.getLogger(__name__)

CALIBRATION_FILE = "custom_calibration.json"
FEATURES: tuple[str, ...] = ("s_max", "s_centroid", "margin", "has_negatives", "log_k", "s_max_x_log_k",
                             "s_centroid_x_log_k")
#: Share of positives every calibration draw is weighted to (see the module docstring).
PRIOR = 0.25


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def features(queries: np.ndarray, positives: np.ndarray, negatives: np.ndarray | None = None) -> np.ndarray:
    """(len(queries), len(FEATURES)) features of unit-norm ``queries`` against a category's examples."""
    k = positives.shape[0]
    s_max = (queries @ positives.T).max(axis=1)
    s_centroid = queries @ _unit(positives.mean(axis=0))
    log_k = math.log1p(k)
    out = np.empty((queries.shape[0], len(FEATURES)), np.float32)
    out[:, 0] = s_max
    out[:, 1] = s_centroid
    if negatives is not None and len(negatives):
        out[:, 2] = s_max - (queries @ negatives.T).max(axis=1)
        out[:, 3] = 1.0
    else:
        out[:, 2] = 0.0
        out[:, 3] = 0.0
    out[:, 4] = log_k
    out[:, 5] = s_max * log_k
    out[:, 6] = s_centroid * log_k
    return out


@dataclass(frozen=True)
class Calibration:
    """``p = sigmoid(features @ weights + bias)``, fitted for the encoder whose sha256 is ``encoder_sha256``."""

    weights: np.ndarray
    bias: float
    encoder_sha256: str = ""
    info: dict[str, Any] | None = None

    def probs(self, feats: np.ndarray) -> np.ndarray:
        z = feats @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def to_json(self) -> dict[str, Any]:
        return {"features": list(FEATURES), "weights": [round(float(w), 6) for w in self.weights],
                "bias": round(float(self.bias), 6), "encoder_sha256": self.encoder_sha256, "info": self.info or {}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        if list(data.get("features", [])) != list(FEATURES):
            raise ModelError(f"custom-category calibration has features {data.get('features')}, expected "
                             f"{list(FEATURES)}; refit it with bench/custom_categories.py --write-calibration")
        return cls(np.asarray(data["weights"], np.float32), float(data["bias"]), data.get("encoder_sha256", ""),
                   data.get("info"))

    @classmethod
    def shipped(cls) -> Calibration:
        path = resources.files("railguard") / "data" / CALIBRATION_FILE
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot read the custom-category calibration {path}: {exc}") from None


def encoder_sha256(guard: Any) -> str:
    """The sha256 of an embedded guard's encoder file, from its manifest ('' when unknown)."""
    return manifest_encoder_sha256(guard.manifest) if isinstance(guard, HasManifest) else ""


class CustomCategoryScorer:
    """Scores GuardInputs for a policy's custom categories with an encoder (``windows``/``encode``/
    ``embed_texts``, as :class:`railguard.models.encoder.TextEncoder` has)."""

    def __init__(self, categories: Sequence[CustomCategory], encoder: Any, *, encoder_id: str = "",
                 calibration: Calibration | None = None) -> None:
        self.categories = tuple(categories)
        self.encoder = encoder
        self.calibration = calibration or Calibration.shipped()
        if encoder_id and self.calibration.encoder_sha256 and encoder_id != self.calibration.encoder_sha256:
            log.warning("custom-category calibration was fitted for another encoder (%s…, this one %s…); scores "
                        "are approximate until it is refitted", self.calibration.encoder_sha256[:12], encoder_id[:12])
        self._pos = [_unit(encoder.embed_texts(list(c.examples))) for c in self.categories]
        self._neg = [_unit(encoder.embed_texts(list(c.negative_examples))) if c.negative_examples else None
                     for c in self.categories]

    def score(self, inputs: Sequence[GuardInput]) -> list[dict[str, float]]:
        """Per input, each custom category's probability (the most similar window of prompt or response)."""
        owners, windows = [], []
        for i, x in enumerate(inputs):
            for text in (x.prompt, x.response):
                if text is not None and text.strip():
                    for w in self.encoder.windows(text):
                        owners.append(i)
                        windows.append(w)
        out: list[dict[str, float]] = [{c.name: 0.0 for c in self.categories} for _ in inputs]
        if not windows:
            return out
        vectors = _unit(self.encoder.encode(windows))
        owner = np.asarray(owners)
        for c, pos, neg in zip(self.categories, self._pos, self._neg):
            probs = self.calibration.probs(features(vectors, pos, neg))
            best = np.zeros(len(inputs), np.float32)
            np.maximum.at(best, owner, probs.astype(np.float32))
            for i, p in enumerate(best):
                out[i][c.name] = float(p)
        return out


def fit_logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, *, l2: float = 1e-4,
                 steps: int = 100) -> tuple[np.ndarray, float]:
    """Weighted, L2-regularised logistic regression by Newton's method (numpy only)."""
    xb = np.hstack([x, np.ones((len(x), 1), np.float32)]).astype(np.float64)
    sw = np.full(len(y), 1.0 / len(y)) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    w = np.zeros(xb.shape[1])
    reg = l2 * np.eye(xb.shape[1])
    reg[-1, -1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -40, 40)))
        grad = xb.T @ (sw * (p - y)) + reg @ w
        hess = (xb * (sw * p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1].astype(np.float32), float(w[-1])
