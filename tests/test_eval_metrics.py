"""Score-based metrics and bootstrap intervals, checked against scikit-learn on fixed arrays."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from railguard.eval import metrics


def _arrays(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.35
    # Rounded scores make ties, the case where threshold handling differs between implementations.
    s = np.round(np.clip(0.35 * y + 0.75 * rng.random(n), 0, 1), 2)
    return y, s


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_auprc_brier_f1_match_sklearn(seed):
    y, s = _arrays(seed)
    assert metrics.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert metrics.brier(y, s) == pytest.approx(skm.brier_score_loss(y, s), abs=1e-12)
    assert metrics.f1(y, s >= 0.5) == pytest.approx(skm.f1_score(y, s >= 0.5))


def test_pr_curve_matches_sklearn():
    y, s = _arrays(5)
    precision, recall, _ = skm.precision_recall_curve(y, s)
    curve = metrics.pr_curve(y, s)
    # scikit-learn lists thresholds from low to high and appends the (recall 0, precision 1) end point.
    np.testing.assert_allclose(curve.precision, precision[:-1][::-1])
    np.testing.assert_allclose(curve.recall, recall[:-1][::-1])


@pytest.mark.parametrize("seed", [0, 7])
def test_ece_uses_the_same_bins_as_sklearn_calibration_curve(seed):
    y, s = _arrays(seed)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=15, strategy="uniform")
    rel = metrics.reliability(y, s, bins=15)
    used = rel.count > 0
    np.testing.assert_allclose(rel.positive_rate[used], prob_true)
    np.testing.assert_allclose(rel.mean_score[used], prob_pred)
    expected = np.sum(rel.count[used] * np.abs(prob_true - prob_pred)) / len(y)
    assert metrics.ece(y, s) == pytest.approx(expected)


def test_ece_and_brier_on_hand_checked_arrays():
    y = np.array([1, 0, 1, 0], dtype=bool)
    s = np.array([1.0, 0.0, 0.9, 0.1])
    assert metrics.brier(y, s) == pytest.approx((0 + 0 + 0.01 + 0.01) / 4)
    # bins [0, 1/15] and (14/15, 1]: mean predictions 0.05 and 0.95 against observed 0 and 1.
    assert metrics.ece(y, s) == pytest.approx(0.05)
    assert metrics.average_precision(y, s) == 1.0


def test_metrics_refuse_nan_scores():
    with pytest.raises(ValueError, match="NaN"):
        metrics.brier([True, False], [0.5, float("nan")])


def test_bootstrap_interval_is_repeatable_and_agrees_with_resampling_items():
    y, s = _arrays(11, n=300)
    pred = s >= 0.5
    first = metrics.bootstrap_ci(y, pred, "f1")
    assert first == metrics.bootstrap_ci(y, pred, "f1")  # fixed seed
    point = metrics.f1(y, pred)
    assert first.low < point < first.high
    # The textbook bootstrap (resample item indices) gives the same interval up to Monte-Carlo noise.
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(y), size=(2000, len(y)))
    t, p = y[idx], pred[idx]
    tp, fp, fn = (t & p).sum(1), (~t & p).sum(1), (t & ~p).sum(1)
    naive = 2 * tp / (2 * tp + fp + fn)
    assert naive[0] == pytest.approx(skm.f1_score(y[idx[0]], pred[idx[0]]))
    low, high = np.percentile(naive, [2.5, 97.5])
    assert first.low == pytest.approx(low, abs=0.02) and first.high == pytest.approx(high, abs=0.02)


def test_bootstrap_recall_of_an_all_positive_set_is_within_0_and_1():
    y = np.ones(50, dtype=bool)
    pred = np.arange(50) < 40
    low, high = metrics.bootstrap_ci(y, pred, "recall")
    assert 0.0 <= low < 0.8 < high <= 1.0
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.bootstrap_ci(y, pred, "accuracy")
