"""Guard prompt formats and answer parsers (WildGuard, Llama Guard 3, ShieldGemma, Granite Guardian), on the
answers their model cards and papers show; the taxonomy's reverse maps; ``kind:target?options`` parsing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from railguard.errors import ConfigError
from railguard.guards import formats, spec
from railguard.guards.formats import Answer, get_format, infer_format
from railguard.taxonomy import CATEGORY_NAMES, from_llama_guard, from_openai
from railguard.types import GuardInput

PROMPT_ONLY = GuardInput(prompt="How can I rob the bank?", id="a")
WITH_RESPONSE = GuardInput(prompt="How can I rob the bank?", response="I can not respond to that.", id="b")


def verdict(fmt_name: str, x: GuardInput, *answers: Answer, threshold: float = 0.5):
    fmt = get_format(fmt_name)
    queries = fmt.queries(x)
    assert len(queries) == len(answers)
    return fmt.verdict(x, queries, list(answers), tier="test", threshold=threshold)


# --- WildGuard ----------------------------------------------------------------------------------------------

def test_wildguard_prompt_is_the_model_card_instruction_format():
    (query,) = get_format("wildguard").queries(WITH_RESPONSE)
    assert query.text.startswith("<s><|user|>\n[INST] You are a classifier for analyzing interactions")
    assert "Human user:\nHow can I rob the bank?\n\nAI assistant:\nI can not respond to that.\n\n---\n\n" in query.text
    assert query.text.endswith("Answers: [/INST]\n<|assistant|>\n")
    # An endpoint gets the same text as one user message (for a server with a pass-through chat template).
    assert query.messages == ({"role": "user", "content": query.text},)
    (alone,) = get_format("wildguard").queries(PROMPT_ONLY)
    assert "AI assistant:\n\n\n---" in alone.text  # no response: an empty one, as wildguard's code sends


def test_wildguard_model_card_answer():
    # allenai/wildguard model card, "Example output" for the bank-robbery prompt and its refusal.
    v = verdict("wildguard", WITH_RESPONSE, Answer(text="Harmful request: yes\nResponse refusal: yes\nHarmful response: no"))
    assert v.error is None and v.id == "b" and v.tier == "test"
    assert (v.prompt_harmful, v.refusal, v.response_harmful) == (True, True, False)
    assert v.flagged is True  # a harmful request is flagged even though it was refused
    assert v.jailbreak is None and v.injection is None  # WildGuard does not judge these
    assert v.scores == {"prompt_harmful": 1.0, "refusal": 1.0, "response_harmful": 0.0}


def test_wildguard_prompt_only_answer_has_na_response_fields():
    # The WildGuard paper (Table 12): a prompt without a response is answered with N/A for both response lines.
    v = verdict("wildguard", PROMPT_ONLY, Answer(text="Harmful request: no\nResponse refusal: N/A\nHarmful response: N/A"))
    assert v.error is None and v.flagged is False
    assert v.prompt_harmful is False and v.refusal is None and v.response_harmful is None


def test_wildguard_tolerates_case_and_space_but_not_other_words():
    v = verdict("wildguard", WITH_RESPONSE, Answer(text=" harmful request:  YES \nResponse Refusal: no\nHarmful response: yes"))
    assert (v.prompt_harmful, v.refusal, v.response_harmful, v.error) == (True, False, True, None)
    v = verdict("wildguard", PROMPT_ONLY, Answer(text="Harmful request: probably"))
    assert v.error is not None and v.prompt_harmful is None and v.flagged is True


def test_wildguard_unparseable_answer_is_an_explicit_fail_closed_error():
    v = verdict("wildguard", PROMPT_ONLY, Answer(text="I'm sorry, as an AI I cannot classify this."))
    assert v.error is not None and "could not parse the wildguard answer" in v.error
    assert v.error.endswith("fail-closed: flagged") and v.flagged is True
    assert v.prompt_harmful is None
    assert "sorry" not in v.error  # the model's words (which may quote the user) stay out of the verdict


def test_wildguard_partial_answer_keeps_what_it_could_read():
    v = verdict("wildguard", WITH_RESPONSE, Answer(text="Harmful request: no\nResponse refusal: no\nHarmful resp"))
    assert v.prompt_harmful is False and v.refusal is False and v.response_harmful is None
    assert "response_harmful" in v.error and v.flagged is True


# --- Llama Guard 3 ------------------------------------------------------------------------------------------

def test_llamaguard3_prompt_matches_its_chat_template():
    fmt = get_format("llamaguard3")
    user, agent = fmt.queries(WITH_RESPONSE)
    assert (user.side, agent.side) == ("prompt", "response")
    assert user.text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nTask: Check if there "
                                "is unsafe content in 'User' messages")
    assert "S1: Violent Crimes.\nS2: Non-Violent Crimes." in user.text and "\nS14: Code Interpreter Abuse.\n" in user.text
    assert "<BEGIN CONVERSATION>\n\nUser: How can I rob the bank?\n\n<END CONVERSATION>" in user.text
    assert "ONLY THE LAST User message" in user.text and "Agent:" not in user.text
    assert "'Agent' messages" in agent.text and "ONLY THE LAST Agent message" in agent.text
    assert "User: How can I rob the bank?\n\nAgent: I can not respond to that.\n\n<END CONVERSATION>" in agent.text
    assert agent.text.endswith("<|eot_id|><|start_header_id|>assistant<|end_header_id|>")
    # An endpoint gets the conversation itself; the server's copy of the chat template builds the prompt.
    assert agent.messages == ({"role": "user", "content": "How can I rob the bank?"},
                              {"role": "assistant", "content": "I can not respond to that."})
    assert len(fmt.queries(PROMPT_ONLY)) == 1


def test_llamaguard3_model_card_safe_answer():
    # meta-llama/Llama-Guard-3-8B model card: moderate(...) returns '\n\nsafe'.
    v = verdict("llamaguard3", PROMPT_ONLY, Answer(text="\n\nsafe"))
    assert v.error is None and v.prompt_harmful is False and v.flagged is False
    assert v.categories and not any(v.categories.values())


def test_llamaguard3_unsafe_codes_map_to_our_categories():
    v = verdict("llamaguard3", WITH_RESPONSE, Answer(text="\n\nsafe"), Answer(text="\n\nunsafe\nS1,S10<|eot_id|>"))
    assert v.error is None and v.prompt_harmful is False and v.response_harmful is True and v.flagged is True
    assert v.scores["response_harmful"] == 1.0
    hot = {c for c, s in v.categories.items() if s == 1.0}
    assert hot == {"violence", "hate", "harassment"}  # S1 -> violence, S10 -> hate and harassment


def test_llamaguard3_unsafe_without_codes_still_decides():
    v = verdict("llamaguard3", PROMPT_ONLY, Answer(text="unsafe"))
    assert v.prompt_harmful is True and v.error is None


def test_llamaguard3_other_first_line_is_a_parse_error():
    v = verdict("llamaguard3", WITH_RESPONSE, Answer(text="unsafe\nS2"), Answer(text="The response is fine."))
    assert v.prompt_harmful is True  # the answer that could be read still counts
    assert v.response_harmful is None and "could not parse the llamaguard3 answer" in v.error and v.flagged


# --- ShieldGemma and Granite Guardian -----------------------------------------------------------------------

def test_shieldgemma_prompts_follow_the_model_card():
    prompt_q, response_q = get_format("shieldgemma").queries(WITH_RESPONSE)
    assert prompt_q.text.startswith("You are a policy expert trying to help determine whether a user prompt is in "
                                    "violation of the defined safety policies.\n\n<start_of_turn>\nHuman Question: "
                                    "How can I rob the bank?\n<end_of_turn>\n\nOur safety principle is defined in "
                                    "the below:\n\n* \"No Dangerous Content\": The prompt shall not contain or seek "
                                    "generation of content that harming oneself and/or others")
    for policy in ("No Harassment", "No Hate Speech", "No Sexually Explicit Information"):
        assert f'* "{policy}": The prompt shall not' in prompt_q.text
        assert f'* "{policy}": The chatbot shall not generate content that' in response_q.text
    assert "\n\n===\n\nDoes the human question violate the above principle? Your answer must start with 'Yes' or " \
           "'No'." in prompt_q.text
    assert "<start_of_turn>\nChatbot Response: I can not respond to that.\n<end_of_turn>\n\nDoes the Chatbot " \
           "Response violate the above principle?" in response_q.text
    assert get_format("shieldgemma").add_special_tokens  # the card tokenizes the raw prompt with <bos>


def test_yes_no_probability_is_the_score():
    # ShieldGemma model card: the example prints a P(Yes) of 0.7310585379600525.
    v = verdict("shieldgemma", PROMPT_ONLY, Answer(yes_probability=0.7310585379600525))
    assert v.prompt_harmful is True and v.scores["prompt_harmful"] == pytest.approx(0.7310585)
    assert v.categories == {}  # one Yes/No cannot say which policy
    v = verdict("shieldgemma", PROMPT_ONLY, Answer(yes_probability=0.7310585379600525), threshold=0.8)
    assert v.prompt_harmful is False and v.flagged is False


def test_granite_guardian_prompts_and_yes_no_text_answers():
    user_q, assistant_q = get_format("granite").queries(WITH_RESPONSE)
    assert user_q.text.startswith("<|start_of_role|>user<|end_of_role|>You are a safety agent trying to help "
                                  "determine whether the user message is harmful")
    assert "- The 'User' message is harmful by common-sense." in user_q.text
    assert "User Message: How can I rob the bank?\nAssistant Message: I can not respond to that." in assistant_q.text
    assert "- The 'Assistant' message is harmful by common-sense." in assistant_q.text
    assert assistant_q.text.endswith("<|start_of_role|>assistant<|end_of_role|>")
    assert user_q.template_kwargs == {"guardian_config": {"risk_name": "harm"}}
    # Granite Guardian model card: the label is the generated "Yes" or "No" (no probabilities given here).
    v = verdict("granite", WITH_RESPONSE, Answer(text="No"), Answer(text="Yes"))
    assert (v.prompt_harmful, v.response_harmful, v.error) == (False, True, None)
    assert v.scores == {"prompt_harmful": 0.0, "response_harmful": 1.0}


def test_yes_no_format_without_a_readable_answer_is_an_error():
    v = verdict("granite", PROMPT_ONLY, Answer(text="Maybe, it depends."))
    assert v.error is not None and "Yes/No" in v.error and v.flagged is True and v.prompt_harmful is None
    v = verdict("shieldgemma", PROMPT_ONLY, Answer(yes_probability=float("nan")))
    assert v.error is not None


def test_a_failed_request_fails_its_input_closed():
    v = verdict("llamaguard3", WITH_RESPONSE, Answer(text="safe"), Answer(error="endpoint:x: no answer within 1 s"))
    assert v.prompt_harmful is False and v.response_harmful is None
    assert v.error == "endpoint:x: no answer within 1 s; fail-closed: flagged" and v.flagged is True


# --- format names -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("/models/allenai/wildguard", "wildguard"),
    ("meta-llama/Llama-Guard-3-8B", "llamaguard3"),
    ("llama-guard3:1b", "llamaguard3"),
    ("google/shieldgemma-2b", "shieldgemma"),
    ("ibm-granite/granite-guardian-3.1-2b", "granite"),
    ("granite3-guardian:8b", "granite"),
])
def test_format_is_inferred_from_the_model_name(name, expected):
    assert infer_format(name).name == expected


def test_unknown_format_names_are_config_errors():
    assert infer_format("mistralai/Mistral-7B") is None
    assert get_format("Llama-Guard").name == "llamaguard3"
    with pytest.raises(ConfigError, match="known formats: wildguard, llamaguard3, shieldgemma, granite"):
        get_format("nemoguard")
    with pytest.raises(ConfigError, match=r"\?format=wildguard\|llamaguard3\|shieldgemma\|granite"):
        formats.resolve_format(None, "mistralai/Mistral-7B", what="hf:mistral")


# --- taxonomy reverse maps ----------------------------------------------------------------------------------

def test_llama_guard_codes_to_categories():
    cats = from_llama_guard(["s9", "S4"])
    assert set(cats) == set(CATEGORY_NAMES)
    assert {c for c, s in cats.items() if s} == {"weapons", "sexual_minors"}
    assert not any(from_llama_guard(["S3"]).values())  # sex crimes: no category of ours stands for it


def test_openai_scores_to_categories():
    cats = from_openai({"sexual": 0.9, "sexual/minors": 0.05, "violence/graphic": 0.7, "illicit": 0.3,
                        "harassment/threatening": 0.6, "self-harm/intent": 0.4, "bogus": "x"})
    assert cats["sexual"] == 0.9 and cats["sexual_minors"] == 0.05  # adult sexual content is not about minors
    assert cats["violence"] == 0.7  # an unlisted sub-category counts as its parent
    assert cats["crime"] == cats["fraud"] == cats["cybercrime"] == 0.3
    assert cats["harassment"] == 0.6 and cats["self_harm"] == 0.4
    assert "privacy" not in cats  # OpenAI has no name for it: not claimed to be 0


# --- kind:target?options ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Opts:
    batch_size: int = 8
    threshold: float = 0.5
    format: str | None = None
    fast: bool = False


def test_options_from_a_name_are_typed_and_checked():
    target, given = spec.split("/m/wg?batch_size=4&threshold=0.7&fast=yes", kind="hf", example="hf:/m")
    assert target == "/m/wg"
    assert spec.options(_Opts, given, kind="hf") == _Opts(batch_size=4, threshold=0.7, fast=True)
    assert spec.options(_Opts, {"format": "none", "batch_size": 2}, kind="hf") == _Opts(batch_size=2)
    with pytest.raises(ConfigError, match="unknown option colour for the hf guard; known options: batch_size"):
        spec.options(_Opts, {"colour": "red"}, kind="hf")
    with pytest.raises(ConfigError, match="option 'batch_size' of the hf guard must be a int"):
        spec.options(_Opts, {"batch_size": "many"}, kind="hf")
    with pytest.raises(ConfigError, match="given twice"):
        spec.split("/m?fast=1&fast=0", kind="hf", example="hf:/m")
    with pytest.raises(ConfigError, match="e.g. hf:/m"):
        spec.split("?fast=1", kind="hf", example="hf:/m")
