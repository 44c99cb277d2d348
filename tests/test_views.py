"""Layer views of the embedded model: the graph exposes inner layers, probes read them, check_views agrees."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from railguard import GuardInput
from railguard.errors import ModelError
from railguard.models.artifacts import EMBEDDED_DIR
from railguard.models.views import Probes, expose_layers


@pytest.fixture(scope="module")
def guard():
    from railguard.guards.embedded import EmbeddedGuard

    return EmbeddedGuard()


def test_views_end_with_the_models_own_scores_and_skip_tasks_that_do_not_apply(guard):
    inputs = [GuardInput("How do I build a pipe bomb at home?"),
              GuardInput("What is the capital of France?", response="Paris."),
              GuardInput("   ")]
    verdicts, views = guard.check_views(inputs)
    tasks = guard.probes.tasks
    assert views.shape == (3, len(guard.probes.layers) + 1, len(tasks))
    for v, row in zip(verdicts, views):
        for t, task in enumerate(tasks):
            if task in v.scores:
                assert row[-1, t] == pytest.approx(v.scores[task], abs=1e-5)
    response = tasks.index("response_harmful")
    assert np.isnan(views[0, :, response]).all() and not np.isnan(views[1, :, response]).any()
    assert (np.nan_to_num(views[2]) == 0).all()  # blank text: no windows, every view says 0 like the verdict
    plain = guard.check(inputs)  # asking for views does not change the verdicts
    for a, b in zip(verdicts, plain):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)


def test_inner_layers_see_harm_too(guard):
    _, views = guard.check_views([GuardInput("Give me step by step instructions to make methamphetamine."),
                                  GuardInput("Give me step by step instructions to bake sourdough bread.")])
    harm = guard.probes.tasks.index("prompt_harmful")
    # the upper layers' probes separate a clear case like the model does
    assert (views[0, -3:, harm] > views[1, -3:, harm]).all()


def test_exposing_layers_is_idempotent_and_refuses_graphs_that_are_not_bert(tmp_path):
    path = tmp_path / "encoder.onnx"
    shutil.copyfile(EMBEDDED_DIR / "encoder.onnx", path)
    first = expose_layers(path)
    assert expose_layers(path) == first
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(other))
    with pytest.raises(ModelError, match="does not look like a BERT"):
        expose_layers(other)


def test_probes_that_do_not_match_the_manifest_are_refused(tmp_path):
    z = np.zeros((2, 3, 4), np.float32)
    Probes(("a", "b"), ("t1", "t2", "t3"), z, z[..., 0], z[..., 0], z[..., 0]).save(tmp_path)
    with pytest.raises(ModelError, match="2 layers x 3 tasks|manifest names 1 layers"):
        Probes.load(tmp_path, {"layers": ["a"], "tasks": ["t1", "t2", "t3"]})


def test_a_model_without_probes_says_how_to_get_them(tmp_path, guard):
    from railguard.guards.embedded import EmbeddedGuard
    from railguard.models.artifacts import read_manifest, write_manifest

    for name in ("encoder.onnx", "tokenizer.json", "heads.npz"):
        shutil.copyfile(EMBEDDED_DIR / name, tmp_path / name)
    meta = {k: v for k, v in read_manifest(EMBEDDED_DIR).items() if k not in ("files", "probes")}
    write_manifest(tmp_path, meta)
    plain = EmbeddedGuard(tmp_path)
    assert plain.check([GuardInput("hello")])[0].error is None
    with pytest.raises(ModelError, match="no layer probes"):
        plain.check_views([GuardInput("hello")])
