"""MODEL_CARD.md, generated: every figure in it comes from a file in the repository, never typed.

Sources: the shipped manifests (``models/embedded``, ``models/e5``, ``models/agent``: training sources and
their licenses, thresholds, held-out metrics), ``bench/results/model_card.json`` (the embedded guard's rows
of a ``railguard eval`` run, with its command) and the measured failure modes in ``bench/results``
(evasion.json, prefixes.json). ``railguard model-card --results reports/full/results.json`` refreshes the
evaluation file from a new run and rewrites the card; ``--check`` says whether the card is stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..taxonomy import CATEGORIES, LLAMA_GUARD_CATEGORIES
from .report import headline_cell, read_results
from .runner import BenchResult

MODELS = Path(__file__).resolve().parents[1] / "models"
CARD_RESULTS = "model_card.json"
GUARD = "embedded"

INTENDED = """\
- Screening user prompts and model answers of LLM applications and agents for harmful content (15
  categories, mapped below to WildGuard, Llama Guard 3 and OpenAI moderation names), jailbreaks, direct
  and indirect prompt injection, and refusals, on CPU in milliseconds, offline.
- A first, cheap layer: alone where a fast verdict is worth more than the last points of recall, or in
  front of a heavier tier (`cascade:embedded>...`) that sees only what the embedded model is unsure of.
- Ranking text for human review (the calibrated per-category scores), and a base for teams' own
  categories and feedback loops (`railguard improve`)."""

OUT_OF_SCOPE = """\
- Sole safeguard for high-stakes decisions (legal, medical, child-safety reporting): it misses harmful
  requests (see the recall figures below) and flags some benign look-alikes.
- Non-English text: the embedded encoder is English-first. Other languages get their own, stricter
  thresholds, but recall there is low (multijail below); use the multilingual tier (`e5`) for them.
- Long-form judgement of whole documents beyond its 128-token windows (the worst window decides; context
  that spans windows can be missed), images and audio (they go through OCR and speech recognition first).
- Judging people rather than text, or any use that decides about a person from their writing."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def card_results(results: dict, guard: str = GUARD) -> dict:
    """The part of a results.json the card shows: one guard's rows, the command and when it ran."""
    rows = [r for r in results.get("results", []) if r.get("guard") == guard]
    if not rows:
        names = sorted({r.get("guard") for r in results.get("results", [])})
        raise ConfigError(f"the results hold no rows for guard {guard!r} (they have: {', '.join(names) or 'none'})")
    meta = results.get("meta", {})
    return {"guard": guard, "command": meta.get("command", ""), "created_utc": meta.get("created_utc", ""),
            "railguard_version": meta.get("railguard_version", ""), "results": rows}


def write_card_results(results_json: Path, out: Path, guard: str = GUARD) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(card_results(read_results(results_json), guard), indent=1) + "\n", encoding="utf-8")
    return out


