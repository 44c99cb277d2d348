"""The heads of a model folder: fitted on the training pool (one logistic regression per head), then
calibrated on held-out data (Platt scaling), with the per-source weights both use. The training pipeline,
the layer probes and feedback learning share these."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np

from ..errors import require
from ..models.heads import Heads
from .data import HEADS, Example
from .finetune import targets_matrix

log = logging.getLogger(__name__)


def source_weights(examples: list[Example], power: float) -> np.ndarray:
    """Per-example factor ``(median source size / own source size) ** power``: large sources stop
    dominating (power 1 gives every source the same total weight)."""
    counts = Counter(ex.source for ex in examples)
    median = float(np.median(list(counts.values())))
    return np.array([(median / counts[ex.source]) ** power for ex in examples], np.float32)


def class_source_weights(examples: list[Example], labels: np.ndarray) -> np.ndarray:
    """Weights under which every source counts the same *within* each class while the classes keep their
    share: the largest sources do not set a threshold, and all-benign sources do not outvote the rest."""
    keys = [(ex.source, bool(y)) for ex, y in zip(examples, labels)]
    per_key = Counter(keys)
    per_class = Counter(k[1] for k in keys)
    sources_in_class = Counter(k[1] for k in per_key)
    return np.array([per_class[c] / sources_in_class[c] / per_key[(src, c)] for src, c in keys], np.float64)


def fit_heads(x: np.ndarray, examples: list[Example], seed: int, names: tuple[str, ...] = HEADS) -> Heads:
    """One L2-regularised logistic regression per head on the examples that teach it."""
    linear_model = require("sklearn.linear_model", "train")
    y, m = targets_matrix(examples, names)
    w = np.array([ex.weight for ex in examples], np.float32)
    weight = np.zeros((len(names), x.shape[1]), np.float32)
    bias = np.full(len(names), -6.0, np.float32)  # a head with no data says "no"
    for j, head in enumerate(names):
        rows = m[:, j] > 0
        labels = y[rows, j] >= 0.5
        if labels.sum() < 3 or (~labels).sum() < 3:
            log.warning("head %s has too few examples (%d positive); it will never fire", head, labels.sum())
            continue
        clf = linear_model.LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
        clf.fit(x[rows], labels, sample_weight=w[rows])
        weight[j], bias[j] = clf.coef_[0], clf.intercept_[0]
    ones = np.ones(len(names), np.float32)
    return Heads(tuple(names), weight, bias, ones, np.zeros(len(names), np.float32))


def calibrate(heads: Heads, x: np.ndarray, examples: list[Example], seed: int) -> Heads:
    """Platt scaling per head on held-out data: scores become calibrated probabilities."""
    linear_model = require("sklearn.linear_model", "train")
    y, m = targets_matrix(examples, heads.names)
    logits = heads.logits(x)
    scale, shift = heads.calib_scale.copy(), heads.calib_shift.copy()
    for j in range(len(heads.names)):
        rows = m[:, j] > 0
        labels = y[rows, j] >= 0.5
        if labels.sum() < 5 or (~labels).sum() < 5:
            continue
        clf = linear_model.LogisticRegression(C=100.0, random_state=seed)
        clf.fit(logits[rows, j : j + 1], labels,
                sample_weight=class_source_weights([e for e, r in zip(examples, rows) if r], labels))
        scale[j], shift[j] = clf.coef_[0, 0], clf.intercept_[0]
    return heads.with_calibration(scale, shift)
