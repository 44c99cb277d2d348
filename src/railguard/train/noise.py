"""Learning from moderators' labels, which are noisy and selective (after CausalRM, 2026).

- **Noise**: a moderator flips a true label with some probability: ``rho_pos`` = P(says benign | truly
  harmful), ``rho_neg`` = P(says harmful | truly benign). The *forward-corrected* loss scores the model's
  clean probability ``p`` through the noise, ``q = (1 - rho_pos) p + rho_neg (1 - p)``, against the noisy
  label; the *backward-corrected* loss (Natarajan et al., 2013) is an unbiased estimate of the clean loss.
  Both equal the ordinary logistic loss when there is no noise. Training uses the forward one (bounded
  below, so a linear head cannot run off to infinity); the backward one is there for analysis and tests.
- **Flip rates** come from items reviewed twice (two independent looks disagree with probability
  ``2 rho (1 - rho)`` under symmetric noise), from a gold set, or from configuration.
- **Selection**: moderators look mostly at flagged or borderline items. A model of the propensity
  P(reviewed | verdict, scores) over the audit log gives inverse-propensity weights for the reviewed items,
  clipped and self-normalised; the effective sample size ``(sum w)^2 / sum w^2`` says what is left.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, require
from .heads import logistic


@dataclass(frozen=True, slots=True)
class NoiseRates:
    """Label flip rates of the moderators for one task, and where they came from."""

    pos: float = 0.0  # P(moderator says 0 | truly 1)
    neg: float = 0.0  # P(moderator says 1 | truly 0)
    source: str = "none"
    n: int = 0  # how many observations the estimate rests on

    def __post_init__(self) -> None:
        if not (0.0 <= self.pos < 0.5 and 0.0 <= self.neg < 0.5):
            raise ConfigError(f"flip rates must lie in [0, 0.5), got {self.pos} and {self.neg}: at 0.5 or more the "
                              "labels say nothing (or the opposite) and cannot be corrected")

    def to_dict(self) -> dict:
        return {"pos": round(self.pos, 4), "neg": round(self.neg, 4), "source": self.source, "n": self.n}


def log_loss(logit: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The ordinary logistic loss per row."""
    logit = np.asarray(logit, np.float64)
    return np.logaddexp(0.0, logit) - np.asarray(y, np.float64) * logit


def _log(x: np.ndarray | float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(x, np.float64))


