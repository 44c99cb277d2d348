"""Robustness to spurious cues: Crome-style augmentation vs the default pool -> bench/results/robustness.json

Both models are *heads-only* retrainings of the prompt-harm head on the shipped encoder's (cached) features,
so the comparison is fair: the same encoder, the same fitting and calibration (Platt on the default pool's
held-out part), only the training pool differs (``railguard.train.crome``: neutral and causal augmentations).
The shipped model's own head is listed for reference.

- **Flip rate**: each test prompt is wrapped by every neutral transform family (padding, politeness, tone,
  Markdown, case, typos, role-play) with the *evaluation* templates, which training never used; a flip is a
  prompt-harm decision that differs from the one on the plain prompt.
- **F1** on the prompt-harm test benchmarks and **XSTest's false-positive rate** (exaggerated safety).

    PYTHONPATH=src python bench/robustness.py            # minutes with a warm feature cache
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

from railguard.config import CoreSettings
from railguard.eval import benchmarks as B
from railguard.models.artifacts import EMBEDDED_DIR, read_manifest
from railguard.models.heads import Heads, sigmoid
from railguard.train.crome import NEUTRAL, neutral
from railguard.train.data import DEFAULT_SEED, build_pool
from railguard.train.features import FeatureCache
from railguard.train.noise import fit_logistic
from railguard.train.pipeline import _binary_metrics, class_source_weights, pool_augmenter, source_weights

BENCHES = ("openai_moderation", "xstest", "simple_safety_tests", "harmbench")
HEAD = "prompt_harmful"


def harm_rows(examples):
    rows = [ex for ex in examples if HEAD in ex.targets]
    factor = np.clip(source_weights(rows, 0.5), 0.3, 3.0)
    return rows, np.array([ex.targets[HEAD] >= 0.5 for ex in rows]), np.array([ex.weight for ex in rows]) * factor


def platt(logits: np.ndarray, labels: np.ndarray, examples) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=100.0).fit(logits[:, None], labels, sample_weight=class_source_weights(examples, labels))
    return float(clf.coef_[0, 0]), float(clf.intercept_[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flip-limit", type=int, default=500, help="prompts per benchmark for the flip rate")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "robustness.json")
    args = parser.parse_args()
    start = time.perf_counter()
    data, seed = CoreSettings.from_env().data_dir, DEFAULT_SEED
    cache = FeatureCache()
    pools = {mode: build_pool(data, seed=seed, augmenter=pool_augmenter(seed, mode)) for mode in ("default", "crome")}
    held, held_y, _ = harm_rows(pools["default"].heldout)
    x_held = cache.embed(held, label="held-out", progress=True).astype(np.float64)
    shipped = Heads.load(EMBEDDED_DIR, read_manifest(EMBEDDED_DIR)["heads"])
    j = shipped.index(HEAD)
    models: dict[str, tuple[np.ndarray, float, float, float]] = {
        "shipped": (shipped.weight[j], float(shipped.bias[j]), float(shipped.calib_scale[j]), float(shipped.calib_shift[j]))}
    sizes = {}
    for mode, pool in pools.items():
        rows, y, w = harm_rows(pool.train)
        x = cache.embed(rows, label=f"{mode} pool", progress=True).astype(np.float64)
        coef, bias = fit_logistic(x, y, sample_weight=w, init=(shipped.weight[j], float(shipped.bias[j])))
        a, c = platt(x_held @ coef + bias, held_y, held)
        models[f"heads_{mode}"] = (coef, bias, a, c)
        sizes[mode] = {"train_rows": len(rows), "crome_rows": sum(ex.source.startswith("crome") for ex in rows)}

    def prob(name: str, feats: np.ndarray) -> np.ndarray:
        coef, bias, a, c = models[name]
        return sigmoid(a * (feats @ coef + bias) + c)

    rng = random.Random(seed)
    results: dict[str, dict] = {name: {"f1": {}, "flip_rate": {}, "flip_rate_by_family": {}} for name in models}
    for bench in BENCHES:
        items = B.load(B.BENCHMARKS[bench], data)
        x = cache.embed_texts([it.input.prompt for it in items], label=bench).astype(np.float64)
        labels = np.array([it.label for it in items])
        sample = B.limited(items, args.flip_limit)
        base_x = cache.embed_texts([it.input.prompt for it in sample]).astype(np.float64)
        wrapped = {fam: [neutral(it.input.prompt, fam, rng, "eval") for it in sample] for fam in NEUTRAL}
        wx = {fam: cache.embed_texts(texts, label=f"{bench} {fam}", progress=True).astype(np.float64)
              for fam, texts in wrapped.items()}
        for name in models:
            metrics = _binary_metrics(prob(name, x), labels, 0.5)
            results[name]["f1"][bench] = metrics["f1"]
            if bench == "xstest":
                results[name]["xstest_fpr"] = metrics["fpr"]
            before = prob(name, base_x) >= 0.5
            flips = {fam: float(((prob(name, wx[fam]) >= 0.5) != before).mean()) for fam in NEUTRAL}
            results[name]["flip_rate_by_family"][bench] = {k: round(v, 4) for k, v in flips.items()}
            results[name]["flip_rate"][bench] = round(float(np.mean(list(flips.values()))), 4)
    for name in models:
        results[name]["flip_rate"]["mean"] = round(float(np.mean([results[name]["flip_rate"][b] for b in BENCHES])), 4)
    base, crome = results["heads_default"], results["heads_crome"]
    out = {
        "command": "PYTHONPATH=src python bench/robustness.py " + " ".join(sys.argv[1:]),
        "setup": {"encoder": "shipped, features cached; heads-only for both models", "head": HEAD,
                  "calibration": "Platt on the default pool's held-out part", "threshold": 0.5,
                  "flip_limit_per_benchmark": args.flip_limit, "families": list(NEUTRAL), "pools": sizes},
        "results": results,
        "targets": {
            "flip_rate_cut": round(1 - crome["flip_rate"]["mean"] / base["flip_rate"]["mean"], 4)
            if base["flip_rate"]["mean"] else None,
            "largest_f1_loss": round(max(base["f1"][b] - crome["f1"][b] for b in BENCHES), 4),
            "xstest_fpr": {"heads_default": base.get("xstest_fpr"), "heads_crome": crome.get("xstest_fpr")},
        },
        "seconds": round(time.perf_counter() - start, 1),
        "note": "timed on a shared 2-core machine under load",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["targets"]), file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