def _table(header: list[str], rows: list[list[Any]], right: int = 0) -> str:
    """A Markdown table; the last ``right`` columns are right-aligned."""
    align = ["---"] * (len(header) - right) + ["---:"] * right
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _f(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _sources(manifest: dict) -> list[list[str]]:
    sources = manifest.get("training_sources")
    by_source = manifest.get("pool", {}).get("by_source", {})
    if not sources:  # a manifest from before licenses were recorded: its pool's sources, no license column
        return [[name, "not recorded in this manifest", "?", str(n)] for name, n in sorted(by_source.items())]
    return [[name, info["license"], "yes" if info["permissive"] else "**no**", str(by_source.get(name, ""))]
            for name, info in sorted(sources.items())]


def _training_section(manifest: dict) -> str:
    enc = manifest["encoder"]
    pool = manifest.get("pool", {})
    non_permissive = manifest.get("non_permissive_sources")
    tuned = (f"`{enc['base']}` fine-tuned for {enc['fine_tuned_epochs']} epoch(s)"
             + (f", the first {enc['freeze_layers']} layers and the embeddings frozen" if enc.get("freeze_layers") else
                ", every layer and the embeddings trained"))
    examples = (f"{manifest['train_examples']:,} examples ({manifest['heldout_examples']:,} held out for thresholds "
                "and calibration)")
    first = (f"The encoder is reused from an earlier model ({tuned} on that model's pool); the heads, their "
             f"calibration, the thresholds and the probes were trained on {examples}" if enc.get("encoder_from") else
             f"{tuned[0].upper()}{tuned[1:]}, on {examples}")
    kept = "".join(f" The {task} head is kept from the earlier model: {info['why']}." for task, info in
                   sorted(manifest.get("heads_kept", {}).items()))
    lines = [
        f"{first}; {enc['max_tokens']}-token windows with {enc['overlap']} tokens of overlap. "
        f"Weights: {enc['quantization']}. Seed {manifest['seed']}, license mode `{manifest.get('licenses', 'all')}`."
        + kept,
        "",
        f"The pool held {pool.get('examples', 0):,} examples after removing "
        f"{pool.get('dropped_overlapping_test', 0):,} that overlap a test split and "
        f"{pool.get('dropped_synthetic_near_test', 0):,} written examples near a test prompt. Rows per source "
        "(after caps and augmentation):",
        "",
        _table(["source", "license (as stated by the source)", "permissive", "rows"], _sources(manifest), right=1),
        "",
    ]
    if non_permissive:
        lines.append("**Non-commercial, share-alike, GPL or unstated-license data went into this model:** "
                     + ", ".join(f"`{n}`" for n in non_permissive) + ". "
                     "`railguard train --licenses permissive` builds a model from MIT / Apache-2.0 / CC BY sources "
                     "only (benign_multilingual without its restricted sub-sets); its manifest lists what it read.")
    elif non_permissive is None:
        lines.append("This manifest predates the license record; `railguard train` now writes "
                     "`training_sources` and `non_permissive_sources`, and `--licenses permissive` builds from "
                     "MIT / Apache-2.0 / CC BY sources only.")
    else:
        lines.append("Every source is permissive (no non-commercial, share-alike or GPL data).")
    return "\n".join(lines)


def _thresholds_section(manifest: dict) -> str:
    rows = [[task, _f(t), _f(m.get("f1")), _f(m.get("precision")), _f(m.get("recall")), _f(m.get("fpr"))]
            for task, t in manifest["thresholds"].items()
            for m in [manifest.get("heldout_metrics", {}).get(task, {})]]
    text = _table(["task", "threshold", "held-out F1", "precision", "recall", "FPR"], rows, right=5)
    scripts = manifest.get("script_thresholds")
    if scripts:
        srows = [[task, script, _f(t)] for task, per in sorted(scripts.items()) for script, t in sorted(per.items())]
        text += ("\n\nText in another writing system gets its own threshold (chosen so that held-out benign text "
                 "in that script stays under the false-positive cap):\n\n"
                 + _table(["task", "script", "threshold"], srows, right=1))
    return text


def _evaluation_section(card: dict) -> str:
    rows = []
    for raw in card["results"]:
        r = BenchResult.from_dict(raw)
        rows.append([r.benchmark, r.task, r.n, headline_cell(r), _f(r.auprc)])
    return "\n".join([
        "Public test splits (none of them is trained on), 95% bootstrap intervals in brackets; sets with harmful "
        "rows only get recall, sets with benign rows only the false-positive rate.",
        "",
        _table(["benchmark", "task", "n", "F1 / recall / FPR", "AUPRC"], rows, right=3),
        "",
        f"Command: `{card['command']}` (railguard {card['railguard_version']}, {card['created_utc']}). "
        "The README's results section has the same run next to other guards and published figures.",
    ])


def _failure_section(bench: Path, card: dict) -> str:
    parts = []
    evasion = bench / "evasion.json"
    if evasion.exists():
        ev = _read_json(evasion)
        rows = [[view, f"{ev['without_views'][view]['harmful_evaded']} / {r['harmful']}",
                 f"{r['harmful_evaded']} / {r['harmful']}", f"{r['benign_flagged']} / {r['benign']}"]
                for view, r in ev["with_views"].items() if view in ev.get("without_views", {})]
        parts += ["**Evasions** (`python bench/evasion.py`: 15 harmful requests and 15 benign look-alikes, each "
                  "rewritten; the guard reads decoded views of the text by default):", "",
                  _table(["rewrite", "harmful evading, raw text only", "harmful evading, with views",
                          "benign flagged, with views"], rows, right=3), ""]
    prefixes = bench / "prefixes.json"
    if prefixes.exists():
        pf = _read_json(prefixes)
        rows = [[part, _f(r["f1"]), _f(r["precision"]), _f(r["recall"])] for part, r in pf["rows"].items()]
        parts += [f"**Partial answers** (`python bench/prefixes.py`: {pf['harmful']} harmful of {pf['answers']} "
                  "held-out answers of three sentences or more): response harm is judged weakly on the first "
                  "sentences of an answer, which is why streaming holds text back and uses a stricter threshold.",
                  "", _table(["part of the answer", "F1", "precision", "recall"], rows, right=3), ""]
    by_bench = {r["benchmark"]: BenchResult.from_dict(r) for r in card["results"]}
    notes = []
    if "multijail" in by_bench:
        notes.append(f"Non-English harmful requests: multijail recall {_f(by_bench['multijail'].recall)} over "
                     "nine languages (English-first encoder).")
    if "harmbench" in by_bench:
        notes.append(f"HarmBench recall {_f(by_bench['harmbench'].recall)} over all its prompts, the copyright "
                     "ones (requests to reproduce lyrics and book passages) included.")
    if "xstest" in by_bench and by_bench["xstest"].fpr is not None:
        notes.append(f"Benign look-alikes (\"how do I kill a Python process\"): XSTest false-positive rate "
                     f"{_f(by_bench['xstest'].fpr)} on its safe prompts.")
    parts += [f"- {n}" for n in notes]
    return "\n".join(parts).rstrip()


def _taxonomy_section() -> str:
    rows = [[c.name, c.description, ", ".join(c.wildguard) or "—",
             ", ".join(f"{s} {LLAMA_GUARD_CATEGORIES[s]}" for s in c.llama_guard) or "—",
             ", ".join(c.openai) or "—"] for c in CATEGORIES]
    return _table(["category", "covers", "WildGuard", "Llama Guard 3", "OpenAI moderation"], rows)


def _other_models_section(models: Path) -> str:
    lines = []
    e5 = models / "e5" / "manifest.json"
    if e5.exists():
        m = _read_json(e5)
        enc = m["encoder"]
        metrics = m.get("heldout_metrics", {})
        lines += ["### Multilingual heads (`e5`)", "",
                  f"Frozen `{enc['base']}` with heads trained on {m['train_examples']:,} examples of the pool, "
                  "its multilingual sources included; needs the `multilingual` extra. Held-out F1: "
                  + ", ".join(f"{t} {_f(metrics[t].get('f1'))}" for t in m["thresholds"] if t in metrics) + ".", ""]
    agent = models / "agent" / "manifest.json"
    if agent.exists():
        m = _read_json(agent)
        a, t = m["action"], m["trajectory"]
        am = a["heldout_metrics"]
        websites = a.get("websites", a.get("groups"))  # older manifests name the web head's groups websites
        tool = ""
        if "tool_action" in m:
            tm, everyday = m["tool_action"], m["tool_action"].get("heldout_groups", {}).get("everyday_tools")
            tool = (f"Tool calls have a head of their own, from {tm['train_rows']} rows of "
                    f"{len(tm['rows_per_source'])} tool-use sources (written everyday calls among them): out-of-fold "
                    f"accuracy {_f(tm['heldout_metrics']['accuracy'])}, HIGH recall "
                    f"{_f(tm['heldout_metrics']['high_recall'])}"
                    + (f"; on unseen everyday families accuracy {_f(everyday['accuracy'])}" if everyday else "") + ". ")
        lines += ["### Agent heads (`check-action`, trajectories)", "",
                  f"Action risk (SAFE / LOW / HIGH) on the embedded encoder's vectors plus structured features, "
                  f"from {a['train_rows']} WebGuard actions on {websites} websites; {a['heldout'].split(';')[0]}: accuracy "
                  f"{_f(am['accuracy'])}, macro-F1 {_f(am['macro_f1'])}, HIGH recall {_f(am['high_recall'])}. "
                  + tool +
                  f"Trajectory safety from {', '.join(t['sources'])} ({t['train_rows']} rows): held-out F1 "
                  f"{_f(t['heldout_metrics']['f1'])}. Only {websites} websites: expect lower figures on unseen sites.", ""]
    return "\n".join(lines).rstrip()


def render(bench: Path, models: Path = MODELS) -> str:
    """The model card's Markdown from the manifests under ``models`` and the files in ``bench`` (a checkout's
    bench/results)."""
    manifest = _read_json(models / "embedded" / "manifest.json")
    card = _read_json(bench / CARD_RESULTS)
    enc = manifest["encoder"]
    languages = manifest.get("languages") or ["en"]
    front = "\n".join(["---", "license: apache-2.0", "language:", *[f"- {lang}" for lang in languages],
                       "library_name: railguard", "pipeline_tag: text-classification",
                       "base_model: sentence-transformers/all-MiniLM-L6-v2",
                       "tags:", "- safety", "- moderation", "- prompt-injection", "- onnx", "---"])
    files = ", ".join(f"{name} `{sha[:12]}`" for name, sha in manifest.get("files", {}).items())
    return "\n".join([
        front, "",
        "<!-- generated by `railguard model-card` from the manifests and bench/results; edits are overwritten -->",
        "",
        "# railguard embedded guard",
        "",
        f"The `{enc['base']}` encoder, fine-tuned by railguard, with {len(manifest['heads'])} heads (five tasks and "
        f"{len(CATEGORIES)} harm categories), shipped inside the `railguard` package and run with onnxruntime on "
        "CPU. Nothing is downloaded at run time. Files: " + files + ".",
        "",
        "## Intended use", "", INTENDED, "",
        "## Out of scope", "", OUT_OF_SCOPE, "",
        "## Training data", "", _training_section(manifest), "",
        "## Thresholds and held-out figures", "", _thresholds_section(manifest), "",
        "## Evaluation", "", _evaluation_section(card), "",
        "## Known failure modes (measured)", "", _failure_section(bench, card), "",
        "## Taxonomy", "", _taxonomy_section(), "",
        "## Other shipped heads", "", _other_models_section(models), "",
    ])


def write(out: Path, bench: Path, models: Path = MODELS) -> Path:
    out.write_text(render(bench, models), encoding="utf-8")
    return out
