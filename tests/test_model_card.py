"""MODEL_CARD.md is generated from the manifests and bench/results, and cannot drift from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from railguard.cli import app
from railguard.errors import ConfigError
from railguard.eval import model_card
from railguard.eval.runner import BenchResult

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "results"


def _result(benchmark: str, task: str, guard: str = "embedded", **kw) -> dict:
    base = dict(guard=guard, benchmark=benchmark, task=task, n=10, positives=5, tp=4, fp=1, fn=1, tn=4, errors=0,
                f1=0.8, precision=0.8, recall=0.8, fpr=0.2, auprc=0.9, f1_ci=(0.7, 0.9))
    return BenchResult(**{**base, **kw}).to_dict()


def test_shipped_card_matches_the_manifests_and_results():
    assert (ROOT / "MODEL_CARD.md").read_text(encoding="utf-8") == model_card.render(BENCH), (
        "MODEL_CARD.md is stale: run `railguard model-card`")


def test_card_lists_every_training_source_and_warns_about_restricted_licenses(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(model_card.MODELS, models)
    manifest_path = models / "embedded" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["training_sources"] = {"alert": {"license": "CC BY-NC-SA 4.0", "permissive": False},
                                    "toxigen": {"license": "MIT", "permissive": True}}
    manifest["non_permissive_sources"] = ["alert"]
    manifest["pool"]["by_source"] = {"alert": 3500, "toxigen": 659}
    manifest_path.write_text(json.dumps(manifest))
    text = model_card.render(BENCH, models)
    assert "| alert | CC BY-NC-SA 4.0 | **no** | 3500 |" in text
    assert "| toxigen | MIT | yes | 659 |" in text
    assert "Non-commercial, share-alike, GPL or unstated-license data went into this model:** `alert`" in text
    assert "--licenses permissive" in text


def test_evaluation_rows_come_from_the_results_file(tmp_path):
    bench = tmp_path / "results"
    shutil.copytree(BENCH, bench)
    results = {"meta": {"command": "railguard eval --bench xstest", "created_utc": "2026-01-01T00:00:00+00:00",
                        "railguard_version": "9.9"},
               "results": [_result("xstest", "prompt_harmful", f1=0.654, f1_ci=(0.6, 0.7)),
                           _result("xstest", "prompt_harmful", guard="peer:x", f1=0.111),
                           _result("harmbench", "prompt_harmful", positives=10, tp=7, fn=3, fp=0, tn=0,
                                   recall=0.7, recall_ci=(0.6, 0.8))]}
    (tmp_path / "results.json").write_text(json.dumps(results))
    model_card.write_card_results(tmp_path / "results.json", bench / model_card.CARD_RESULTS)
    text = model_card.render(bench)
    assert "| xstest | prompt_harmful | 10 | 0.654 (0.600–0.700) | 0.900 |" in text
    assert "| harmbench | prompt_harmful | 10 | recall 0.700 (0.600–0.800) |" in text
    assert "0.111" not in text  # another guard's row is not the model's
    assert "Command: `railguard eval --bench xstest` (railguard 9.9" in text


def test_results_without_the_guard_are_refused():
    with pytest.raises(ConfigError, match="no rows for guard 'embedded'.*peer:x"):
        model_card.card_results({"results": [_result("xstest", "prompt_harmful", guard="peer:x")]})


def test_cli_check_says_whether_the_card_is_stale(tmp_path):
    out = tmp_path / "CARD.md"
    runner = CliRunner()
    stale = runner.invoke(app, ["model-card", "--check", "--out", str(out), "--bench", str(BENCH)])
    assert stale.exit_code == 1 and "stale" in stale.output
    written = runner.invoke(app, ["model-card", "--out", str(out), "--bench", str(BENCH)])
    assert written.exit_code == 0 and out.read_text(encoding="utf-8") == model_card.render(BENCH)
    fresh = runner.invoke(app, ["model-card", "--check", "--out", str(out), "--bench", str(BENCH)])
    assert fresh.exit_code == 0
    missing = runner.invoke(app, ["model-card", "--out", str(out), "--bench", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "error:" in missing.output and "Traceback" not in missing.output
