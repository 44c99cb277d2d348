"""Binary classification metrics on numpy arrays (plain numpy; they agree with scikit-learn's).

Decisions (``y_pred``) give F1, precision, recall and the false-positive rate; calibrated scores
(``y_score``, probabilities in [0, 1]) give the area under the precision-recall curve, the expected
calibration error and the Brier score. A ratio whose denominator is zero is 0.0, as scikit-learn's
``zero_division=0``; whether a metric applies to a benchmark at all (an all-positive set has no
false-positive rate) is the caller's call.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from ..agent.actions import RISK_LEVELS

#: Bins of the expected calibration error and of the reliability diagram.
ECE_BINS = 15
#: Bootstrap resamples for confidence intervals, and the seed that makes them repeatable.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 13


class Confusion(NamedTuple):
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def fpr(self) -> float:
        return _ratio(self.fp, self.fp + self.tn)


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def confusion(y_true: ArrayLike, y_pred: ArrayLike) -> Confusion:
    """Counts of true/false positives/negatives; both arrays are read as booleans of equal length."""
    t = np.asarray(y_true, dtype=bool)
    p = np.asarray(y_pred, dtype=bool)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {t.shape} vs {p.shape}")
    return Confusion(
        tp=int(np.sum(t & p)), fp=int(np.sum(~t & p)), fn=int(np.sum(t & ~p)), tn=int(np.sum(~t & ~p))
    )


def precision(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of flagged items that are positive."""
    return confusion(y_true, y_pred).precision


