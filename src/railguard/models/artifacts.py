"""Model directories: a ``manifest.json`` listing every artifact with its sha256, verified at load."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import ModelError

MANIFEST = "manifest.json"
EMBEDDED_DIR = Path(__file__).parent / "embedded"
#: The encoder and tokenizer files of a model folder written by ``railguard train``.
ENCODER_FILE, TOKENIZER_FILE = "encoder.onnx", "tokenizer.json"
#: The windows the encoder of a trained model folder reads.
WINDOW = {"max_tokens": 128, "overlap": 32, "pair_prompt_tokens": 48}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def encoder_sha256(manifest: dict[str, Any]) -> str:
    """What identifies a model folder's encoder, wherever railguard compares encoders (agent heads, custom
    categories, reused encoders, vector caches): the sha256 of its encoder file, as the manifest records it
    ('' when the manifest names none)."""
    onnx = (manifest.get("encoder") or {}).get("onnx", "")
    return str((manifest.get("files") or {}).get(onnx, ""))


def read_manifest(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"no {MANIFEST} in {model_dir}: not a railguard model directory") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON: {exc}") from None


def verify(model_dir: str | Path, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check every file named in the manifest against its sha256; raise ModelError on any mismatch."""
    model_dir = Path(model_dir)
    manifest = manifest if manifest is not None else read_manifest(model_dir)
    files = manifest.get("files") or {}
    if not files:
        raise ModelError(f"{model_dir / MANIFEST} lists no files")
    for name, expected in files.items():
        path = model_dir / name
        if not path.is_file():
            raise ModelError(f"model file missing: {path}")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelError(
                f"model file {path} is corrupt or was changed: sha256 {actual[:12]}… "
                f"does not match the manifest's {expected[:12]}…; reinstall railguard or retrain"
            )
    return manifest


def write_manifest(model_dir: str | Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Hash every file in the directory (but the manifest) and write the manifest with ``meta``."""
    model_dir = Path(model_dir)
    files = {
        p.name: sha256_file(p)
        for p in sorted(model_dir.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {**meta, "files": files}
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest
