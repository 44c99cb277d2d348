"""``railguard improve``: retrain a model's heads from its training pool plus moderator feedback.

The encoder stays as it is (the heads are refitted on its cached features, see ``features.py``). Feedback
rows enter with

- a noise-aware loss (``noise.py``): flip rates from the config, a gold set, or items reviewed twice;
- inverse-propensity weights: P(reviewed | the guard's scores and decisions) fitted over the whole audit
  log, clipped and self-normalised, with the effective sample size reported.

A part of the reviewed items (by audit id) is held out of training and scored for the report, next to the
test benchmarks. The new model is written only when no benchmark's F1 drops by more than ``max_f1_drop``
(unless ``force``); the report is written either way.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import ConfigError, RailguardError
from ..models.artifacts import EMBEDDED_DIR, read_manifest, verify, write_manifest
from ..models.heads import HEADS_FILE, Heads
from ..taxonomy import CATEGORY_NAMES
from ..types import TASKS
from .augment import augment, with_keyword_categories
from .data import DEFAULT_SEED, HEADS, PROMPT, RESPONSE, Example, build_pool, holdout_of, norm_key
from .features import FeatureCache
from .feedback import RESPONSE_TASKS, FeedbackItem, iter_items
from .noise import (NoiseRates, effective_sample_size, fit_logistic, fit_propensity, flip_rate_from_pairs,
                    flip_rates_from_gold, ipw_weights, propensity_features)
from .heads import calibrate, source_weights
from .pipeline import _binary_metrics

log = logging.getLogger(__name__)

DEFAULT_BENCHES = ("openai_moderation", "xstest", "simple_safety_tests", "harmbench")
REPORT_FILE = "improve_report.json"


class NotPromotedError(RailguardError):
    """The retrained model is worse on a benchmark than the one it started from."""


@dataclass(frozen=True, slots=True)
class ImproveConfig:
    flip_rate: float | None = None  # symmetric moderator flip rate; None: estimate (gold set, double reviews)
    gold: Path | None = None  # JSONL of {"prompt": ..., "<task>": true/false} with known true labels
    noise_aware: bool = True
    propensity: bool = True
    propensity_clip: float = 0.02
    feedback_weight: float = 1.0  # weight of one reviewed item relative to one training example
    heldout_fraction: float = 0.2  # of the reviewed items, kept out of training for the report
    max_f1_drop: float = 0.01  # refuse to promote when a benchmark's F1 drops by more than this
    force: bool = False
    benches: tuple[str, ...] = DEFAULT_BENCHES
    pool_augment: bool = True  # the pool with `railguard train`'s synthetic examples, as the model was trained
    seed: int = DEFAULT_SEED
    cache_dir: Path | None = field(default=None)


def _view(item: FeedbackItem, task: str) -> Example | None:
    if task in RESPONSE_TASKS:
        if item.response is None:
            return None
        return Example(text=item.prompt or "", targets={}, source="feedback", view=RESPONSE, pair=item.response)
    return Example(text=item.prompt or "", targets={}, source="feedback", view=PROMPT)


def noise_rates(items: Sequence[FeedbackItem], task: str, config: ImproveConfig) -> NoiseRates:
    """The moderators' flip rates for a task: config, else gold set, else items reviewed twice, else none."""
    if not config.noise_aware:
        return NoiseRates(source="off")
    if config.flip_rate is not None:
        return NoiseRates(config.flip_rate, config.flip_rate, source="config")
    if config.gold is not None:
        gold = _read_gold(config.gold, task)
        pairs = [(lab, gold[norm_key(it.prompt)]) for it in items if it.prompt and norm_key(it.prompt) in gold
                 for lab in it.labels(task)]
        if pairs:
            return flip_rates_from_gold([p[0] for p in pairs], [p[1] for p in pairs])
    twice = [(labels[0], labels[1]) for it in items if len(labels := it.labels(task)) >= 2]
    if twice:
        return flip_rate_from_pairs(twice)
    return NoiseRates(source="none: no config, gold set or item reviewed twice; labels taken as correct")


