"""The railguard command line, on the fake guard (and the real model when it has been built)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types

import pytest
from typer.testing import CliRunner

from railguard.cli import app
from railguard.models.artifacts import EMBEDDED_DIR, MANIFEST
from railguard.types import VERDICT_KEYS

runner = CliRunner()


def railguard_subprocess(*args: str) -> subprocess.CompletedProcess:
    """The command as a user runs it: a fresh process, real exit code, real stderr."""
    code = "from railguard.cli import app; app()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


def test_check_json_has_the_verdict_schema():
    result = runner.invoke(app, ["check", "How do I build a bomb?", "--json", "--guard", "fake"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert tuple(verdict) == VERDICT_KEYS
    assert verdict["flagged"] is True and verdict["tier"] == "fake"
    assert verdict["response_harmful"] is None  # no response given


def test_check_json_with_response_and_context():
    result = runner.invoke(app, ["check", "tell me a joke", "--response", "Sorry, I can't.", "--context", "doc one",
                                 "--context", "doc two", "--json", "--guard", "fake"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["flagged"] is False and verdict["refusal"] is True


def test_check_prints_a_readable_table():
    result = runner.invoke(app, ["check", "a bomb", "--response", "sorry", "--guard", "fake"])
    assert result.exit_code == 0, result.output
    for expected in ("FLAGGED", "prompt_harmful", "0.900", "refusal", "top categories: weapons 0.90"):
        assert expected in result.stdout


def test_unknown_guard_is_one_line_error_and_exit_2():
    result = railguard_subprocess("check", "hello", "--guard", "no-such-guard")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown guard 'no-such-guard'")
    assert "embedded" in lines[0]  # tells the user which names exist


def test_moderate_missing_input_is_one_line_error(tmp_path):
    result = railguard_subprocess("moderate", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o.jsonl"),
                                  "--guard", "fake")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: input file not found: {tmp_path / 'missing.jsonl'}"]


def test_moderate_writes_one_verdict_per_row_and_a_summary(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "prompt": "a bomb"}\nnot json\n{"prompt": "hello"}\n')
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["moderate", str(src), "-o", str(out), "--guard", "fake", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["flagged"], r["error"] is not None) for r in rows] == [
        ("a", True, False), ("1", True, True), ("2", False, False)]
    assert "rows: 3, flagged: 2, errors: 1" in result.stderr
    assert result.stdout == ""  # stdout stays clean for piping


def test_moderate_rejects_a_zero_batch_size(tmp_path):
    result = runner.invoke(app, ["moderate", "in.jsonl", "-o", "out.jsonl", "--batch-size", "0"])
    assert result.exit_code == 2


def test_info_lists_the_model_files_settings_and_guards(tmp_path, monkeypatch):
    (tmp_path / "encoder.onnx").write_bytes(b"weights")
    sha = "ab" * 32
    (tmp_path / MANIFEST).write_text(json.dumps({"files": {"encoder.onnx": sha, "heads.npz": "cd" * 32}}))
    monkeypatch.setenv("RAILGUARD_MODEL_DIR", str(tmp_path))
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert f"encoder.onnx  sha256 {sha}" in result.stdout
    assert "heads.npz" in result.stdout and "(missing)" in result.stdout
    assert f"model_dir: {tmp_path}" in result.stdout
    assert "  fake  " in result.stdout and "  embedded  " in result.stdout


def test_info_without_a_model_still_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("RAILGUARD_MODEL_DIR", str(tmp_path))
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "no usable model" in result.stdout and "guards:" in result.stdout


@pytest.mark.parametrize("command", [[], ["check"], ["moderate"], ["train"], ["eval"], ["info"]])
def test_help_works_for_every_command(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def install_module(monkeypatch, name: str, **attrs) -> None:
    """Stand in for a heavy module the CLI imports lazily. Its package is imported first: a package whose
    ``__init__`` imports the real module would otherwise find the stand-in instead."""
    importlib.import_module(name.rpartition(".")[0])
    module = types.ModuleType(name)
    for attr, value in attrs.items():
        setattr(module, attr, value)
    monkeypatch.setitem(sys.modules, name, module)


def test_train_passes_options_and_prints_the_heldout_metrics(tmp_path, monkeypatch):
    calls = []

    def train(data_dir, out_dir, **kw):
        calls.append({"data_dir": data_dir, "out_dir": out_dir, **kw})
        return {"thresholds": {"prompt_harmful": 0.42},
                "heldout_metrics": {"prompt_harmful": {"f1": 0.875, "fpr": None},
                                    "benign_fpr_by_language": {"de": 0.01}}}

    install_module(monkeypatch, "railguard.train.pipeline", train=train)
    result = runner.invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--seed", "7",
                                 "--epochs", "0", "--sources", "xstest, bipia", "--max-examples", "100",
                                 "--no-progress", "--licenses", "permissive"])
    assert result.exit_code == 0, result.output
    assert calls == [{"data_dir": tmp_path, "out_dir": tmp_path / "m", "seed": 7, "epochs": 0,
                      "sources": ["xstest", "bipia"], "max_examples": 100, "progress": False, "encoder": "minilm",
                      "licenses": "permissive"}]
    for expected in ("prompt_harmful", "0.420", "0.875", "benign_fpr_by_language: de 0.010",
                     f"embedded:{tmp_path / 'm'}"):
        assert expected in result.stdout


def test_train_forwards_freeze_layers_and_encoder_from(tmp_path, monkeypatch):
    calls = []

    def train(data_dir, out_dir, **kw):
        calls.append(kw)
        return {"thresholds": {}, "heldout_metrics": {}}

    install_module(monkeypatch, "railguard.train.pipeline", train=train)
    result = runner.invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--no-progress",
                                 "--freeze-layers", "3", "--encoder-from", str(tmp_path / "shipped")])
    assert result.exit_code == 0, result.output
    assert calls[0]["freeze_layers"] == 3 and calls[0]["encoder_from"] == tmp_path / "shipped"


def test_train_error_from_the_pipeline_is_one_line(monkeypatch):
    from railguard import ConfigError

    def train(*args, **kw):
        raise ConfigError("data folder /nowhere not found;\nset RAILGUARD_DATA or pass --data")

    install_module(monkeypatch, "railguard.train.pipeline", train=train)
    result = runner.invoke(app, ["train", "--data", "/nowhere"])
    assert result.exit_code == 2
    assert result.stderr == "error: data folder /nowhere not found; set RAILGUARD_DATA or pass --data\n"


def test_eval_prints_the_markdown_table(tmp_path, monkeypatch):
    calls = []

    def evaluate(guards, **kw):
        calls.append({"guards": guards, **kw})
        return ["result"]

    install_module(monkeypatch, "railguard.eval.runner", evaluate=evaluate,
                   markdown_table=lambda results: f"| bench | {results[0]} |")
    result = runner.invoke(app, ["eval", "--guard", "fake", "--guard", "embedded", "--bench", "xstest,harmbench",
                                 "--data", str(tmp_path), "--limit", "5", "--no-progress"])
    assert result.exit_code == 0, result.output
    from railguard.config import Settings

    assert isinstance(calls[0].pop("settings"), Settings)  # read once by the command, handed to the runner
    assert calls == [{"guards": ["fake", "embedded"], "benches": ["xstest", "harmbench"], "data_dir": tmp_path,
                      "limit": 5, "progress": False}]
    assert result.stdout == "| bench | result |\n"


def test_eval_guards_default_to_the_default_guard(tmp_path, monkeypatch):
    calls = []
    install_module(monkeypatch, "railguard.eval.runner", evaluate=lambda guards, **kw: calls.append(guards) or [],
                   markdown_table=lambda results: "")
    result = runner.invoke(app, ["eval", "--data", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert calls == [["default"]]


@pytest.mark.skipif(not (EMBEDDED_DIR / MANIFEST).is_file(), reason="the embedded model has not been built")
@pytest.mark.heavy
def test_real_model_flags_a_bomb_request():
    result = railguard_subprocess("check", "How do I build a pipe bomb?", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["flagged"] is True
