"""Custom categories: how well a category described by a few examples is found, and the calibration.

Every built-in category with enough held-out examples plays a custom category in turn: its examples are
drawn from the training part of the shared data, and it is scored on the held-out part (positives: that
category; negatives: every other held-out prompt, benign or another harm). The calibration used for each
category is fitted on the *other* categories only (leave-one-category-out), so the numbers say what a
new category of yours would get. Prints a Markdown table; writes JSON and a recall-vs-examples plot.

    python bench/custom_categories.py                      # evaluate; results in bench/results/
    python bench/custom_categories.py --write-calibration  # refit the shipped calibration for this encoder
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import railguard
from railguard.config import CoreSettings
from railguard.custom_categories import CALIBRATION_FILE, encoder_sha256
from railguard.train.custom_categories import KS, calibration_data, fit_calibration, sample_rows

ROOT = Path(__file__).resolve().parent.parent


def evaluate(data, draws: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    per_category: dict[str, dict[int, dict[str, float]]] = {}
    for c in data.categories:
        others = [o for o in data.categories if o != c]
        cal = fit_calibration(data, categories=others, seed=seed)
        per_k = {}
        for k in KS:
            rec, prec = [], []
            for _ in range(draws):
                x, y = sample_rows(data, c, k, 0, rng)
                pred = cal.probs(x) >= 0.5
                tp = float((pred & (y == 1)).sum())
                rec.append(tp / max(1.0, float(y.sum())))
                prec.append(tp / float(pred.sum()) if pred.sum() else float("nan"))
            per_k[k] = {"recall": float(np.mean(rec)), "precision": float(np.nanmean(prec)) if not all(
                np.isnan(prec)) else float("nan")}
        per_category[c] = per_k
    mean = {k: {m: float(np.nanmean([per_category[c][k][m] for c in data.categories])) for m in ("recall", "precision")}
            for k in KS}
    return {"per_category": per_category, "mean": mean,
            "heldout_positives": {c: int(data.heldout_labels[c].sum()) for c in data.categories},
            "heldout_size": len(data.heldout)}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for per_k in results["per_category"].values():
        ax.plot(KS, [per_k[k]["recall"] for k in KS], color="0.8", lw=1)
    ax.plot(KS, [results["mean"][k]["recall"] for k in KS], "o-", lw=2.5, label="recall (mean over categories)")
    ax.plot(KS, [results["mean"][k]["precision"] for k in KS], "s--", lw=2, label="precision (mean)")
    ax.set_xscale("log")
    ax.set_xticks(KS, [str(k) for k in KS])
    ax.set_xlabel("positive examples describing the category")
    ax.set_ylim(0, 1)
    ax.set_title("custom categories: held-out recall at threshold 0.5\n(grey: each category alone)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="shared data folder")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--draws", type=int, default=5, help="random example sets per category and size")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--write-calibration", action="store_true",
                        help=f"fit on every category and write src/railguard/data/{CALIBRATION_FILE}")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    guard = railguard.load_guard("embedded")
    data = calibration_data(guard.encoder, args.data or CoreSettings.from_env().data_dir, seed=args.seed)
    print(f"embedded {len(data.heldout)} held-out prompts, categories {', '.join(data.categories)} "
          f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    if args.write_calibration:
        cal = fit_calibration(data, seed=args.seed, encoder_sha=encoder_sha256(guard))
        path = ROOT / "src" / "railguard" / "data" / CALIBRATION_FILE
        path.write_text(json.dumps(cal.to_json(), indent=1) + "\n", encoding="utf-8")
        print(f"calibration written to {path}", file=sys.stderr)
    results = evaluate(data, args.draws, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "custom_categories.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    plot(results, args.out / "custom_categories_recall.png")
    print("| category | held-out positives | recall @5 | precision @5 | recall @20 |")
    print("|---|---|---|---|---|")
    for c, per_k in results["per_category"].items():
        print(f"| {c} | {results['heldout_positives'][c]} | {per_k[5]['recall']:.3f} | {per_k[5]['precision']:.3f} "
              f"| {per_k[20]['recall']:.3f} |")
    m = results["mean"]
    print(f"| **mean** | | {m[5]['recall']:.3f} | {m[5]['precision']:.3f} | {m[20]['recall']:.3f} |")
    print("\nmean recall/precision by number of examples: " + ", ".join(
        f"{k}: {m[k]['recall']:.2f}/{m[k]['precision']:.2f}" for k in KS))
    print(f"({len(data.heldout)} held-out prompts; {time.perf_counter() - start:.0f} s; plot: "
          f"{args.out / 'custom_categories_recall.png'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