def _read_gold(path: Path, task: str) -> dict[str, bool]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if isinstance(row.get("prompt"), str) and row.get(task) is not None:
                    out[norm_key(row["prompt"])] = bool(row[task])
    return out


def propensities(items: Sequence[FeedbackItem], seed: int) -> np.ndarray:
    """P(reviewed) of every audited item from the guard's task scores and decisions."""
    scores = np.array([[it.scores.get(t, 0.0) for t in TASKS] for it in items])
    decisions = np.array([[float(it.decisions.get(t, False)) for t in TASKS] for it in items])
    return fit_propensity(propensity_features(scores, decisions), np.array([it.reviewed for it in items]), seed)


@dataclass
class FeedbackRows:
    """Training rows made from reviews, per head: examples, noisy targets, weights and flip rates."""

    examples: dict[str, list[Example]] = field(default_factory=dict)
    targets: dict[str, list[float]] = field(default_factory=dict)
    weights: dict[str, list[float]] = field(default_factory=dict)
    noisy: dict[str, bool] = field(default_factory=dict)

    def add(self, head: str, ex: Example, target: float, weight: float, noisy: bool) -> None:
        self.examples.setdefault(head, []).append(ex)
        self.targets.setdefault(head, []).append(target)
        self.weights.setdefault(head, []).append(weight)
        self.noisy[head] = noisy


def feedback_rows(items: Sequence[FeedbackItem], weights: np.ndarray, feedback_weight: float) -> FeedbackRows:
    rows = FeedbackRows()
    for item, w in zip(items, weights):
        for task in TASKS:
            labels = item.labels(task)
            ex = _view(item, task) if labels else None
            if ex is None:
                continue
            for label in labels:  # each review is one noisy look; an item counts once in all
                rows.add(task, ex, float(label), feedback_weight * w / len(labels), noisy=True)
        picked = item.categories()
        harmful = item.labels("prompt_harmful")
        if harmful and (picked or not any(harmful)):
            ex = _view(item, "prompt_harmful")
            for c in CATEGORY_NAMES:
                rows.add(c, ex, float(c in picked), feedback_weight * w, noisy=False)
    return rows


def train_pool(data_dir: Path, seed: int, with_augment: bool = True) -> tuple[list[Example], list[Example]]:
    """The pool a model was trained on, weighted as ``railguard train`` weights it."""
    pool = build_pool(data_dir, seed=seed, augmenter=(lambda ex: augment(ex, seed)) if with_augment else None)
    train_set = list(with_keyword_categories(pool.train))
    for ex, factor in zip(train_set, np.clip(source_weights(train_set, 0.5), 0.3, 3.0)):
        ex.weight *= float(factor)
    return train_set, pool.heldout


def refit_heads(base: Heads, x_pool: np.ndarray, pool: Sequence[Example], x_fb: dict[str, np.ndarray],
                rows: FeedbackRows, rates: dict[str, NoiseRates]) -> tuple[Heads, list[str]]:
    """Heads refitted on pool + feedback for every head the feedback teaches; the others kept."""
    from .finetune import targets_matrix

    y_pool, m_pool = targets_matrix(pool, HEADS)
    w_pool = np.array([ex.weight for ex in pool], np.float64)
    weight, bias = base.weight.copy(), base.bias.copy()
    refitted = []
    for j, head in enumerate(base.names):
        if head not in rows.examples:
            continue
        sel = m_pool[:, j] > 0
        r = rates.get(head, NoiseRates())
        n_fb = len(rows.targets[head])
        x = np.vstack([x_pool[sel], x_fb[head]])
        y = np.concatenate([y_pool[sel, j] >= 0.5, np.array(rows.targets[head]) >= 0.5]).astype(np.float64)
        w = np.concatenate([w_pool[sel], rows.weights[head]])
        rho_pos = np.concatenate([np.zeros(sel.sum()), np.full(n_fb, r.pos if rows.noisy[head] else 0.0)])
        rho_neg = np.concatenate([np.zeros(sel.sum()), np.full(n_fb, r.neg if rows.noisy[head] else 0.0)])
        weight[j], bias[j] = fit_logistic(x, y, sample_weight=w, rho_pos=rho_pos, rho_neg=rho_neg,
                                          init=(base.weight[j], float(base.bias[j])))
        refitted.append(head)
    return Heads(base.names, weight, bias, np.ones(len(base.names), np.float32),
                 np.zeros(len(base.names), np.float32)), refitted


