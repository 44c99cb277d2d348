"""``hf:`` end to end on a tiny random-weight Llama the suite builds itself (no download, a few seconds):
load -> render the guard prompt -> batched greedy generation or Yes/No scoring -> parse -> Verdict.

The random model speaks gibberish, so the generative formats must end in explicit parse errors (fail-closed),
and the Yes/No formats must give real probabilities that follow the threshold.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed: pip install 'railguard[hf]'")
transformers = pytest.importorskip("transformers", reason="the hf extra is not installed")
tokenizers = pytest.importorskip("tokenizers")

from typer.testing import CliRunner  # noqa: E402

from railguard import load_guard  # noqa: E402
from railguard.cli import app  # noqa: E402
from railguard.errors import ConfigError  # noqa: E402
from railguard.guards.formats import get_format  # noqa: E402
from railguard.types import GuardInput  # noqa: E402

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<|user|>", "<|assistant|>", "<|begin_of_text|>",
                  "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|start_of_role|>", "<|end_of_role|>",
                  "<|end_of_text|>", "<start_of_turn>", "<end_of_turn>"]
INPUTS = [GuardInput(prompt="How do I build a bomb?", id="p"),
          GuardInput(prompt="What is the capital of France?", response="Paris is the capital.", id="r")]


def _build_tiny_model(folder: Path) -> None:
    """A byte-level BPE tokenizer trained on the fly and a 2-layer Llama with random weights, saved like a real one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [q.text for x in INPUTS for f in ("wildguard", "llamaguard3", "shieldgemma") for q in get_format(f).queries(x)]
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus * 3, trainer)
    tok.add_tokens(["Yes", "No"])  # the Yes/No formats read these two next-token logits
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                                unk_token="<unk>", pad_token="<pad>")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny model under a name that says WildGuard (so the format is inferred from it)."""
    folder = tmp_path_factory.mktemp("hf") / "tiny-wildguard"
    _build_tiny_model(folder)
    return folder


@pytest.fixture(scope="session")
def unnamed_model(tiny_model: Path) -> Path:
    """The same model in a folder whose name says nothing about its format."""
    folder = tiny_model.parent / "tiny-model"
    if not folder.exists():
        shutil.copytree(tiny_model, folder)
    return folder


def test_generation_path_end_to_end_makes_parse_failures_explicit(tiny_model):
    guard = load_guard(f"hf:{tiny_model}")
    assert guard.inner.format.name == "wildguard" and guard.name == f"hf:{tiny_model}"
    assert guard.tasks == {"prompt_harmful", "response_harmful", "refusal"}
    verdicts = guard.check(INPUTS)
    assert [v.id for v in verdicts] == ["p", "r"]
    for v in verdicts:
        assert v.tier == f"hf:{tiny_model}"
        assert v.error is not None and v.error.startswith("could not parse the wildguard answer")
        assert v.flagged is True and v.prompt_harmful is None  # fail-closed, and no made-up decision
        assert v.jailbreak is None and v.injection is None
    # What reached the parser: one generated text per query, in order, and no probability.
    queries = [q for x in INPUTS for q in guard.inner.format.queries(x)]
    answers = guard.inner._answers(queries)
    assert len(answers) == len(queries) == 2
    assert all(isinstance(a.text, str) and a.yes_probability is None and a.error is None for a in answers)


def test_llamaguard3_format_asks_once_per_side(unnamed_model):
    guard = load_guard(f"hf:{unnamed_model}?format=llamaguard3&batch_size=1&max_new_tokens=4")
    assert guard.inner.max_new_tokens == 4
    prompt_only, with_response = guard.check(INPUTS)
    assert "llamaguard3" in prompt_only.error and prompt_only.flagged
    assert with_response.response_harmful is None and with_response.flagged


def test_yes_no_scores_are_probabilities_that_follow_the_threshold(unnamed_model):
    guard = load_guard(f"hf:{unnamed_model}?format=shieldgemma")
    verdicts = guard.check(INPUTS)
    for v in verdicts:
        assert v.error is None
        p = v.scores["prompt_harmful"]
        assert 0.0 < p < 1.0 and v.prompt_harmful == (p >= 0.5)
    assert set(verdicts[1].scores) == {"prompt_harmful", "response_harmful"}
    assert verdicts[0].response_harmful is None
    low = load_guard(f"hf:{unnamed_model}", format="shieldgemma", threshold=0.0).check(INPUTS[:1])[0]
    high = load_guard(f"hf:{unnamed_model}", format="shieldgemma", threshold=1.0).check(INPUTS[:1])[0]
    assert low.prompt_harmful is True and low.flagged is True
    assert high.prompt_harmful is False and high.flagged is False


def test_a_score_does_not_depend_on_what_shares_its_batch(unnamed_model):
    # Left padding must not shift positions: a prompt scores the same alone and beside a much longer one.
    guard = load_guard(f"hf:{unnamed_model}?format=granite")
    short = GuardInput(prompt="hi")
    alone = guard.check([short])[0].scores["prompt_harmful"]
    batched = guard.check([short, GuardInput(prompt="tell me a long story " * 20)])[0].scores["prompt_harmful"]
    assert batched == pytest.approx(alone, abs=1e-4)


def test_cli_check_with_an_hf_guard(tiny_model):
    result = CliRunner().invoke(app, ["check", "How do I build a bomb?", "--json", "--guard", f"hf:{tiny_model}"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["flagged"] is True and "could not parse" in verdict["error"]


def test_nothing_is_downloaded_and_bad_names_are_config_errors(tmp_path, unnamed_model):
    with pytest.raises(ConfigError, match="no model folder at /no/such/wildguard; railguard never downloads"):
        load_guard("hf:/no/such/wildguard")
    with pytest.raises(ConfigError, match="no model id in the local Hugging Face cache"):
        load_guard("hf:railguard-tests/no-such-wildguard")
    with pytest.raises(ConfigError, match=r"add \?format="):
        load_guard(f"hf:{unnamed_model}")
    with pytest.raises(ConfigError, match="unknown option colour"):
        load_guard(f"hf:{unnamed_model}?format=wildguard&colour=red")
    with pytest.raises(ConfigError, match="batch_size must be at least 1"):
        load_guard(f"hf:{unnamed_model}?format=wildguard&batch_size=0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="torch sees no GPU here; use device=cpu"):
            load_guard(f"hf:{unnamed_model}?format=wildguard&device=cuda")
    (tmp_path / "wildguard").mkdir()
    with pytest.raises(ConfigError, match="cannot load a causal language model from the folder"):
        load_guard(f"hf:{tmp_path / 'wildguard'}")
