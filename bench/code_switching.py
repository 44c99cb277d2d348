"""Code-switched and romanized requests: do they fall between the English model and the multilingual tier?

``bench/fixtures/code_switching.jsonl`` holds 14 harmful requests and 10 harmless look-alikes written for this
check (half English and half another language, or Hindi, Arabic, Turkish and Tagalog in Latin letters; no
training set contains them). For the embedded model alone, the e5 tier alone and the default guard (which
routes each text by its language), the table counts the harmful requests flagged and the harmless ones
flagged, and says where the default guard sent each text.

    python bench/code_switching.py
    python bench/code_switching.py --e5 runs/e5v2          # another e5 heads folder
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import railguard
from railguard.lang import detect
from railguard.types import GuardInput

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "code_switching.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--e5", default=None, help="e5 heads folder (default: the shipped ones)")
    parser.add_argument("--rows", action="store_true", help="print every text with its scores")
    args = parser.parse_args()
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]
    inputs = [GuardInput(prompt=r["text"]) for r in rows]
    e5_name = f"e5:{args.e5}" if args.e5 else "e5"
    guards = {"embedded": railguard.load_guard("embedded"), e5_name: railguard.load_guard(e5_name)}
    if args.e5 is None:
        guards["default"] = railguard.load_guard()
    verdicts = {name: guard.check(inputs) for name, guard in guards.items()}
    harmful = [r["kind"] == "harmful" for r in rows]
    print(f"| guard | harmful flagged (of {sum(harmful)}) | harmless flagged (of {len(rows) - sum(harmful)}) |")
    print("|---|---:|---:|")
    for name, vs in verdicts.items():
        hits = sum(v.flagged for v, h in zip(vs, harmful) if h)
        false = sum(v.flagged for v, h in zip(vs, harmful) if not h)
        print(f"| {name} | {hits} | {false} |")
    if args.rows:
        for i, r in enumerate(rows):
            cells = " ".join(f"{name} {vs[i].scores['prompt_harmful']:.2f}{'*' if vs[i].flagged else ' '}"
                             for name, vs in verdicts.items())
            print(f"{r['kind'][:4]} {detect(r['text'])}  {cells}  {r['text']}")


if __name__ == "__main__":
    main()
