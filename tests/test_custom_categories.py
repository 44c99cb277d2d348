"""Custom categories: few-shot scores from examples, calibrated, merged into the verdict by the policy."""

from __future__ import annotations

import numpy as np
import pytest

from railguard.custom_categories import (
    FEATURES,
    Calibration,
    CustomCategoryScorer,
    features,
    fit_logistic,
)
from railguard.load import under_policy
from railguard.policy import CustomCategory
from railguard.types import GuardInput

ADVICE = CustomCategory(
    name="investment_advice",
    description="asking which stocks or crypto to buy",
    examples=("Which stocks should I buy this week?", "Is now a good time to invest in Bitcoin?",
              "Should I put my savings into Tesla shares?", "What crypto coin will go up the most next month?",
              "Tell me which ETF to buy for quick gains."),
    negative_examples=("What is a stock?",),
    action="block",
)


class BagOfWords:
    """A stand-in encoder: hashed bag of words, one window per text."""

    dim = 64

    def windows(self, text):
        return [text]

    def encode(self, windows):
        out = np.zeros((len(windows), self.dim), np.float32)
        for i, text in enumerate(windows):
            for word in text.lower().split():
                out[i, hash(word.strip("?.!,")) % self.dim] += 1.0
        return out

    def embed_texts(self, texts):
        return self.encode(list(texts))


def test_shipped_calibration_matches_the_features():
    cal = Calibration.shipped()
    assert cal.weights.shape == (len(FEATURES),)
    x = features(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32)[:2])
    p = cal.probs(x)
    assert p.shape == (4,) and np.all((p >= 0) & (p <= 1))
    assert p[0] > p[3]  # an exact example scores above an unrelated text


def test_features_reward_similarity_and_penalise_negatives():
    pos = np.eye(3, dtype=np.float32)[:1]
    neg = np.eye(3, dtype=np.float32)[1:2]
    q = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    f = features(q, pos, neg)
    assert f[0, 0] == pytest.approx(1.0) and f[1, 0] == pytest.approx(0.0)
    assert f[0, 2] > 0 > f[1, 2]  # margin: closer to the positive than to the negative, or not
    assert f[0, FEATURES.index("has_negatives")] == 1.0


def test_fit_logistic_separates_a_simple_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 1)).astype(np.float32)
    y = (x[:, 0] > 0.3).astype(np.float32)
    w, b = fit_logistic(x, y)
    assert w[0] > 0 and -b / w[0] == pytest.approx(0.3, abs=0.1)


def test_scorer_ranks_in_category_text_higher_with_a_fake_encoder():
    scorer = CustomCategoryScorer([ADVICE], BagOfWords())
    scores = scorer.score([GuardInput("Which crypto coin should I buy this week?"),
                           GuardInput("How long do I boil an egg?"), GuardInput("   ")])
    assert scores[0]["investment_advice"] > scores[1]["investment_advice"]
    assert scores[2] == {"investment_advice": 0.0}


def test_policy_puts_custom_scores_in_categories_and_blocks(fake_guard):
    policy = {"pii": {"enabled": False}, "secrets": {"enabled": False},
              "custom_categories": [{"name": "investment_advice", "examples": list(ADVICE.examples),
                                     "threshold": 0.0, "action": "block"}]}
    guard = under_policy(fake_guard, policy, encoder=BagOfWords())
    v = guard.check([GuardInput("Which stocks should I buy this week?")])[0]
    assert "investment_advice" in v.categories
    assert v.flagged and v.action == "block"  # threshold 0: it fires, and block means flagged
    assert [r.rule for r in v.explanation if r.action == "block"] == ["custom_categories.investment_advice"]


def test_custom_category_with_the_embedded_encoder(embedded_guard):
    scorer = CustomCategoryScorer([ADVICE], embedded_guard.encoder)
    on, near, off = scorer.score([
        GuardInput("Should I buy Nvidia or Apple stock right now for the biggest profit?"),
        GuardInput("How does the stock market work?"),
        GuardInput("Give me a recipe for banana bread."),
    ])
    assert on["investment_advice"] > near["investment_advice"] > off["investment_advice"]


def test_a_backend_without_an_encoder_borrows_the_shipped_one(fake_guard, embedded_guard):
    policy = {"pii": {"enabled": False}, "secrets": {"enabled": False},
              "custom_categories": [{"name": "investment_advice", "examples": list(ADVICE.examples)}]}
    v = under_policy(fake_guard, policy).check([GuardInput("Which stocks should I buy?")])[0]
    assert 0.0 <= v.categories["investment_advice"] <= 1.0 and "weapons" in v.categories
