"""Fitting, calibrating and thresholding, for every head training makes: the one logistic regression
(:func:`logistic`), Platt scaling on held-out logits (:func:`platt`), the best-F1 threshold and its weighted
metrics; and the heads of a model folder built from them (one logistic regression per head, then Platt
scaling), with the per-source weights both use. The training pipeline, the layer probes, feedback learning,
the agent heads and the propensity model of ``improve`` share these."""

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


#: The regularisation of every fit (C, as scikit-learn names it) and of the Platt scaling on top of one
#: (next to none: a scale and a shift per class on held-out logits).
FIT_C, CALIBRATION_C = 1.0, 100.0


def logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, *, seed: int, max_iter: int = 2000,
             c: float = FIT_C):
    """The logistic regression of training (L2, lbfgs; multinomial for more than two classes), fitted."""
    linear_model = require("sklearn.linear_model", "train")
    return linear_model.LogisticRegression(C=c, max_iter=max_iter, random_state=seed).fit(x, y, sample_weight=w)


def platt(logits: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, *, seed: int, max_iter: int = 100):
    """Platt scaling fitted on held-out ``logits`` (one column, or one per class for its multinomial form)."""
    return logistic(logits, y, w, seed=seed, max_iter=max_iter, c=CALIBRATION_C)


def binary_metrics(pred: np.ndarray, labels: np.ndarray, weight: np.ndarray | None = None) -> dict:
    """Weighted F1, precision, recall and accuracy of boolean predictions."""
    w = np.ones(len(pred)) if weight is None else weight
    tp, fp, fn = (w * (pred & labels)).sum(), (w * (pred & ~labels)).sum(), (w * (~pred & labels)).sum()
    return {"n": int(len(pred)), "f1": round(float(2 * tp / (2 * tp + fp + fn)), 4) if tp else 0.0,
            "precision": round(float(tp / (tp + fp)), 4) if tp + fp else 0.0,
            "recall": round(float(tp / (tp + fn)), 4) if tp + fn else 0.0,
            "accuracy": round(float((w * (pred == labels)).sum() / w.sum()), 4) if len(pred) else 0.0}


def best_f1_threshold(p: np.ndarray, labels: np.ndarray, weight: np.ndarray | None = None) -> float:
    """The threshold in 0.20..0.80 (steps of 0.01) with the best weighted F1; the lowest of equals."""
    best, best_f1 = 0.5, -1.0
    for t in np.round(np.arange(0.2, 0.81, 0.01), 2):
        f1 = binary_metrics(p >= t, labels, weight)["f1"]
        if f1 > best_f1 + 1e-9:
            best, best_f1 = float(t), f1
    return best


def fit_heads(x: np.ndarray, examples: list[Example], seed: int, names: tuple[str, ...] = HEADS) -> Heads:
    """One L2-regularised logistic regression per head on the examples that teach it."""
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
        clf = logistic(x[rows], labels, w[rows], seed=seed)
        weight[j], bias[j] = clf.coef_[0], clf.intercept_[0]
    ones = np.ones(len(names), np.float32)
    return Heads(tuple(names), weight, bias, ones, np.zeros(len(names), np.float32))


def calibrate(heads: Heads, x: np.ndarray, examples: list[Example], seed: int) -> Heads:
    """Platt scaling per head on held-out data: scores become calibrated probabilities."""
    y, m = targets_matrix(examples, heads.names)
    logits = heads.logits(x)
    scale, shift = heads.calib_scale.copy(), heads.calib_shift.copy()
    for j in range(len(heads.names)):
        rows = m[:, j] > 0
        labels = y[rows, j] >= 0.5
        if labels.sum() < 5 or (~labels).sum() < 5:
            continue
        clf = platt(logits[rows, j : j + 1], labels,
                    class_source_weights([e for e, r in zip(examples, rows) if r], labels), seed=seed)
        scale[j], shift[j] = clf.coef_[0, 0], clf.intercept_[0]
    return heads.with_calibration(scale, shift)