def bench_metrics(cache: FeatureCache, heads_by_name: dict[str, Heads], thresholds: dict[str, float],
                  benches: Sequence[str], data_dir: Path) -> dict[str, dict[str, dict]]:
    """Per benchmark, each model's metrics from cached features (each input's first window)."""
    from ..eval import benchmarks as B

    out: dict[str, dict[str, dict]] = {}
    for name in benches:
        if name not in B.BENCHMARKS:
            raise ConfigError(f"unknown benchmark {name!r}; known: {', '.join(B.BENCHMARKS)}")
        spec = B.BENCHMARKS[name]
        items = B.load(spec, data_dir)
        examples = [Example(text=it.input.prompt, targets={}, source=name,
                            view=RESPONSE if spec.with_response else PROMPT, pair=it.input.response) for it in items]
        x = cache.embed(examples, label=name)
        labels = np.array([it.label for it in items])
        out[name] = {model: _binary_metrics(h.probs(x)[:, h.index(spec.task)], labels, thresholds[spec.task])
                     for model, h in heads_by_name.items()}
    return out


def heldout_feedback_metrics(cache: FeatureCache, items: Sequence[FeedbackItem],
                             heads_by_name: dict[str, Heads], thresholds: dict[str, float]) -> dict[str, Any]:
    """Agreement with the moderators on reviewed items kept out of training (their labels are noisy)."""
    out: dict[str, Any] = {}
    for task in TASKS:
        pairs = [(ex, it.labels(task)[0]) for it in items if it.labels(task) and (ex := _view(it, task)) is not None]
        labels = np.array([p[1] for p in pairs], bool)
        if len(pairs) < 5 or labels.all() or not labels.any():
            continue
        x = cache.embed([p[0] for p in pairs], label=f"held-out feedback ({task})")
        out[task] = {model: _binary_metrics(h.probs(x)[:, h.index(task)], labels, thresholds[task])
                     for model, h in heads_by_name.items()}
    return out


