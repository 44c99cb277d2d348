"""Binary classification metrics on boolean arrays (plain numpy; they agree with scikit-learn's).

A ratio whose denominator is zero is 0.0, as scikit-learn's ``zero_division=0``; whether a metric
applies to a benchmark at all (an all-positive set has no false-positive rate) is the caller's call.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike


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
