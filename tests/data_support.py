"""Writing small benchmark-shaped dataset folders for tests (the layout of ../shared/data)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def write_dataset(data_dir: Path, name: str, rows: list[dict]) -> None:
    """``data_dir/name/data.jsonl.gz`` with ``rows`` over test-split defaults for every field."""
    (data_dir / name).mkdir(parents=True, exist_ok=True)
    with gzip.open(data_dir / name / "data.jsonl.gz", "wt", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            base = {"id": f"{name}{i}", "response": None, "prompt_harmful": None, "response_refusal": None,
                    "injection": None, "categories": [], "lang": "en", "split": "test"}
            f.write(json.dumps({**base, **r}) + "\n")
