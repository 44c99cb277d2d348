"""Response-harm F1 on the start of an answer: what a streamed answer can be judged on before it is complete.

The held-out part of the training pool (``railguard.train.data.build_pool``'s split, never trained on) holds
prompt + answer pairs labelled for response harm. Each answer with three sentences or more is judged whole,
on its first sentence, and on its first two (the prompt is given each time), with the model's own threshold;
the labels are the whole answer's. The gap between the rows is what a stricter threshold for partial text
(the proxy's ``stream_partial_threshold``) has to cover.

    RAILGUARD_DATA=../shared/data python bench/prefixes.py --out bench/results/prefixes.json
    RAILGUARD_DATA=../shared/data python bench/prefixes.py --model runs/v2
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from railguard.config import CoreSettings
from railguard.guards.embedded import EmbeddedGuard
from railguard.train.data import DEFAULT_SEED, RESPONSE, build_pool
from railguard.types import GuardInput

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
PREFIXES = {"first sentence": 1, "first two sentences": 2, "whole answer": None}


def held_out_answers(data_dir: Path, seed: int = DEFAULT_SEED) -> list[tuple[str, str, bool, str]]:
    """(prompt, answer, harmful, source) of every held-out answer with three sentences or more."""
    pool = build_pool(data_dir, seed=seed)
    longest: dict[str, tuple[str, str, bool, str]] = {}
    for ex in pool.heldout:
        if ex.view != RESPONSE or not ex.pair or "response_harmful" not in ex.targets:
            continue
        if len([p for p in _SENTENCE_END.split(ex.pair.strip()) if p.strip()]) < 3:
            continue
        key = ex.text + "\x00" + ex.pair[:80]  # prefix copies of one answer share its start
        if key not in longest or len(ex.pair) > len(longest[key][1]):
            longest[key] = (ex.text, ex.pair, ex.targets["response_harmful"] >= 0.5, ex.source)
    return list(longest.values())


def f1(pred: list[bool], gold: list[bool]) -> dict[str, float]:
    tp = sum(p and g for p, g in zip(pred, gold))
    fp = sum(p and not g for p, g in zip(pred, gold))
    fn = sum(g and not p for p, g in zip(pred, gold))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "precision": precision, "recall": recall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="a model folder (default: the shipped embedded model)")
    ap.add_argument("--data", type=Path, help="the datasets folder (default: RAILGUARD_DATA)")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = ap.parse_args()
    guard = EmbeddedGuard(args.model)
    answers = held_out_answers(args.data or CoreSettings.from_env().data_dir)
    gold = [a[2] for a in answers]
    result = {"model": str(args.model or "shipped"), "answers": len(answers), "harmful": sum(gold),
              "threshold": guard.thresholds["response_harmful"], "rows": {}}
    for name, n in PREFIXES.items():
        inputs = [GuardInput(prompt=p, response=a if n is None else " ".join(_SENTENCE_END.split(a.strip())[:n]))
                  for p, a, _, _ in answers]
        pred = [v.response_harmful for v in guard.check(inputs)]
        result["rows"][name] = f1(pred, gold)
    print(f"{len(answers)} held-out answers with 3+ sentences ({sum(gold)} harmful), "
          f"threshold {result['threshold']:.3f}\n")
    print("| judged on | F1 | precision | recall |\n|---|---:|---:|---:|")
    for name, m in result["rows"].items():
        print(f"| {name} | {m['f1']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
