"""Fitting the calibration of custom categories (run by ``bench/custom_categories.py``): every built-in category
plays a custom one, its examples drawn from the training part of the pool and scored on the held-out part (see
:mod:`railguard.custom_categories`, which scores with what this fits and never imports training code)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..custom_categories import PRIOR, Calibration, _unit, features, fit_logistic
from ..taxonomy import CATEGORY_NAMES
from .data import PROMPT, build_pool


@dataclass
class CalibrationData:
    """Embedded texts for fitting and evaluating: per category, train positives and held-out labels."""

    categories: tuple[str, ...]
    train_pos: dict[str, np.ndarray]  # category -> unit vectors of training positives
    train_benign: np.ndarray  # unit vectors of benign training prompts (negative examples)
    heldout: np.ndarray  # unit vectors of held-out prompts
    heldout_labels: dict[str, np.ndarray]  # category -> 0/1 per held-out prompt


def calibration_data(encoder: Any, data_dir: Path, *, min_heldout: int = 10, max_train: int = 200,
                     max_heldout_negatives: int = 2500, seed: int = 13) -> CalibrationData:
    """Embeds the pool's training examples (as category examples) and held-out prompts (to score)."""
    rng = random.Random(seed)
    pool = build_pool(data_dir, seed=seed)

    def labelled(examples):
        return [ex for ex in examples if ex.view == PROMPT and any(c in ex.targets for c in CATEGORY_NAMES)]

    train, heldout = labelled(pool.train), labelled(pool.heldout)
    cats = tuple(c for c in CATEGORY_NAMES
                 if sum(ex.targets.get(c) == 1.0 for ex in heldout) >= min_heldout
                 and sum(ex.targets.get(c) == 1.0 for ex in train) >= 20)
    positives = [ex for ex in heldout if any(ex.targets.get(c) == 1.0 for c in cats)]
    negatives = [ex for ex in heldout if ex not in positives]
    rng.shuffle(negatives)
    heldout = positives + negatives[:max_heldout_negatives]
    benign = [ex for ex in train if ex.targets.get("prompt_harmful") == 0.0]
    benign = rng.sample(benign, min(len(benign), 300))

    def embed(texts):
        return _unit(encoder.embed_texts(texts)) if texts else np.zeros((0, encoder.dim), np.float32)

    train_pos = {}
    for c in cats:
        pos = [ex.text for ex in train if ex.targets.get(c) == 1.0]
        train_pos[c] = embed(rng.sample(pos, min(len(pos), max_train)))
    labels = {c: np.asarray([ex.targets.get(c) == 1.0 for ex in heldout], np.float32) for c in cats}
    return CalibrationData(cats, train_pos, embed([ex.text for ex in benign]), embed([ex.text for ex in heldout]),
                           labels)


def sample_rows(data: CalibrationData, category: str, k: int, negatives: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of every held-out prompt for one draw of ``k`` examples of ``category``."""
    pos = data.train_pos[category]
    pos = pos[rng.choice(len(pos), size=min(k, len(pos)), replace=False)]
    neg = data.train_benign[rng.choice(len(data.train_benign), size=negatives, replace=False)] if negatives else None
    return features(data.heldout, pos, neg), data.heldout_labels[category]


KS: tuple[int, ...] = (1, 2, 3, 5, 8, 13, 20)


def fit_calibration(data: CalibrationData, *, categories: Sequence[str] | None = None, draws: int = 3,
                    seed: int = 13, encoder_sha: str = "") -> Calibration:
    """The logistic map from features to probability, fitted on draws of examples of each category."""
    rng = np.random.default_rng(seed)
    xs, ys, ws = [], [], []
    for c in categories or data.categories:
        for k in KS:
            for d in range(draws):
                x, y = sample_rows(data, c, k, 2 if d % 2 else 0, rng)
                xs.append(x)
                ys.append(y)
                ws.append(np.where(y == 1, PRIOR / max(1.0, y.sum()), (1 - PRIOR) / max(1.0, len(y) - y.sum())))
    x, y, w = np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)
    weights, bias = fit_logistic(x, y, w)
    info = {"categories": list(categories or data.categories), "examples_per_draw": list(KS), "draws": draws,
            "rows": len(y), "prior": PRIOR}
    return Calibration(weights, bias, encoder_sha, info)