def _noisy_log_probs(z: np.ndarray, rho_pos: np.ndarray | float, rho_neg: np.ndarray | float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log q, log (1 - q) and log(s p (1 - p)) for q = rho_neg + s p, s = 1 - rho_pos - rho_neg, p = sigmoid(z),
    computed in log space so that large logits lose nothing (at zero noise: exactly the logistic loss)."""
    log_p, log_not_p = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)
    log_s = _log(1.0 - np.asarray(rho_pos) - np.asarray(rho_neg))
    log_q = np.logaddexp(_log(rho_neg), log_s + log_p)
    log_not_q = np.logaddexp(_log(rho_pos), log_s + log_not_p)
    return log_q, log_not_q, log_s + log_p + log_not_p


def forward_loss(logit: np.ndarray, noisy: np.ndarray, rho_pos: np.ndarray | float, rho_neg: np.ndarray | float
                 ) -> np.ndarray:
    """Logistic loss of the noisy label against the clean probability pushed through the noise."""
    log_q, log_not_q, _ = _noisy_log_probs(np.asarray(logit, np.float64), rho_pos, rho_neg)
    y = np.asarray(noisy, np.float64)
    return -(y * log_q + (1.0 - y) * log_not_q)


def backward_loss(logit: np.ndarray, noisy: np.ndarray, rho_pos: np.ndarray | float, rho_neg: np.ndarray | float
                  ) -> np.ndarray:
    """Unbiased estimate of the clean logistic loss from a noisy label: its expectation over the noise
    equals the loss of the true label."""
    y = np.asarray(noisy, np.float64)
    rho_y = np.where(y > 0.5, rho_pos, rho_neg)  # flip rate of the observed class
    rho_not_y = np.where(y > 0.5, rho_neg, rho_pos)
    return ((1.0 - rho_not_y) * log_loss(logit, y) - rho_y * log_loss(logit, 1.0 - y)) / (1.0 - rho_pos - rho_neg)


def fit_logistic(x: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None,
                 rho_pos: np.ndarray | float = 0.0, rho_neg: np.ndarray | float = 0.0, C: float = 1.0,
                 init: tuple[np.ndarray, float] | None = None, max_iter: int = 500) -> tuple[np.ndarray, float]:
    """One L2-regularised linear head, ``C * sum w_i loss_i + |coef|^2 / 2`` (scikit-learn's objective) with
    the forward-corrected loss on rows whose flip rates are non-zero (the plain logistic loss elsewhere)."""
    optimize = require("scipy.optimize", "train")
    x = np.asarray(x, np.float32)  # the matrix products dominate; float32 halves their cost
    y = np.asarray(y, np.float64)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    rp = np.broadcast_to(np.asarray(rho_pos, np.float64), y.shape)
    rn = np.broadcast_to(np.asarray(rho_neg, np.float64), y.shape)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        coef, bias = theta[:-1], theta[-1]
        z = (x @ coef.astype(np.float32)).astype(np.float64) + bias
        log_q, log_not_q, log_dq = _noisy_log_probs(z, rp, rn)
        loss = -(y * log_q + (1.0 - y) * log_not_q)
        # d loss / dz = dq/dz * (-(y / q) + (1 - y) / (1 - q)), with dq/dz = s p (1 - p)
        dz = w * (-y * np.exp(log_dq - log_q) + (1.0 - y) * np.exp(log_dq - log_not_q))
        value = C * float(w @ loss) + 0.5 * float(coef @ coef)
        grad = np.empty_like(theta)
        grad[:-1] = C * (x.T @ dz.astype(np.float32)).astype(np.float64) + coef
        grad[-1] = C * dz.sum()
        return value, grad

    theta0 = np.zeros(x.shape[1] + 1)
    if init is not None:
        theta0[:-1], theta0[-1] = init[0], init[1]
    result = optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return result.x[:-1].astype(np.float32), float(result.x[-1])


# ---------------------------------------------------------------------------------------------- flip rates

def flip_rate_from_pairs(pairs: Sequence[tuple[bool, bool]]) -> NoiseRates:
    """Symmetric flip rate from items two moderators labelled independently: disagreement d = 2 rho (1 - rho)."""
    if not pairs:
        raise ConfigError("no item was reviewed twice: give flip rates in the config or a gold set")
    d = sum(a != b for a, b in pairs) / len(pairs)
    rho = (1.0 - math.sqrt(max(0.0, 1.0 - 2.0 * min(d, 0.5)))) / 2.0
    rho = min(rho, 0.45)
    return NoiseRates(rho, rho, source="items reviewed twice", n=len(pairs))


def flip_rates_from_gold(noisy: Sequence[bool], truth: Sequence[bool]) -> NoiseRates:
    """Class-wise flip rates from moderator labels of items whose true label is known."""
    noisy_a, truth_a = np.asarray(noisy, bool), np.asarray(truth, bool)
    if truth_a.sum() == 0 or (~truth_a).sum() == 0:
        raise ConfigError("the gold set needs both harmful and benign items that moderators reviewed")
    pos = float((~noisy_a[truth_a]).mean())
    neg = float(noisy_a[~truth_a].mean())
    return NoiseRates(min(pos, 0.45), min(neg, 0.45), source="gold set", n=len(truth_a))


# ---------------------------------------------------------------------------------------------- propensity

def propensity_features(scores: np.ndarray, decisions: np.ndarray) -> np.ndarray:
    """What the review decision can depend on: the guard's scores, its decisions and how borderline it was."""
    scores = np.atleast_2d(np.asarray(scores, np.float64))
    decisions = np.atleast_2d(np.asarray(decisions, np.float64))
    logit = np.log(np.clip(scores, 1e-4, 1 - 1e-4) / np.clip(1 - scores, 1e-4, 1))
    margin = np.abs(scores - 0.5)
    return np.hstack([scores, scores**2, logit, decisions, margin, np.min(margin, axis=1, keepdims=True)])


def fit_propensity(features: np.ndarray, reviewed: np.ndarray, seed: int = 0) -> np.ndarray:
    """P(reviewed) for every audited item, from a logistic model over ``features``."""
    reviewed = np.asarray(reviewed, bool)
    if reviewed.all() or not reviewed.any():
        return np.full(len(reviewed), float(reviewed.mean()))
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-9
    clf = logistic((features - mean) / std, reviewed, seed=seed)
    return clf.predict_proba((features - mean) / std)[:, 1]


def ipw_weights(propensity: np.ndarray, *, clip: float = 0.02, normalize: bool = True) -> np.ndarray:
    """Inverse-propensity weights for the reviewed items: propensities clipped below at ``clip`` (no single
    item counts more than 1/clip), then scaled to average 1 (self-normalised)."""
    if not 0.0 < clip <= 1.0:
        raise ConfigError(f"the propensity clip must lie in (0, 1], got {clip}")
    w = 1.0 / np.clip(np.asarray(propensity, np.float64), clip, 1.0)
    return w / w.mean() if normalize and len(w) else w


def effective_sample_size(weights: np.ndarray) -> float:
    w = np.asarray(weights, np.float64)
    return float(w.sum() ** 2 / (w**2).sum()) if len(w) and (w**2).sum() > 0 else 0.0
