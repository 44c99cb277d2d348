"""``hf:<path-or-id>[?format=...]``: a Hugging Face guard model run locally with transformers + torch.

``pip install 'railguard[hf]'``. The model is read from disk only, never downloaded: name a folder
(``hf:/models/wildguard``, as written by ``save_pretrained`` or ``huggingface-cli download --local-dir``)
or a model id already in the local Hugging Face cache (``hf:allenai/wildguard``).

Each input is rendered in its model's prompt format (:mod:`.formats`); the format comes from
``?format=wildguard|llamaguard3|shieldgemma|granite`` or else from the model's name or path. Generative
formats (WildGuard, Llama Guard 3) decode greedily in batches; Yes/No formats (ShieldGemma, Granite
Guardian) run one forward pass and take P(Yes) from the softmax of the next-token ``Yes`` and ``No``
logits, as the model cards do.

Options: ``format``, ``batch_size`` (prompts per forward pass, default 8), ``max_new_tokens`` (default:
what the format needs), ``threshold`` (Yes/No formats, default 0.5), ``device`` (default ``cpu``;
``cuda`` where torch sees a GPU), ``dtype`` (``auto``: as the checkpoint is stored; or float32,
bfloat16, float16) and ``threads`` (torch CPU threads for the whole process; default: left as it is).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelError, require
from ..registry import register
from ..types import GuardInput, Verdict
from . import spec
from .formats import DEFAULT_THRESHOLD, Answer, Query, resolve_format, run

EXTRA = "hf"
EXAMPLE = "hf:/models/wildguard"
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True, slots=True)
class HFOptions:
    format: str | None = None
    batch_size: int = 8
    max_new_tokens: int | None = None
    threshold: float = DEFAULT_THRESHOLD
    device: str = "cpu"
    dtype: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")


def _local_source(model: str) -> tuple[str, Path | None]:
    """The folder to load from, or a model id to look up in the local cache; ConfigError for a missing path."""
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path), path
    if path.exists():
        raise ConfigError(f"hf:{model} is a file; name the model's folder (the one holding config.json)")
    looks_like_id = model.count("/") <= 1 and not model.startswith(("/", ".", "~")) and "\\" not in model
    if not looks_like_id:
        raise ConfigError(f"no model folder at {model}; railguard never downloads models: put the model on disk "
                          f"(e.g. huggingface-cli download ORG/NAME --local-dir DIR on a machine with network) "
                          f"and name that folder")
    return model, None


def _saved_name(folder: Path | None) -> str | None:
    """The name a model was saved under (config.json's ``_name_or_path``), a hint to its format."""
    if folder is None:
        return None
    try:
        return str(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("_name_or_path") or "")
    except (OSError, ValueError, AttributeError):
        return None


class HFGuard:
    """A local transformers causal LM speaking one of the guard formats."""

    def __init__(self, model: str, options: HFOptions | None = None) -> None:
        options = options or HFOptions()
        source, folder = _local_source(model)
        self.format = resolve_format(options.format, model, _saved_name(folder), what=f"hf:{model}")
        self.torch = require("torch", EXTRA)
        transformers = require("transformers", EXTRA)
        self.name = f"hf:{model}"
        self.options = options
        self.threshold = options.threshold
        self.tasks = self.format.tasks
        self.thresholds = dict.fromkeys(self.tasks, self.threshold)
        if options.threads is not None:
            self.torch.set_num_threads(options.threads)
        if options.device != "cpu" and options.device.startswith("cuda") and not self.torch.cuda.is_available():
            raise ConfigError(f"device {options.device} was asked for, but torch sees no GPU here; use device=cpu")
        dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
        dtype = options.dtype if options.dtype == "auto" else getattr(self.torch, options.dtype)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=True)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                source, local_files_only=True, **{dtype_key: dtype})
        except (OSError, ValueError) as exc:
            where = (f"the folder {folder}" if folder else
                     f"'{model}': it is no folder here and no model id in the local Hugging Face cache")
            raise ConfigError(f"cannot load a causal language model from {where}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]}; railguard never downloads models, so the "
                              f"weights must already be on disk") from None
        self.model.to(options.device).eval()
        self.tokenizer.padding_side = "left"  # generation continues every row from its last real token
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_new_tokens = options.max_new_tokens or self.format.max_new_tokens
        if self.format.scored:
            self.yes_no = (self._token_id("Yes"), self._token_id("No"))
        else:
            self.generation = transformers.GenerationConfig(
                max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.model.generation_config.eos_token_id)

    def _token_id(self, word: str) -> int:
        vocab = self.tokenizer.get_vocab()
        if word in vocab:
            return int(vocab[word])
        ids = self.tokenizer.encode(word, add_special_tokens=False)
        if len(ids) != 1:
            raise ConfigError(f"{self.name}: the tokenizer has no single token '{word}', so it cannot be a "
                              f"{self.format.name} model; choose another ?format=")
        return int(ids[0])

    def provenance(self) -> dict[str, Any]:
        return {"model": self.name.split(":", 1)[1], "format": self.format.name, "device": self.options.device,
                "dtype": str(self.model.dtype).removeprefix("torch.")}

    def _encode(self, texts: list[str]) -> Any:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True,
                             add_special_tokens=self.format.add_special_tokens)
        return {k: v.to(self.options.device) for k, v in enc.items()}

    def _generate(self, texts: list[str]) -> list[Answer]:
        enc = self._encode(texts)
        out = self.model.generate(**enc, generation_config=self.generation)
        new = out[:, enc["input_ids"].shape[1]:]
        return [Answer(text=t) for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    def _score(self, texts: list[str]) -> list[Answer]:
        torch = self.torch
        enc = self._encode(texts)
        # Left padding: positions count from each row's first real token, and the last column is its next token.
        positions = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        try:
            logits = self.model(**enc, position_ids=positions, logits_to_keep=1).logits[:, -1, :]
        except TypeError:  # transformers before logits_to_keep
            logits = self.model(**enc, position_ids=positions).logits[:, -1, :]
        pair = logits[:, list(self.yes_no)].float()
        return [Answer(yes_probability=float(p)) for p in torch.softmax(pair, dim=-1)[:, 0].tolist()]

    def _answers(self, queries: list[Query]) -> list[Answer]:
        """Answers in order; prompts of similar length share a batch so that little is padding."""
        texts = [q.text for q in queries]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        run = self._score if self.format.scored else self._generate
        answers: list[Answer | None] = [None] * len(texts)
        size = self.options.batch_size
        with self.torch.inference_mode():
            for k in range(0, len(order), size):
                idx = order[k:k + size]
                try:
                    batch = run([texts[i] for i in idx])
                except RuntimeError as exc:  # out of memory, a device error: the model could not run at all
                    raise ModelError(f"{self.name} failed on a batch of {len(idx)}: {str(exc)[:200]}") from None
                for i, answer in zip(idx, batch):
                    answers[i] = answer
        return answers  # type: ignore[return-value]

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        return run(self.format, inputs, self._answers, tier=self.name, threshold=self.threshold)


@register("hf", f"a local Hugging Face guard model (pip install 'railguard[hf]'): {EXAMPLE}"
                "[?format=wildguard|llamaguard3|shieldgemma|granite]", extra="hf", modules=("torch", "transformers"),
          argument=True)
def _hf(argument: str | None = None, **options) -> HFGuard:
    target, given = spec.split(argument, kind="hf", example=EXAMPLE)
    return HFGuard(target, spec.options(HFOptions, given | options, kind="hf"))