def improve(store: Any, out_dir: Path, *, data_dir: Path, base_model: Path | None = None,
            config: ImproveConfig = ImproveConfig(), progress: bool = True) -> dict[str, Any]:
    """Retrain the heads of ``base_model`` (the shipped one by default) from its pool plus the store's
    feedback; write the model to ``out_dir`` unless it is worse; return the report."""
    base_dir = Path(base_model or EMBEDDED_DIR)
    manifest = verify(base_dir)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ConfigError(f"data folder {data_dir} not found; set RAILGUARD_DATA or pass --data")
    items = list(iter_items(store))
    reviewed = [it for it in items if it.reviewed]
    usable = [it for it in reviewed if it.prompt is not None]
    if not usable:
        raise ConfigError(f"the audit store has {len(reviewed)} reviewed item(s) with text: review items on /review "
                          "(with store_text on, so that the text is kept) before improving")
    held = [holdout_of(f"feedback:{it.audit_id}", config.heldout_fraction, config.seed) for it in usable]
    train_items = [it for it, h in zip(usable, held) if not h]
    test_items = [it for it, h in zip(usable, held) if h]

    propensity = propensities(items, config.seed) if config.propensity else np.ones(len(items))
    by_id = {it.audit_id: p for it, p in zip(items, propensity)}
    raw_p = np.array([by_id[it.audit_id] for it in train_items])
    weights = ipw_weights(raw_p, clip=config.propensity_clip) if config.propensity else np.ones(len(train_items))
    rates = {t: noise_rates(train_items, t, config) for t in TASKS if any(it.labels(t) for it in train_items)}
    rows = feedback_rows(train_items, weights, config.feedback_weight)

    cache = FeatureCache(base_dir, **({} if config.cache_dir is None else {"cache_dir": config.cache_dir}))
    pool, heldout = train_pool(data_dir, config.seed, config.pool_augment)
    x_pool = cache.embed(pool, label="training pool", progress=progress)
    x_held = cache.embed(heldout, label="held-out pool", progress=progress)
    x_fb = {head: cache.embed(exs, label=f"feedback ({head})") for head, exs in rows.examples.items()}

    old = Heads.load(base_dir, manifest["heads"])
    raw, refitted = refit_heads(old, x_pool, pool, x_fb, rows, rates)
    new = calibrate(raw, x_held, heldout, config.seed)
    scale, shift = old.calib_scale.copy(), old.calib_shift.copy()
    for head in refitted:  # heads the feedback did not teach keep their calibration too
        j = new.index(head)
        scale[j], shift[j] = new.calib_scale[j], new.calib_shift[j]
    new = raw.with_calibration(scale, shift)

    thresholds = dict(manifest["thresholds"])
    models = {"old": old, "new": new}
    benches = bench_metrics(cache, models, thresholds, config.benches, data_dir)
    worse = {b: (m["old"]["f1"], m["new"]["f1"]) for b, m in benches.items()
             if m["new"]["f1"] < m["old"]["f1"] - config.max_f1_drop}
    report = {
        "railguard_version": __version__, "base_model": str(base_dir), "out": str(out_dir),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "audited_items": len(items), "reviewed_items": len(reviewed), "reviewed_without_text": len(reviewed) - len(usable),
        "feedback_train_items": len(train_items), "feedback_heldout_items": len(test_items),
        "reviews": sum(len(it.reviews) for it in usable),
        "noise_rates": {t: r.to_dict() for t, r in rates.items()},
        "propensity": {"used": config.propensity, "clip": config.propensity_clip,
                       "reviewed_share": round(float(np.mean([it.reviewed for it in items])), 4),
                       "min_propensity_of_reviewed": round(float(raw_p.min()), 4) if len(raw_p) else None,
                       "effective_sample_size": round(effective_sample_size(weights), 1),
                       "n": len(weights)},
        "refitted_heads": refitted,
        "benchmarks": benches,
        "heldout_feedback": heldout_feedback_metrics(cache, test_items, models, thresholds),
        "max_f1_drop": config.max_f1_drop,
        "worse_on": {b: {"old_f1": o, "new_f1": n} for b, (o, n) in worse.items()},
    }
    promoted = not worse or config.force
    report["promoted"] = promoted
    if not promoted:
        report_path = Path(str(out_dir).rstrip("/") + ".report.json")
        report_path.write_text(json.dumps(report, indent=2) + "\n")
        detail = ", ".join(f"{b} F1 {o:.3f} -> {n:.3f}" for b, (o, n) in worse.items())
        raise NotPromotedError(f"the retrained model is worse on {detail} (more than {config.max_f1_drop:g}); "
                               f"it was not written. Report: {report_path}. Pass --force to write it anyway")
    _write_model(base_dir, manifest, Path(out_dir), new, report)
    return report


def _write_model(base_dir: Path, manifest: dict, out: Path, heads: Heads, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in manifest.get("files", {}):  # the encoder, tokenizer and whatever else the model ships
        if name != HEADS_FILE and (base_dir / name).resolve() != (out / name).resolve():
            shutil.copyfile(base_dir / name, out / name)
    heads.save(out)
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    meta = {k: v for k, v in manifest.items() if k != "files"}
    meta["improved"] = {"from": str(base_dir), "base_files": manifest.get("files", {}),
                        "refitted_heads": report["refitted_heads"], "noise_rates": report["noise_rates"],
                        "effective_sample_size": report["propensity"]["effective_sample_size"],
                        "feedback_train_items": report["feedback_train_items"], "report": REPORT_FILE}
    write_manifest(out, meta)
    read_manifest(out)
