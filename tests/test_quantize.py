"""The shipped encoder format: int8 weights, fp32 products, rows independent of each other."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from railguard.errors import ConfigError
from railguard.train.quantize import batch_invariant, undo_dynamic_quantization


def _two_layer_graph(path, rng):
    w1 = rng.normal(size=(16, 32)).astype(np.float32)
    w2 = rng.normal(size=(32, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
         helper.make_node("Relu", ["h"], ["r"], name="relu"),
         helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2")],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w1, w2


def _run(path, x):
    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "1")  # as railguard's TextEncoder loads it
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_batch_invariant_graph_gives_each_row_the_same_output_whatever_the_batch(tmp_path):
    rng = np.random.default_rng(0)
    w1, w2 = _two_layer_graph(tmp_path / "fp32.onnx", rng)
    batch_invariant(tmp_path / "fp32.onnx", tmp_path / "shipped.onnx")
    assert not (tmp_path / "shipped.dynamic.onnx").exists()
    ops = {n.op_type for n in onnx.load(str(tmp_path / "shipped.onnx")).graph.node}
    assert "MatMulInteger" not in ops and "DynamicQuantizeLinear" not in ops
    x = rng.normal(size=(12, 16)).astype(np.float32)
    x[5] *= 50  # one loud row: a per-batch activation scale would change every other row's result
    together = _run(tmp_path / "shipped.onnx", x)
    alone = np.concatenate([_run(tmp_path / "shipped.onnx", x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_array_equal(together, alone)
    exact = np.maximum(x @ w1, 0) @ w2
    assert np.abs(together - exact).max() < 0.05 * np.abs(exact).max()  # int8 weights: close, not equal


def test_dynamic_quantization_is_batch_dependent_which_is_why_it_is_undone(tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(1)
    _two_layer_graph(tmp_path / "fp32.onnx", rng)
    quantize_dynamic(str(tmp_path / "fp32.onnx"), str(tmp_path / "dynamic.onnx"), weight_type=QuantType.QInt8)
    x = rng.normal(size=(6, 16)).astype(np.float32)
    x[0] *= 50
    together, alone = _run(tmp_path / "dynamic.onnx", x)[1], _run(tmp_path / "dynamic.onnx", x[1:2])[0]
    assert np.abs(together - alone).max() > 1e-3
    undo_dynamic_quantization(tmp_path / "dynamic.onnx", tmp_path / "undone.onnx")
    together, alone = _run(tmp_path / "undone.onnx", x)[1], _run(tmp_path / "undone.onnx", x[1:2])[0]
    np.testing.assert_array_equal(together, alone)


def test_undo_refuses_a_graph_that_was_never_quantized(tmp_path):
    _two_layer_graph(tmp_path / "fp32.onnx", np.random.default_rng(2))
    with pytest.raises(ConfigError, match="not a dynamically quantized graph"):
        undo_dynamic_quantization(tmp_path / "fp32.onnx", tmp_path / "out.onnx")
