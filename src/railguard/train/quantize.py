"""The encoder graph railguard ships: int8 weights, fp32 arithmetic, so a score does not depend on the batch.

onnxruntime's *dynamic* int8 quantization picks each activation scale from the whole batch it is given, so a
text's vector moved with whatever shared its batch and with how far it was padded ("hello" flagged alone and
not among 60 others). :func:`batch_invariant` keeps the int8 weights of ``quantize_dynamic`` (the file stays
small: the embedding tables are int8 lookups behind a fixed ``DequantizeLinear``) and turns every
``MatMulInteger`` back into an fp32 ``MatMul`` on its exactly dequantized weights, so each row's arithmetic is
independent of the other rows. :func:`undo_dynamic_quantization` does the second half alone, so a model
shipped in the old format can be rebuilt without its torch weights.
Training-time only: needs ``onnx`` and ``onnxruntime.quantization``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

QUANTIZATION = "int8 weights, fp32 compute (batch-invariant)"

def _users(graph) -> dict[str, list]:
    out: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def _prune(graph) -> None:
    """Drop nodes and initializers nothing reaches from the graph outputs."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    live = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(live)


def undo_dynamic_quantization(src: str | Path, dst: str | Path) -> Path:
    """Rewrite a graph from ``quantize_dynamic`` so every ``MatMulInteger`` is an fp32 ``MatMul`` on its
    exactly dequantized weights; the embeddings' int8 lookups are kept. Returns ``dst``."""
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    users = _users(graph)
    producer = {o: n for n in graph.node for o in n.output}
    replaced: dict[int, list] = {}  # id of the node a new MatMul takes the place of -> DQ + MatMul
    drop: set[int] = set()
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        x_q, w_q, _, w_zp = node.input
        quantizer = producer[x_q]
        cast = users[node.output[0]]
        scale_mul = users[cast[0].output[0]] if len(cast) == 1 and cast[0].op_type == "Cast" else []
        if quantizer.op_type != "DynamicQuantizeLinear" or len(scale_mul) != 1 or scale_mul[0].op_type != "Mul":
            raise ConfigError(f"{src}: {node.name} is not the MatMulInteger pattern quantize_dynamic writes")
        scales = producer[scale_mul[0].input[1]]  # x_scale * w_scale
        w_scale = next(i for i in scales.input if i in inits)
        name = f"{node.name}_dequantized_weight"
        # The weight stays int8 in the file behind a DequantizeLinear of constants, which onnxruntime folds
        # into an fp32 weight once, at load (models.encoder turns its QDQ fusion off for that).
        dequantize = helper.make_node("DequantizeLinear", [w_q, w_scale] + ([w_zp] if w_zp in inits else []),
                                      [name], name=f"{node.name}_dequantize")
        replaced[id(scale_mul[0])] = [dequantize, helper.make_node(
            "MatMul", [quantizer.input[0], name], [scale_mul[0].output[0]], name=node.name.removesuffix("_quant"))]
        drop.add(id(node))
    if not replaced:
        raise ConfigError(f"{src} has no MatMulInteger nodes: it is not a dynamically quantized graph")
    nodes = [m for n in graph.node if id(n) not in drop for m in replaced.get(id(n), [n])]
    del graph.node[:]
    graph.node.extend(nodes)
    _prune(graph)
    onnx.save(model, str(dst))
    return Path(dst)


def batch_invariant(fp32: str | Path, out: str | Path) -> Path:
    """Write the shipped format of an fp32 encoder graph to ``out``: int8 weights, fp32 products."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = Path(out)
    dynamic = out.with_suffix(".dynamic.onnx")
    quantize_dynamic(str(fp32), str(dynamic), weight_type=QuantType.QInt8)
    try:
        return undo_dynamic_quantization(dynamic, out)
    finally:
        dynamic.unlink()
