"""GuardInput validation and the Verdict JSON schema."""

from __future__ import annotations

import json

import pytest

from railguard import GuardInput, InputError, Verdict
from railguard.types import VERDICT_KEYS


@pytest.mark.parametrize("prompt", [None, 42, b"bytes", ["a list"]])
def test_prompt_must_be_a_string(prompt):
    with pytest.raises(InputError, match="prompt must be a string"):
        GuardInput(prompt=prompt)


def test_input_error_is_a_value_error_for_callers_that_catch_those():
    with pytest.raises(ValueError):
        GuardInput(prompt=None)


def test_empty_prompt_is_valid():
    assert GuardInput(prompt="").prompt == ""


def test_response_must_be_a_string_or_none():
    assert GuardInput(prompt="hi", response=None).response is None
    with pytest.raises(InputError, match="response"):
        GuardInput(prompt="hi", response=3)


def test_context_accepts_one_string_or_a_list_of_strings():
    assert GuardInput(prompt="hi", context="a document").context == ("a document",)
    assert GuardInput(prompt="hi", context=["one", "two"]).context == ("one", "two")
    assert GuardInput(prompt="hi", context=None).context == ()


@pytest.mark.parametrize("context", [["fine", 3], 7])
def test_context_rejects_non_strings(context):
    with pytest.raises(InputError, match="context"):
        GuardInput(prompt="hi", context=context)


def test_input_does_not_keep_a_reference_to_the_callers_list():
    docs = ["one"]
    item = GuardInput(prompt="hi", context=docs)
    docs.append("two")
    assert item.context == ("one",)


def test_verdict_dict_has_exactly_the_documented_keys():
    verdict = Verdict(prompt_harmful=True, scores={"prompt_harmful": 0.912345}, tier="t", flagged=True)
    out = verdict.to_dict()
    assert tuple(out) == VERDICT_KEYS
    assert out["scores"] == {"prompt_harmful": 0.9123}
    json.dumps(out)


def test_verdict_dict_carries_the_id_only_when_there_is_one():
    assert "id" not in Verdict().to_dict()
    assert Verdict(id="row-7").to_dict()["id"] == "row-7"
    assert set(Verdict(id="row-7").to_dict()) == set(VERDICT_KEYS) | {"id"}


def test_failed_verdict_is_fail_closed_and_says_why():
    out = Verdict.failed("could not parse", tier="embedded", id="3").to_dict()
    assert out["flagged"] is True
    assert out["error"] == "could not parse"
    assert out["id"] == "3"
    assert out["prompt_harmful"] is None


def test_failed_verdict_can_fail_open_when_asked():
    assert Verdict.failed("timeout", tier="endpoint", flagged=False).flagged is False
