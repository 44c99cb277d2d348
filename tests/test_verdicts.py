"""railguard.verdicts: one rule for validating a batch, combining the verdicts of an input's parts, failing."""

from __future__ import annotations

import pytest

from railguard import verdicts
from railguard.errors import ConfigError, GuardContractError, InputError, RailguardError
from railguard.guards.policy import PolicyGuard
from railguard.batch.core import judged_batches
from railguard.media import guard as media
from railguard.media.guard import MediaGuard
from railguard.types import AgentVerdict, Extraction, GuardInput, Reason, Route, Verdict


class Short:
    """A broken guard: one verdict too few."""

    name = "short"

    def check(self, inputs):
        return [Verdict(tier=self.name)] * (len(inputs) - 1)


def test_every_guard_refuses_what_is_not_a_guard_input_with_the_same_error(fake_guard):
    with pytest.raises(InputError, match="check\\(\\) takes GuardInput items, got str"):
        verdicts.check_inputs([GuardInput(prompt="hi"), "hi"])
    for guard in (MediaGuard(fake_guard), PolicyGuard(fake_guard, "default")):
        with pytest.raises(InputError, match="got dict"):
            guard.check([{"prompt": "hi"}])


def test_a_guard_that_answers_too_few_verdicts_is_one_error_everywhere():
    batch = [GuardInput(prompt="a"), GuardInput(prompt="b")]
    with pytest.raises(GuardContractError, match="guard 'short' returned 1 verdicts for 2 inputs") as err:
        verdicts.check_count(Short(), batch, Short().check(batch))
    assert isinstance(err.value, ConfigError) and isinstance(err.value, RailguardError)
    # A batch job isolates the rows and fails each closed; a policy turns it into its on_error action.
    [rows] = list(judged_batches([("r1", batch[0]), ("r2", batch[1])], Short(), batch_size=2))
    assert [row_id for row_id, _ in rows] == ["r1", "r2"]
    assert all(v.flagged and "returned 0 verdicts for 1 inputs" in v.error for _, v in rows)
    failed = PolicyGuard(Short(), "default").check(batch)
    assert [v.action for v in failed] == ["block", "block"] and "GuardContractError" in failed[0].error


def test_combining_parts_takes_the_strongest_answer_of_any_part():
    text = Verdict(prompt_harmful=False, injection=False, scores={"prompt_harmful": 0.2}, categories={"hate": 0.1},
                   action="flag", explanation=(Reason("tasks.jailbreak", "flag"),), route=Route(answered_by="e5"))
    image = Verdict(prompt_harmful=True, scores={"prompt_harmful": 0.9}, categories={"hate": 0.05}, flagged=True,
                    action="block", error="image[0]: blurry", agent=AgentVerdict("LOW", {"LOW": 0.7}))
    v = verdicts.combine([text, image], tier="t", id="x", latency_ms=3.0)
    assert (v.prompt_harmful, v.injection, v.jailbreak) == (True, False, None)
    assert v.scores == {"prompt_harmful": 0.9} and v.categories == {"hate": 0.1}
    assert v.flagged and v.action == "block" and v.error == "image[0]: blurry"
    assert v.route == Route(answered_by="e5") and v.action_risk == "LOW" and v.action_risk_probs == {"LOW": 0.7}
    assert [r.rule for r in v.explanation] == ["tasks.jailbreak"]
    assert (v.tier, v.id, v.latency_ms) == ("t", "x", 3.0)
    assert verdicts.strongest([]) == "allow" and verdicts.strongest(["flag", "block", "redact"]) == "block"


def test_a_failed_verdict_fails_closed_or_takes_the_policy_action():
    closed = verdicts.failed("no answer", tier="t", id="1")
    assert closed.flagged and closed.action is None and closed.error == "no answer"
    opened = verdicts.failed("no answer", tier="t", id="1", on_error="allow")
    assert not opened.flagged and opened.action == "allow" and opened.explanation[0].rule == "on_error"


class Routed:
    """A guard whose verdicts carry a cascade's route and an agent judgement."""

    name = "routed"

    def check(self, inputs):
        return [Verdict(prompt_harmful=False, tier=self.name, id=x.id, route=Route(answered_by="embedded"),
                        agent=AgentVerdict("HIGH", {"HIGH": 0.9}), flagged=True) for x in inputs]


def test_the_media_wrapper_keeps_the_route_and_the_agent_fields(monkeypatch):
    monkeypatch.setattr(media, "extract", lambda x, settings: [Extraction(source="image[0]", kind="ocr",
                                                                          text="a sign that says hello")])
    [v] = MediaGuard(Routed()).check([GuardInput(prompt="what does it say?", images=[b"an image"], id="7")])
    assert v.route == Route(answered_by="embedded")
    assert v.action_risk == "HIGH" and v.action_risk_probs == {"HIGH": 0.9} and v.flagged
    assert [r.source for r in v.explanation] == ["text", "image[0]"]


def test_a_verdict_declares_its_route_once():
    assert [f for f in Verdict.__dataclass_fields__ if f == "route"] == ["route"]
    assert list(Verdict(route=Route()).to_dict()).count("route") == 1
