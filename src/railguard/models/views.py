"""Several views of one input from one encoder pass: probes on the pooled hidden states of inner layers.

The hesitation-aware cascade (:mod:`railguard.guards.cascade`) asks how many of these views put an input
near a decision boundary (D²-Monitor's "hesitation"). The encoder graph computes every layer anyway; the
ONNX file only has to name the inner layers' outputs (:func:`expose_layers`), and a probe per layer and
task (``probes.npz``, trained by :func:`railguard.train.pipeline.train_probes`) reads them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .heads import Heads

PROBES_FILE = "probes.npz"
#: Tasks whose hesitation can send an input up the cascade.
PROBE_TASKS: tuple[str, ...] = ("prompt_harmful", "response_harmful", "jailbreak", "injection")
_LAYER_OUTPUT = re.compile(r"/encoder/layer\.(\d+)/output/LayerNorm/LayerNormalization_output_0$")


def layer_output_name(layer: int) -> str:
    """The graph output name of the pooled-to-be hidden state after encoder layer ``layer`` (1-based)."""
    return f"hidden_layer_{layer}"


def expose_layers(onnx_path: str | Path, layers: Sequence[int] | None = None) -> list[str]:
    """Rewrite a BERT ONNX graph (fp32 or int8) so the hidden states after the given encoder layers
    (1-based; default: every inner layer, i.e. all but the last, whose output is ``last_hidden_state``)
    are graph outputs too. Returns their names, in layer order. Idempotent."""
    import onnx
    from onnx import TensorProto, helper

    path = Path(onnx_path)
    model = onnx.load(str(path))
    final = model.graph.output[0].name
    found: dict[int, str] = {}
    for node in model.graph.node:
        for out in node.output:
            m = _LAYER_OUTPUT.search(out)
            if m and out != final:
                found[int(m.group(1)) + 1] = out
    if not found:
        # Graphs exported without module names (torch's dynamo exporter): the LayerNorms in graph order are
        # the embeddings' and then two per layer (after attention, after the feed-forward block).
        norms = [n.output[0] for n in model.graph.node if n.op_type == "LayerNormalization"]
        if len(norms) >= 3 and len(norms) % 2 == 1:
            found = {i: norms[2 * i] for i in range(1, len(norms) // 2 + 1) if norms[2 * i] != final}
    if not found:
        raise ModelError(f"{path} does not look like a BERT encoder graph (no layer outputs found)")
    last = max(found)
    wanted = sorted(layers) if layers is not None else sorted(found)
    missing = [n for n in wanted if n not in found]
    if missing:
        raise ModelError(f"{path} has no encoder layer(s) {missing}; it has 1..{last}")
    existing = {o.name for o in model.graph.output}
    dim = model.graph.output[0].type.tensor_type.shape.dim[-1].dim_value or None
    names = []
    for n in wanted:
        name = layer_output_name(n)
        names.append(name)
        if name in existing:
            continue
        model.graph.node.append(helper.make_node("Identity", [found[n]], [name], name=f"expose_{name}"))
        model.graph.output.append(
            helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "sequence", dim]))
    onnx.save(model, str(path))
    return names


@dataclass(frozen=True)
class Probes:
    """One calibrated logistic probe per (layer view, task): ``probs(views)`` -> (n, layers, tasks)."""

    layers: tuple[str, ...]
    tasks: tuple[str, ...]
    weight: np.ndarray  # (layers, tasks, dim)
    bias: np.ndarray  # (layers, tasks)
    calib_scale: np.ndarray  # (layers, tasks)
    calib_shift: np.ndarray  # (layers, tasks)

    def probs(self, views: np.ndarray) -> np.ndarray:
        """``views``: pooled hidden states (n, layers, dim) -> calibrated probabilities (n, layers, tasks)."""
        logits = np.einsum("nld,ltd->nlt", views, self.weight) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(self.calib_scale * logits + self.calib_shift, -40, 40)))

    @classmethod
    def from_heads(cls, layers: Sequence[str], per_layer: Sequence[Heads]) -> Probes:
        return cls(tuple(layers), tuple(per_layer[0].names),
                   np.stack([h.weight for h in per_layer]).astype(np.float32),
                   np.stack([h.bias for h in per_layer]).astype(np.float32),
                   np.stack([h.calib_scale for h in per_layer]).astype(np.float32),
                   np.stack([h.calib_shift for h in per_layer]).astype(np.float32))

    def save(self, model_dir: str | Path) -> None:
        np.savez(Path(model_dir) / PROBES_FILE, weight=self.weight, bias=self.bias,
                 calib_scale=self.calib_scale, calib_shift=self.calib_shift)

    @classmethod
    def load(cls, model_dir: str | Path, spec: dict) -> Probes:
        path = Path(model_dir) / spec.get("file", PROBES_FILE)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in ("weight", "bias", "calib_scale", "calib_shift")}
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"cannot read probes from {path}: {exc}") from None
        layers, tasks = tuple(spec["layers"]), tuple(spec["tasks"])
        if arrays["weight"].shape[:2] != (len(layers), len(tasks)):
            raise ModelError(f"{path} has probes of shape {arrays['weight'].shape[:2]}, manifest names "
                             f"{len(layers)} layers x {len(tasks)} tasks")
        return cls(layers, tasks, **arrays)
