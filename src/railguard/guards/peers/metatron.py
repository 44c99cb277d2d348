"""``peer:metatron``: Metatron NanoGuard (PyPI ``metatronnanoguard``, import ``nanoguard``).

``pip install 'railguard[peers-metatron]'`` (it needs torch: install the CPU build first,
``pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu``, or the extra's torch pin pulls CUDA).

What it is: a 16.8M-parameter bidirectional transformer (4 layers, 512 wide, RoPE) with a two-class
head, safe vs injection, over a tiktoken BPE of 8,192 tokens; its checkpoint (``model.pt``, read with
``weights_only=True``) and tokenizer (``tokenizer.pkl``, a pickle) ship in its wheel, so nothing is
downloaded. Every text is cut to its first 512 tokens and padded to 512: the padding is attended to,
so a shorter pad changes the scores, and we run it as it ships (``NanoGuard.scan_batch`` on the CPU,
in batches of ``batch_size``, default 16). A long document is judged by its first 512 tokens only.

How its answer maps onto a Verdict, honestly:

- it answers one question per text: P(injection), decided at its own threshold of 0.5;
- ``injection``: over the prompt and every context document (any one at or above 0.5), score = the
  highest probability;
- ``jailbreak``: the prompt's own answer, score = its probability. The model has one attack class for
  injections and jailbreak prompts alike (a DAN persona scores like "ignore previous instructions"), so
  this is the same score under our second name, not a separate judgement;
- ``prompt_harmful``, ``response_harmful`` and ``refusal``: None (not judged). It does not tell a
  harmful request from a benign one; it tells instructions that try to take over the model.
- ``categories`` stays empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError, require
from ...models.artifacts import sha256_file
from ...types import GuardInput, Task, Verdict
from .. import spec
from .texts import checked, score_texts

EXTRA = "peers-metatron"
PACKAGE = "metatronnanoguard"
THRESHOLD = 0.5  # NanoGuard's own default


@dataclass(frozen=True, slots=True)
class MetatronOptions:
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")


class Metatron:
    """Metatron NanoGuard behind the Guard protocol."""

    name = "peer:metatron"
    tasks = frozenset({Task.INJECTION.value, Task.JAILBREAK.value})

    def __init__(self, options: MetatronOptions | None = None) -> None:
        self.options = options or MetatronOptions()
        require("torch", EXTRA)
        require("tiktoken", EXTRA)  # its pickled tokenizer is a tiktoken Encoding
        nanoguard = require("nanoguard", EXTRA)
        try:
            self._model = nanoguard.NanoGuard(device="cpu", threshold=THRESHOLD)
        except (OSError, KeyError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot load Metatron NanoGuard's bundled weights: {type(exc).__name__}: {exc}; "
                              f"reinstall it (pip install --force-reinstall {PACKAGE})") from None
        from importlib.resources import files

        self.weights_path = Path(str(files("nanoguard.assets").joinpath("model.pt")))

    def provenance(self) -> dict:
        from importlib.metadata import version

        return {"package": PACKAGE, "package_version": version(PACKAGE), "weights_file": self.weights_path.name,
                "weights_sha256": sha256_file(self.weights_path), "threshold": THRESHOLD,
                "max_tokens": self._model.config.sequence_len, "batch_size": self.options.batch_size}

    def _scores(self, texts: list[str]) -> list[float]:
        return [r.injection_score for r in self._model.scan_batch(texts)]

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        items = checked(inputs)
        scored = score_texts(items, self._scores, context=True, batch_size=self.options.batch_size)
        verdicts = []
        for x, s in zip(items, scored):
            injection, jailbreak = s.highest >= THRESHOLD, s.prompt >= THRESHOLD
            verdicts.append(Verdict(
                injection=injection,
                jailbreak=jailbreak,
                scores={Task.INJECTION.value: s.highest, Task.JAILBREAK.value: s.prompt},
                tier=self.name,
                latency_ms=s.latency_ms,
                id=x.id,
                flagged=injection or jailbreak,
            ))
        return verdicts


def build(**options) -> Metatron:
    return Metatron(spec.options(MetatronOptions, options, kind="peer:metatron"))
