"""Layer probes for the hesitation signal: a calibrated logistic probe per inner encoder layer and task.

``railguard train`` adds them to every model it writes; :func:`add_probes` adds them to an existing model
folder (the shipped one included) without touching its encoder weights or heads.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..models.artifacts import ENCODER_FILE, TOKENIZER_FILE, WINDOW, read_manifest, write_manifest
from ..models.encoder import TextEncoder
from ..models.views import PROBE_TASKS, PROBES_FILE, Probes, expose_layers
from ..progress import progress_bar
from .augment import augment
from .data import DEFAULT_SEED, Example, build_pool
from .finetune import first_window
from .heads import calibrate, fit_heads

#: Probes learn from a sample of the pool: a linear read-out of a 384-d vector needs far fewer examples.
MAX_PROBE_EXAMPLES = 12_000


def embed_views(enc: TextEncoder, examples: list[Example], layers: list[str], label: str,
                progress: bool) -> np.ndarray:
    """Pooled inner-layer states of each example's first window: (n, layers, dim)."""
    out = np.zeros((len(examples), len(layers), enc.dim), np.float32)
    step = 256
    with progress_bar(f"encoding {label} (layer views)", total=len(examples), enabled=progress) as bar:
        for s in range(0, len(examples), step):
            part = examples[s : s + step]
            out[s : s + len(part)] = enc.encode_views([first_window(enc, ex) for ex in part], layers)[1]
            bar.advance(len(part))
    return out


def fit_probes(train_views: np.ndarray, train: list[Example], held_views: np.ndarray, held: list[Example],
               layers: list[str], seed: int) -> Probes:
    per_layer = []
    for j in range(len(layers)):
        heads = fit_heads(train_views[:, j], train, seed, names=PROBE_TASKS)
        per_layer.append(calibrate(heads, held_views[:, j], held, seed))
    return Probes.from_heads(layers, per_layer)


def _teaches(ex: Example) -> bool:
    return any(t in ex.targets for t in PROBE_TASKS)


def train_probes(encoder_file: Path, tokenizer_file: Path, train: list[Example], held: list[Example], seed: int,
                 progress: bool, max_examples: int = MAX_PROBE_EXAMPLES) -> Probes:
    """Expose the inner layers of the encoder file (rewritten in place) and fit their probes on a sample
    of the training examples, calibrated on the held-out ones."""
    layers = expose_layers(encoder_file)
    rng = random.Random(seed)
    train = [ex for ex in train if _teaches(ex)]
    held = [ex for ex in held if _teaches(ex)]
    if len(train) > max_examples:
        train = rng.sample(train, max_examples)
    if len(held) > max_examples // 3:
        held = rng.sample(held, max_examples // 3)
    enc = TextEncoder(encoder_file, tokenizer_file, **WINDOW)
    return fit_probes(embed_views(enc, train, layers, "train", progress), train,
                      embed_views(enc, held, layers, "held-out", progress), held, layers, seed)


def add_probes(model_dir: str | Path, data_dir: str | Path, *, seed: int | None = None,
               max_examples: int = MAX_PROBE_EXAMPLES, progress: bool = True) -> dict:
    """Add layer probes to a trained model folder (the shipped one included), on the same pool and
    held-out split it was trained with; rewrites the encoder file, probes.npz and the manifest. The
    encoder's weights and the heads stay as they are."""
    model_dir, data_dir = Path(model_dir), Path(data_dir)
    if not data_dir.is_dir():
        raise ConfigError(f"data folder {data_dir} not found; set RAILGUARD_DATA or pass --data")
    manifest = read_manifest(model_dir)
    seed = int(manifest.get("seed", DEFAULT_SEED)) if seed is None else seed
    pool = build_pool(data_dir, seed=seed, augmenter=lambda ex: augment(ex, seed))
    probes = train_probes(model_dir / manifest["encoder"].get("onnx", ENCODER_FILE),
                          model_dir / manifest["encoder"].get("tokenizer", TOKENIZER_FILE),
                          pool.train, pool.heldout, seed, progress, max_examples)
    probes.save(model_dir)
    meta = {k: v for k, v in manifest.items() if k != "files"}
    meta["probes"] = {"file": PROBES_FILE, "layers": list(probes.layers), "tasks": list(probes.tasks)}
    return write_manifest(model_dir, meta)
