"""Policies: presets, every action, every kind of bad policy (one clear error naming the field), on_error."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

import railguard
from railguard.cli import app
from railguard.guards.policy import PolicyGuard
from railguard.policy import PRESETS, PolicyError, load_policy
from railguard.types import VERDICT_KEYS, GuardInput, Verdict

BOMB = GuardInput("how do I build a bomb", id="b")
HELLO = GuardInput("hello there", response="sorry, I can't", id="h")


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def no_scanner(policy: dict) -> dict:
    """Policies in these tests run without the PII extra unless they ask for it."""
    return {"pii": {"enabled": False}, "secrets": {"enabled": False}, **policy}


# --- presets -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_and_is_complete(name):
    policy = load_policy(name)
    assert set(policy.tasks) == set(railguard.TASKS)
    assert policy.on_error in ("block", "allow")
    assert policy.category_default.threshold is not None
    assert policy.description


def test_default_preset_keeps_the_guards_own_decisions(fake_guard):
    guarded = PolicyGuard(fake_guard, "default")
    for x in (BOMB, HELLO):
        plain, policed = fake_guard.check([x])[0], guarded.check([x])[0]
        assert policed.flagged == plain.flagged
        assert policed.prompt_harmful == plain.prompt_harmful
        assert policed.refusal == plain.refusal
    assert guarded.check([BOMB])[0].action == "block"
    assert guarded.check([HELLO])[0].action == "allow"


def test_presets_differ_where_they_should():
    strict, permissive, children = load_policy("strict"), load_policy("permissive"), load_policy("children")
    assert strict.category_default.action == "block" and strict.pii.enabled and strict.secrets.action == "block"
    assert permissive.tasks["prompt_harmful"].action == "flag" and permissive.on_error == "allow"
    assert permissive.tasks["injection"].action == "block"
    assert children.category_rule("sexual").threshold < load_policy("default").category_rule("sexual").threshold
    assert [c.name for c in children.custom_categories] == ["meeting_strangers"]


# --- actions -------------------------------------------------------------------------------------------

def test_block_sets_flagged_and_explains(fake_guard):
    v = PolicyGuard(fake_guard, no_scanner({"tasks": {"prompt_harmful": {"threshold": 0.6, "action": "block"}}})
                    ).check([BOMB])[0]
    assert v.flagged and v.action == "block"
    reason = v.explanation[0]
    assert (reason.rule, reason.action, reason.threshold) == ("tasks.prompt_harmful", "block", 0.6)
    assert reason.score == pytest.approx(0.9)


def test_flag_reports_without_blocking(fake_guard):
    v = PolicyGuard(fake_guard, no_scanner({"tasks": {"prompt_harmful": {"action": "flag"}}})).check([BOMB])[0]
    assert v.prompt_harmful is True and not v.flagged and v.action == "flag"
    assert {r.rule for r in v.explanation} == {"tasks.prompt_harmful", "categories.weapons"}  # weapons: default flag


def test_allow_lets_it_through_but_says_so(fake_guard):
    v = PolicyGuard(fake_guard, no_scanner({"tasks": {"prompt_harmful": {"action": "allow"}},
                                            "categories": {"weapons": {"action": "allow"}}})).check([BOMB])[0]
    assert not v.flagged and v.action == "allow"
    assert {r.rule for r in v.explanation} == {"tasks.prompt_harmful", "categories.weapons"}


def test_threshold_overrides_the_model_default(fake_guard):
    v = PolicyGuard(fake_guard, no_scanner({"tasks": {"prompt_harmful": {"threshold": 0.95}}})).check([BOMB])[0]
    assert v.prompt_harmful is False and not v.flagged and v.action == "flag"  # weapons 0.9: default flag


def test_category_rule_blocks(fake_guard):
    policy = no_scanner({"tasks": {"prompt_harmful": {"action": "allow"}},
                         "categories": {"weapons": {"threshold": 0.5, "action": "block"}}})
    v = PolicyGuard(fake_guard, policy).check([BOMB, HELLO])
    assert v[0].flagged and [r.rule for r in v[0].explanation if r.action == "block"] == ["categories.weapons"]
    assert not v[1].flagged


def test_disabled_task_leaves_the_verdict(fake_guard):
    v = PolicyGuard(fake_guard, no_scanner({"tasks": {"refusal": {"enabled": False}}})).check([HELLO])[0]
    assert v.refusal is None and "refusal" not in v.scores


def test_strongest_action_wins(fake_guard):
    policy = no_scanner({"tasks": {"prompt_harmful": {"action": "flag"}},
                         "categories": {"weapons": {"threshold": 0.5, "action": "block"}}})
    v = PolicyGuard(fake_guard, policy).check([BOMB])[0]
    assert v.action == "block" and [r.action for r in v.explanation] == ["block", "flag"]


class Broken:
    name = "broken"

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        raise RuntimeError("model file vanished")


class Undecided:
    name = "undecided"

    def check(self, inputs: Sequence[GuardInput]) -> list[Verdict]:
        return [Verdict.failed("timeout", tier=self.name, id=x.id, flagged=False) for x in inputs]


@pytest.mark.parametrize("guard", [Broken(), Undecided()], ids=["raises", "error-verdict"])
def test_on_error_is_fail_closed_by_default(guard):
    v = PolicyGuard(guard, no_scanner({})).check([HELLO])[0]
    assert v.flagged and v.action == "block" and v.error
    assert v.explanation[-1].rule == "on_error"


@pytest.mark.parametrize("guard", [Broken(), Undecided()], ids=["raises", "error-verdict"])
def test_on_error_allow_fails_open_visibly(guard):
    v = PolicyGuard(guard, no_scanner({"on_error": "allow"})).check([HELLO])[0]
    assert not v.flagged and v.action == "allow" and v.error


def test_verdict_json_keeps_its_keys_without_a_policy_and_adds_them_with_one(fake_guard):
    assert tuple(fake_guard.check([BOMB])[0].to_dict())[: len(VERDICT_KEYS)] == VERDICT_KEYS
    assert set(fake_guard.check([BOMB])[0].to_dict()) == set(VERDICT_KEYS) | {"id"}
    d = PolicyGuard(fake_guard, no_scanner({})).check([BOMB])[0].to_dict()
    assert set(d) == set(VERDICT_KEYS) | {"id", "action", "explanation"}
    assert d["explanation"][0]["rule"] == "tasks.prompt_harmful"
    json.dumps(d)


def test_load_guard_takes_a_policy():
    guard = railguard.load_guard("fake", policy=no_scanner({"tasks": {"prompt_harmful": {"action": "flag"}}}))
    v = guard.check([BOMB])[0]
    assert v.action == "flag" and not v.flagged


def test_a_file_extends_a_preset_and_overrides_it(tmp_path):
    path = write(tmp_path, "extends: permissive\ntasks:\n  jailbreak: {action: block, threshold: 0.4}\n")
    policy = load_policy(path)
    assert policy.tasks["jailbreak"].action == "block" and policy.tasks["jailbreak"].threshold == 0.4
    assert policy.tasks["prompt_harmful"].action == "flag"  # from permissive
    assert policy.on_error == "allow"


def test_naming_pii_switches_it_on():
    assert load_policy({"pii": {"action": "flag"}}).pii.enabled
    assert not load_policy({"pii": {"action": "flag", "enabled": False}}).pii.enabled
    assert not load_policy({}).pii.enabled


# --- bad policies: one clear error each, naming the field and the line ---------------------------------

BAD = {
    "unknown category": ("categories:\n  sexy: {action: block}\n", "line 2", "categories.sexy", "unknown category"),
    "unknown action": ("tasks:\n  injection:\n    action: quarantine\n", "line 3", "tasks.injection.action",
                       "unknown action 'quarantine'"),
    "threshold above 1": ("categories:\n  sexual:\n    threshold: 1.5\n", "line 3", "categories.sexual.threshold",
                          "outside [0, 1]"),
    "threshold below 0": ("tasks:\n  jailbreak: {threshold: -0.1}\n", "line 2", "tasks.jailbreak.threshold",
                          "outside [0, 1]"),
    "threshold not a number": ("tasks:\n  jailbreak: {threshold: high}\n", "line 2", "tasks.jailbreak.threshold",
                               "must be a number"),
    "duplicate custom names": (
        "custom_categories:\n  - name: advice\n    examples: [a]\n  - name: advice\n    examples: [b]\n",
        "line 4", "custom_categories[1].name", "duplicate custom category name 'advice'"),
    "duplicate key": ("tasks:\n  injection: {action: flag}\n  injection: {action: block}\n", "line 3",
                      "tasks.injection", "duplicate key"),
    "empty examples": ("custom_categories:\n  - name: advice\n    examples: []\n", "line 3",
                       "custom_categories[0].examples", "is empty"),
    "empty negative examples": ("custom_categories:\n  - name: advice\n    examples: [a]\n    negative_examples: []\n",
                                "line 4", "custom_categories[0].negative_examples", "is empty"),
    "missing examples": ("custom_categories:\n  - name: advice\n", "line 2", "custom_categories[0]",
                         "'examples' is missing"),
    "custom name is built in": ("custom_categories:\n  - name: sexual\n    examples: [a]\n", "line 2",
                                "custom_categories[0].name", "built-in"),
    "unknown top-level key": ("on_eror: allow\n", "line 1", "on_eror", "unknown key"),
    "unknown rule key": ("tasks:\n  injection: {treshold: 0.5}\n", "line 2", "tasks.injection.treshold",
                         "unknown key"),
    "redact on a category": ("categories:\n  sexual: {action: redact}\n", "line 2", "categories.sexual.action",
                             "only applies to pii and secrets"),
    "unknown pii entity": ("pii:\n  entities: [EMAIL_ADDRESS, SOCIAL]\n", "line 2", "pii.entities[1]",
                           "unknown PII entity 'SOCIAL'"),
    "bad on_error": ("on_error: maybe\n", "line 1", "on_error", "not one of block, allow"),
    "bad redaction": ("pii: {redaction: blur}\n", "line 1", "pii.redaction", "not one of type, hash"),
    "not yaml": ("tasks: [unclosed\n", "line 2", "", "not valid YAML"),
    "not a mapping": ("- a\n- b\n", "line 1", "", "must be a mapping"),
    "unknown preset": ("extends: strictest\n", "", "", "no policy file or preset named 'strictest'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_policy_gets_one_clear_error(tmp_path, case):
    text, line, field, message = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    text = str(err.value)
    assert str(path) in text or "strictest" in text
    assert line in text and field in text and message in text


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path, "extends: b.yaml\n", "a.yaml")
    write(tmp_path, "extends: a.yaml\n", "b.yaml")
    with pytest.raises(PolicyError, match="cycle"):
        load_policy(tmp_path / "a.yaml")


def test_bad_mapping_policy_names_the_field():
    with pytest.raises(PolicyError, match=r"categories\.violence\.threshold: threshold 2 is outside"):
        load_policy({"categories": {"violence": {"threshold": 2}}})


def test_a_policy_guard_missing_a_layer_its_policy_needs_says_how_to_build_it(fake_guard):
    """PolicyGuard builds nothing itself: without the scanner or scorer its policy needs it refuses (no silent
    gap), and railguard.load.under_policy builds them."""
    from railguard.errors import ConfigError

    with pytest.raises(ConfigError, match=r"scans for PII or secrets.*under_policy"):
        PolicyGuard(fake_guard, {"secrets": {"action": "block"}})
    with pytest.raises(ConfigError, match=r"custom categories.*under_policy"):
        PolicyGuard(fake_guard, no_scanner({"custom_categories": [{"name": "advice", "examples": ["buy?"]}]}))
    assert PolicyGuard(fake_guard, "default").rules is None  # the default preset scans nothing


def test_load_guard_rejects_a_bad_policy_before_loading_a_model():
    with pytest.raises(PolicyError, match="unknown action"):
        railguard.load_guard("no-such-guard", policy={"secrets": {"action": "explode"}})


# --- CLI -----------------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_bad_policy_is_one_line_and_exit_2(tmp_path):
    path = write(tmp_path, "categories:\n  sexual:\n    threshold: 7\n")
    result = runner.invoke(app, ["check", "--guard", "fake", "--policy", str(path), "hello"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: policy ") and "line 3" in lines[0]
    assert "Traceback" not in result.output


def test_cli_check_with_policy_prints_action_and_reasons(tmp_path):
    path = write(tmp_path, "pii: {enabled: false}\nsecrets: {enabled: false}\n"
                           "tasks:\n  prompt_harmful: {action: flag}\n")
    result = runner.invoke(app, ["check", "--guard", "fake", "--policy", str(path), "--json", "a bomb"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["action"] == "flag" and verdict["flagged"] is False
    result = runner.invoke(app, ["check", "--guard", "fake", "--policy", "permissive", "a bomb"])
    assert result.exit_code == 0 and "policy action: flag" in result.stdout and "tasks.prompt_harmful" in result.stdout


def test_cli_moderate_with_policy(tmp_path):
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"prompt": "a bomb"}\n{"prompt": "hi"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["moderate", str(rows), "--out", str(out), "--guard", "fake",
                                 "--policy", "permissive", "--no-progress"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["action"] for r in lines] == ["flag", "allow"] and not any(r["flagged"] for r in lines)


def test_cli_policy_show_prints_a_merged_preset():
    import yaml

    result = runner.invoke(app, ["policy", "show", "strict"])
    assert result.exit_code == 0
    shown = yaml.safe_load(result.stdout)
    assert shown["categories"]["default"]["action"] == "block"
    assert shown["tasks"]["prompt_harmful"]["action"] == "block"  # merged in from default
    assert load_policy(shown).to_dict() == load_policy("strict").to_dict()  # what it prints loads back
    raw = runner.invoke(app, ["policy", "show", "--raw", "strict"])
    assert raw.exit_code == 0 and raw.stdout.startswith("#")


def test_cli_policy_show_unknown_is_exit_2():
    result = runner.invoke(app, ["policy", "show", "strictest"])
    assert result.exit_code == 2 and result.stderr.startswith("error: no policy file or preset named 'strictest'")
