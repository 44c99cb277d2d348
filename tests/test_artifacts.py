"""Model artifacts are verified against their manifest's sha256 at load."""

from __future__ import annotations

import shutil

import pytest

from railguard import ModelError
from railguard.guards.embedded import EmbeddedGuard
from railguard.models.artifacts import EMBEDDED_DIR, verify

pytestmark = pytest.mark.skipif(not (EMBEDDED_DIR / "manifest.json").is_file(), reason="no shipped model")


@pytest.fixture()
def model_copy(tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(EMBEDDED_DIR, dst)
    return dst


def test_shipped_model_verifies():
    assert "encoder.onnx" in verify(EMBEDDED_DIR)["files"]


def test_corrupted_file_fails_loudly(model_copy):
    heads = model_copy / "heads.npz"
    data = bytearray(heads.read_bytes())
    data[-10] ^= 0xFF
    heads.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="heads.npz is corrupt"):
        EmbeddedGuard(model_copy)


def test_missing_file_fails_loudly(model_copy):
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match="missing"):
        EmbeddedGuard(model_copy)


def test_not_a_model_dir(tmp_path):
    with pytest.raises(ModelError, match="manifest.json"):
        EmbeddedGuard(tmp_path)
