"""Feedback simulation: can a guard learn from noisy, selective moderator labels? -> bench/results/feedback_sim.json

10,000 of the training pool's prompt-harm examples (seeded draw) are split at random into a *visible* 1% (true
labels; the weak starting model's head is trained on it alone: with more, the head on the shipped encoder's
features is already at its benchmark ceiling and there is no F1 to gain) and a *hidden* 99% that plays the
deployment traffic.
The weak model scores the hidden items; simulated moderators review an item with a probability that rises
with its score (``0.03 + 0.57 * score**2``: flagged items are looked at far more often) and flip its label
with probability 20% or 30%; 15% of the reviewed items get a second, independent look. The heads are then
retrained on the visible part plus the reviews with

- ``naive``: the moderators' labels as they are;
- ``noise_aware``: the forward-corrected loss, flip rate estimated from the items reviewed twice;
- ``propensity``: inverse-propensity weights from a model of P(reviewed | weak model's score and decision),
  clipped at 0.02 and self-normalised;
- ``both``: the two together (what ``railguard improve`` does by default);
- ``clean_unbiased``: as many reviews, drawn uniformly from the hidden part, with the true labels (the
  reference for the gain that perfect feedback would bring);
- ``clean_all``: every hidden item with its true label (an upper bound).

Only the linear heads are retrained, on the shipped encoder's features, embedded once and cached
(``railguard.train.features``), so each fit takes seconds. F1 at a probability of 0.5 (no recalibration:
calibrating on clean held-out data of the same distribution would hide most of what noise and selection do)
on the English prompt-harm test benchmarks; mean over 5 seeds with 95% t-intervals.

    PYTHONPATH=src python bench/feedback_sim.py     # 7 fits per seed and noise level; ~20 min on 2 busy cores
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from railguard.config import CoreSettings
from railguard.eval import benchmarks as B
from railguard.models.heads import sigmoid
from railguard.train.data import DEFAULT_SEED
from railguard.train.features import FeatureCache
from railguard.train.improve import train_pool
from railguard.train.noise import (effective_sample_size, fit_logistic, fit_propensity, flip_rate_from_pairs,
                                   ipw_weights, propensity_features)
from railguard.train.pipeline import _binary_metrics

BENCHES = ("openai_moderation", "xstest", "simple_safety_tests", "harmbench")
METHODS = ("weak", "naive", "noise_aware", "propensity", "both", "clean_unbiased", "clean_all")
T95 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 8: 2.365, 10: 2.262}


def review_probability(score: np.ndarray) -> np.ndarray:
    return 0.03 + 0.57 * score**2


def ci(values: list[float]) -> dict:
    v = np.asarray(values, float)
    half = T95.get(len(v), 1.96) * v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else float("nan")
    return {"mean": round(float(v.mean()), 4), "ci95": round(float(half), 4), "per_seed": [round(float(x), 4) for x in v]}


def f1s(coef: np.ndarray, bias: float, tests: dict) -> dict[str, float]:
    out = {}
    for name, (x, y) in tests.items():
        out[name] = _binary_metrics(sigmoid(x @ coef + bias), y, 0.5)["f1"]
    out["mean"] = round(float(np.mean([out[n] for n in tests])), 4)
    return out


def run_seed(seed: int, flip: float, x: np.ndarray, y: np.ndarray, w: np.ndarray, tests: dict,
             visible_share: float, double_share: float) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    n = len(y)
    visible = rng.random(n) < visible_share
    vis, hid = np.flatnonzero(visible), np.flatnonzero(~visible)
    fits: dict[str, tuple[np.ndarray, float]] = {}
    weak = fit_logistic(x[vis], y[vis], sample_weight=w[vis])
    fits["weak"] = weak
    score = sigmoid(x[hid] @ weak[0] + weak[1])
    reviewed = rng.random(len(hid)) < review_probability(score)
    r_idx = hid[reviewed]
    first = np.where(rng.random(len(r_idx)) < flip, ~y[r_idx], y[r_idx])
    twice = rng.random(len(r_idx)) < double_share
    second = np.where(rng.random(len(r_idx)) < flip, ~y[r_idx], y[r_idx])
    rates = flip_rate_from_pairs(list(zip(first[twice], second[twice])))
    # each review is one row; an item reviewed twice gives two rows of half weight
    rows = np.concatenate([r_idx, r_idx[twice]])
    labels = np.concatenate([first, second[twice]])
    share = np.concatenate([np.where(twice, 0.5, 1.0), np.full(twice.sum(), 0.5)])
    decisions = (score >= 0.5).astype(float)[:, None]
    prop = fit_propensity(propensity_features(score[:, None], decisions), reviewed, seed)[reviewed]
    ipw = ipw_weights(prop, clip=0.02)
    ipw_rows = np.concatenate([ipw, ipw[twice]])

    def fit(extra_rows, extra_labels, extra_weight, rho=0.0):
        xs = np.vstack([x[vis], x[extra_rows]])
        ys = np.concatenate([y[vis], extra_labels])
        ws = np.concatenate([w[vis], w[extra_rows] * extra_weight])
        rho_rows = np.concatenate([np.zeros(len(vis)), np.full(len(extra_rows), rho)])
        return fit_logistic(xs, ys, sample_weight=ws, rho_pos=rho_rows, rho_neg=rho_rows, init=weak)

    fits["naive"] = fit(rows, labels, share)
    fits["noise_aware"] = fit(rows, labels, share, rates.pos)
    fits["propensity"] = fit(rows, labels, share * ipw_rows)
    fits["both"] = fit(rows, labels, share * ipw_rows, rates.pos)
    uniform = rng.choice(hid, size=len(r_idx), replace=False)
    fits["clean_unbiased"] = fit(uniform, y[uniform], np.ones(len(uniform)))
    fits["clean_all"] = fit(hid, y[hid], np.ones(len(hid)))
    info = {"visible": int(len(vis)), "hidden": int(len(hid)), "reviewed": int(reviewed.sum()),
            "reviewed_twice": int(twice.sum()), "estimated_flip_rate": round(rates.pos, 4),
            "positive_share_hidden": round(float(y[hid].mean()), 4),
            "positive_share_reviewed": round(float(y[r_idx].mean()), 4),
            "effective_sample_size": round(effective_sample_size(ipw), 1)}
    return {m: f1s(*fits[m], tests) for m in METHODS}, info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--flips", default="0.2,0.3")
    parser.add_argument("--visible", type=float, default=0.01, help="share of the pool the weak model sees")
    parser.add_argument("--max-pool", type=int, default=10000,
                        help="prompt-harm examples drawn from the pool (seeded; keeps 5 seeds x 7 fits in minutes)")
    parser.add_argument("--double", type=float, default=0.15, help="share of reviewed items reviewed twice")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "feedback_sim.json")
    args = parser.parse_args()
    start = time.perf_counter()
    data = CoreSettings.from_env().data_dir
    cache = FeatureCache()
    pool, _ = train_pool(data, DEFAULT_SEED)
    pool = [ex for ex in pool if "prompt_harmful" in ex.targets]
    if len(pool) > args.max_pool:
        pool = [pool[i] for i in sorted(np.random.default_rng(DEFAULT_SEED).choice(len(pool), args.max_pool, replace=False))]
    x = cache.embed(pool, label="pool", progress=True)
    y = np.array([ex.targets["prompt_harmful"] >= 0.5 for ex in pool])
    w = np.array([ex.weight for ex in pool])
    tests = {}
    for name in BENCHES:
        items = B.load(B.BENCHMARKS[name], data)
        tests[name] = (cache.embed_texts([it.input.prompt for it in items]),
                       np.array([it.label for it in items]))
    embed_s = time.perf_counter() - start
    results = {}
    for flip in [float(f) for f in args.flips.split(",")]:
        per_seed = [run_seed(DEFAULT_SEED + s, flip, x, y, w, tests, args.visible, args.double)
                    for s in range(args.seeds)]
        summary = {m: {b: ci([r[m][b] for r, _ in per_seed]) for b in (*BENCHES, "mean")} for m in METHODS}
        gains = {m: [r[m]["mean"] - r["weak"]["mean"] for r, _ in per_seed] for m in METHODS}
        recovery = [g / c if c > 0 else float("nan") for g, c in zip(gains["both"], gains["clean_unbiased"])]
        results[f"flip_{flip:g}"] = {
            "f1": summary,
            "recovery_of_clean_gain": {
                "both": ci(recovery),
                "ratio_of_means": round(float(np.mean(gains["both"]) / np.mean(gains["clean_unbiased"])), 4),
                **{m: round(float(np.mean(gains[m]) / np.mean(gains["clean_unbiased"])), 4)
                   for m in ("naive", "noise_aware", "propensity")}},
            "both_minus_naive_mean_f1": ci([r["both"]["mean"] - r["naive"]["mean"] for r, _ in per_seed]),
            "runs": [info for _, info in per_seed],
        }
        print(f"flip {flip}: " + ", ".join(f"{m} {summary[m]['mean']['mean']:.3f}" for m in METHODS), file=sys.stderr)
    out = {
        "command": "PYTHONPATH=src python bench/feedback_sim.py " + " ".join(sys.argv[1:]),
        "setup": {"pool_examples": len(pool), "max_pool": args.max_pool, "visible_share": args.visible, "double_review_share": args.double,
                  "review_probability": "0.03 + 0.57 * weak_score**2", "propensity_clip": 0.02,
                  "threshold": 0.5, "benchmarks": list(BENCHES), "seeds": args.seeds,
                  "encoder": "shipped (features cached); heads only"},
        "results": results,
        "seconds": {"embedding_and_loading": round(embed_s, 1), "total": round(time.perf_counter() - start, 1)},
        "note": "timed on a shared 2-core machine under load",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