def recall(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of positive items that are flagged."""
    return confusion(y_true, y_pred).recall


def f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Harmonic mean of precision and recall (2tp / (2tp + fp + fn))."""
    return confusion(y_true, y_pred).f1


def fpr(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of negative (benign) items that are flagged."""
    return confusion(y_true, y_pred).fpr


def _scored(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=bool)
    s = np.asarray(y_score, dtype=float)
    if t.shape != s.shape:
        raise ValueError(f"y_true and y_score differ in shape: {t.shape} vs {s.shape}")
    if s.size and not np.all(np.isfinite(s)):
        raise ValueError("y_score holds NaN or infinite values")
    return t, s


class PRCurve(NamedTuple):
    """Precision and recall at every distinct score threshold, from the highest threshold down."""

    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray


def pr_curve(y_true: ArrayLike, y_score: ArrayLike) -> PRCurve:
    """The precision-recall curve; an item is flagged at threshold t when its score is >= t."""
    t, s = _scored(y_true, y_score)
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    # The last index of each run of equal scores: all tied items cross the threshold together.
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1] if s.size else np.array([], dtype=int)
    tps = np.cumsum(t)[last]
    flagged = last + 1
    positives = int(t.sum())
    prec = tps / flagged
    rec = tps / positives if positives else np.zeros_like(tps, dtype=float)
    return PRCurve(prec.astype(float), rec.astype(float), s[last])


def average_precision(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the precision-recall curve as scikit-learn's ``average_precision_score``:
    the sum over thresholds of (gain in recall) x precision. 0.0 when there are no positives."""
    t, _ = _scored(y_true, y_score)
    if not t.any():
        return 0.0
    curve = pr_curve(y_true, y_score)
    gains = np.diff(np.r_[0.0, curve.recall])
    return float(np.sum(gains * curve.precision))


def brier(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Mean squared distance between the predicted probability and the 0/1 label (lower is better)."""
    t, s = _scored(y_true, y_score)
    return float(np.mean((s - t) ** 2)) if s.size else 0.0


class Reliability(NamedTuple):
    """Per bin of predicted probability: how many items, their mean prediction, their positive rate."""

    edges: np.ndarray
    count: np.ndarray
    mean_score: np.ndarray
    positive_rate: np.ndarray


def reliability(y_true: ArrayLike, y_score: ArrayLike, bins: int = ECE_BINS) -> Reliability:
    """Equal-width bins over [0, 1]; an item on a bin edge goes to the lower bin (as scikit-learn's
    ``calibration_curve``). Empty bins have count 0 and NaN means."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    t, s = _scored(y_true, y_score)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], s, side="left")
    count = np.bincount(ids, minlength=bins).astype(int)
    sum_score = np.bincount(ids, weights=s, minlength=bins)
    sum_true = np.bincount(ids, weights=t.astype(float), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.where(count > 0, sum_score / count, np.nan)
        positive_rate = np.where(count > 0, sum_true / count, np.nan)
    return Reliability(edges, count, mean_score, positive_rate)


def ece(y_true: ArrayLike, y_score: ArrayLike, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the positive-class probability: the item-weighted mean of
    |positive rate - mean prediction| over equal-width bins (lower is better)."""
    rel = reliability(y_true, y_score, bins)
    n = int(rel.count.sum())
    if n == 0:
        return 0.0
    used = rel.count > 0
    gaps = np.abs(rel.positive_rate[used] - rel.mean_score[used])
    return float(np.sum(rel.count[used] * gaps) / n)


class Interval(NamedTuple):
    low: float
    high: float


def bootstrap_ci(y_true: ArrayLike, y_pred: ArrayLike, metric: str = "f1", *,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                 level: float = 0.95) -> Interval:
    """Percentile bootstrap interval of ``f1``, ``precision``, ``recall`` or ``fpr``.

    Resampling n items with replacement only changes how many fall in each confusion cell, so the
    resampled counts are drawn at once from a multinomial over (tp, fp, fn, tn): the same
    distribution as resampling items, vectorised and independent of n.
    """
    if metric not in _BOOT_METRICS:
        raise ValueError(f"unknown metric {metric!r}; one of {', '.join(_BOOT_METRICS)}")
    c = confusion(y_true, y_pred)
    n = c.tp + c.fp + c.fn + c.tn
    if n == 0:
        return Interval(0.0, 0.0)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.array(c, dtype=float) / n, size=resamples)
    values = _BOOT_METRICS[metric](*counts.T.astype(float))
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high))


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


_BOOT_METRICS = {
    "f1": lambda tp, fp, fn, tn: _safe_div(2 * tp, 2 * tp + fp + fn),
    "precision": lambda tp, fp, fn, tn: _safe_div(tp, tp + fp),
    "recall": lambda tp, fp, fn, tn: _safe_div(tp, tp + fn),
    "fpr": lambda tp, fp, fn, tn: _safe_div(fp, fp + tn),
}


def action_metrics(y: np.ndarray, pred: np.ndarray, weight: np.ndarray | None = None) -> dict:
    """Accuracy, macro-F1, HIGH recall/precision and the confusion matrix (rows: true, columns: predicted,
    in RISK_LEVELS order); with ``weight``, each row counts by its weight. Macro-F1 is over the levels the
    rows hold (a source with only HIGH rows is scored on HIGH alone)."""
    w = np.ones(len(y)) if weight is None else weight
    k = len(RISK_LEVELS)
    cm = np.zeros((k, k))
    for t, p, wi in zip(y, pred, w):
        cm[t, p] += wi
    f1s = []
    for c in range(k):
        tp, fp, fn = cm[c, c], cm[:, c].sum() - cm[c, c], cm[c, :].sum() - cm[c, c]
        if cm[c, :].sum():
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    high = RISK_LEVELS.index("HIGH")
    out = {"n": int(len(y)), "accuracy": float(np.trace(cm) / cm.sum()) if cm.sum() else 0.0,
           "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
           "high_recall": float(cm[high, high] / cm[high].sum()) if cm[high].sum() else 0.0,
           "high_precision": float(cm[high, high] / cm[:, high].sum()) if cm[:, high].sum() else 0.0,
           "confusion": [[round(float(v), 3) for v in row] for row in cm]}
    return {k2: (round(v, 4) if isinstance(v, float) else v) for k2, v in out.items()}
