"""How many harmful requests evade the guard once disguised, with and without the evasion views.

``bench/fixtures/evasion_requests.jsonl`` holds 15 plainly harmful requests and 15 harmless look-alikes
(written for this check; no training set contains them, and training never reads this folder). Each is
disguised by every transformation below, written here independently of ``railguard.evasion`` (the views must
undo what an attacker does, not what our own code does). For each transformation the table gives how many of
the 15 harmful requests are *not* flagged (evade) and how many of the 15 harmless ones are flagged, for the
guard with its evasion views (the default) and without them (``evasion=False``).

It also times ordinary text (the harmless requests and a few longer passages, undisguised) with and without
the views: the views must not double the cost of text that hides nothing.

    python bench/evasion.py --out bench/results/evasion.json
    python bench/evasion.py --model runs/v2               # a trained model folder instead of the shipped one
"""

from __future__ import annotations

import argparse
import base64
import codecs
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from railguard.guards.embedded import EmbeddedGuard
from railguard.types import GuardInput

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "evasion_requests.jsonl"

_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7",
                       "A": "4", "E": "3", "I": "1", "O": "0", "S": "5", "T": "7"})
_CYRILLIC = str.maketrans({"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "x": "х", "y": "у", "i": "і"})


def _spaced(text: str) -> str:
    return "  ".join(" ".join(word) for word in text.split())


def _zero_width(text: str) -> str:
    return " ".join("\u200b".join(word) for word in text.split())


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "plain": lambda t: t,
    "leetspeak": lambda t: t.translate(_LEET),
    "base64 (raw)": lambda t: base64.b64encode(t.encode()).decode(),
    "repeated 3x": lambda t: " ".join([t] * 3),
    "homoglyphs": lambda t: t.translate(_CYRILLIC),
    "zero-width": _zero_width,
    "spaced letters": _spaced,
    "rot13": lambda t: codecs.encode(t, "rot13"),
    "hex": lambda t: t.encode().hex(),
}

LONG = ("The committee met on Tuesday to review the quarterly budget. Revenue grew by four percent, mostly "
        "from the new subscription plan, while costs stayed flat. The board asked for a plan to reduce "
        "customer churn before the next meeting and approved hiring two engineers for the data team. ") * 4


def load(path: Path = FIXTURE) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(guard: EmbeddedGuard, rows: list[dict]) -> dict[str, dict[str, int]]:
    out = {}
    for name, transform in TRANSFORMS.items():
        inputs = [GuardInput(prompt=transform(r["text"])) for r in rows]
        verdicts = guard.check(inputs)
        out[name] = {
            "harmful_evaded": sum(not v.flagged for v, r in zip(verdicts, rows) if r["label"] == "harmful"),
            "harmful": sum(r["label"] == "harmful" for r in rows),
            "benign_flagged": sum(v.flagged for v, r in zip(verdicts, rows) if r["label"] == "benign"),
            "benign": sum(r["label"] == "benign" for r in rows),
        }
    return out


def cost_ms(guard: EmbeddedGuard, texts: list[str], repeats: int) -> float:
    """Median single-item check time over ``texts``, in ms."""
    for t in texts[:3]:
        guard.check([GuardInput(prompt=t)])
    times = []
    for _ in range(repeats):
        for t in texts:
            start = time.perf_counter()
            guard.check([GuardInput(prompt=t)])
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="a model folder (default: the shipped embedded model)")
    ap.add_argument("--repeats", type=int, default=5, help="timing rounds over the ordinary texts")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = ap.parse_args()
    rows = load()
    with_views, without = EmbeddedGuard(args.model), EmbeddedGuard(args.model, evasion=False)
    result = {"with_views": table(with_views, rows), "without_views": table(without, rows)}
    ordinary = [r["text"] for r in rows if r["label"] == "benign"] + [LONG]
    result["ordinary_text_ms"] = {"with_views": cost_ms(with_views, ordinary, args.repeats),
                                  "without_views": cost_ms(without, ordinary, args.repeats)}
    result["model"] = str(args.model or "shipped")
    print("| transformation | harmful evading (of 15), views | without views | harmless flagged, views | without |")
    print("|---|---|---|---|---|")
    for name in TRANSFORMS:
        a, b = result["with_views"][name], result["without_views"][name]
        print(f"| {name} | {a['harmful_evaded']} | {b['harmful_evaded']} | {a['benign_flagged']} | {b['benign_flagged']} |")
    c = result["ordinary_text_ms"]
    print(f"\nordinary text, median single check: {c['with_views']:.2f} ms with views, "
          f"{c['without_views']:.2f} ms without")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
