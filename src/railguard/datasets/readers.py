"""Reading a shared dataset's rows, and the hashes that record which files a run read."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigError


def read_rows(data_dir: Path, name: str) -> list[dict]:
    path = Path(data_dir) / name / "data.jsonl.gz"
    if not path.is_file():
        raise ConfigError(f"dataset {name!r} not found at {path}; point RAILGUARD_DATA or --data at the data folder")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def data_hashes(data_dir: Path, names: Iterable[str]) -> dict[str, str]:
    out = {}
    for name in names:
        path = Path(data_dir) / name / "data.jsonl.gz"
        if path.is_file():
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
