"""Language routing: how often the cascade's detector sends text to the right tier, and what it costs.

    python bench/lang_id.py --out bench/results/lang_id.json

For each language of multijail and of the held-out part of benign_multilingual, the share of texts taken
to be English (those stay with the English-only embedded tier), the share whose language is named
exactly, and the English benchmarks' share kept as English; time per text (script test + lingua).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from railguard import lang
from railguard.config import CoreSettings
from railguard.train.data import HELDOUT_FRACTION, DEFAULT_SEED, holdout_of, norm_key, read_rows

ENGLISH_SETS = ("openai_moderation", "xstest", "simple_safety_tests", "harmbench")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("bench/results/lang_id.json"))
    args = ap.parse_args()
    data = CoreSettings.from_env().data_dir
    sets: dict[str, list[tuple[str, str]]] = {
        "multijail": [(r.get("lang") or "en", r["prompt"]) for r in read_rows(data, "multijail")],
        "benign_multilingual (held-out)": [
            (r.get("lang") or "en", r["prompt"]) for r in read_rows(data, "benign_multilingual")
            if isinstance(r.get("prompt"), str) and holdout_of(norm_key(r["prompt"]), HELDOUT_FRACTION, DEFAULT_SEED)],
        "english benchmarks": [("en", r["prompt"]) for name in ENGLISH_SETS for r in read_rows(data, name)
                               if isinstance(r.get("prompt"), str)],
    }
    lang.detect("warm up the detector")
    report: dict = {"sets": {}}
    times: list[float] = []
    for name, rows in sets.items():
        total, as_en, exact = Counter(), Counter(), Counter()
        for language, text in rows:
            t0 = time.perf_counter()
            got = lang.detect(text)
            times.append((time.perf_counter() - t0) * 1000.0)
            total[language] += 1
            as_en[language] += got == "en"
            exact[language] += got == language
        report["sets"][name] = {lg: {"n": total[lg], "taken_as_english": round(as_en[lg] / total[lg], 4),
                                     "exact": round(exact[lg] / total[lg], 4)} for lg in sorted(total)}
    report["ms_per_text"] = {"mean": round(statistics.fmean(times), 4),
                             "p50": round(statistics.median(times), 4),
                             "p95": round(sorted(times)[int(0.95 * len(times))], 4)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["ms_per_text"]))
    for name, per in report["sets"].items():
        print(name, {lg: v["taken_as_english"] for lg, v in per.items()})


if __name__ == "__main__":
    main()
