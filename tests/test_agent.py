"""The agent guard: action and trajectory inputs, their validation, the shipped heads, the rule layer and
the policy's agent section, the CLI, the server route, the evaluation and the example loop."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import railguard
from railguard import Action, GuardInput, InputError, ModelError
from railguard.actions import MAX_TURNS, RISK_LEVELS
from railguard.cli import app
from railguard.models.agent_heads import AGENT_DIR
from railguard.policy import PolicyError, load_policy
from railguard.types import VERDICT_KEYS

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def agent():
    return railguard.load_guard("agent")


def one(guard, **fields) -> railguard.Verdict:
    return guard.check([GuardInput(**fields)])[0]


# --- input validation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, message", [
    ({"kind": "hover", "target": "Menu"}, "unknown; use one of click"),
    ({"kind": "click"}, "needs a target"),
    ({"kind": "submit", "target": "   "}, "needs a target"),
    ({"kind": "navigate"}, "needs the url"),
    ({"kind": "tool_call", "arguments": {"cmd": "ls"}}, "needs the tool name"),
    ({"kind": "click", "target": 3}, "Action.target must be a string"),
    ({"kind": "tool_call", "tool": "x", "arguments": 5}, "arguments must be a mapping or a string"),
])
def test_bad_actions_raise_a_clear_input_error(fields, message):
    with pytest.raises(InputError, match=message):
        Action(**fields)


def test_action_dicts_are_validated_and_unknown_fields_named():
    assert GuardInput(action={"kind": "CLICK", "target": "Buy"}).action == Action("click", target="Buy")
    with pytest.raises(InputError, match="unknown field.*colour"):
        GuardInput(action={"kind": "click", "target": "Buy", "colour": "red"})
    with pytest.raises(InputError, match="needs a 'kind'"):
        GuardInput(action={"target": "Buy"})


def test_huge_or_malformed_trajectories_are_refused():
    turn = {"role": "user", "content": "hi"}
    with pytest.raises(InputError, match=f"at most {MAX_TURNS}"):
        GuardInput(trajectory=[turn] * (MAX_TURNS + 1))
    with pytest.raises(InputError, match="characters"):
        GuardInput(trajectory=[{"role": "environment", "content": "x" * 90_000}] * 12)
    with pytest.raises(InputError, match="role 'robot' is unknown"):
        GuardInput(trajectory=[{"role": "robot", "content": "hi"}])
    with pytest.raises(InputError, match="list of turns"):
        GuardInput(trajectory="user: hi")
    with pytest.raises(InputError, match="says nothing"):
        GuardInput(trajectory=[{"role": "agent"}])


def test_openai_tool_calls_are_read_as_actions_in_every_shape():
    expected = Action("tool_call", tool="shell", arguments={"cmd": "rm -rf /tmp/x"})
    chat = {"id": "call_1", "type": "function", "function": {"name": "shell", "arguments": '{"cmd": "rm -rf /tmp/x"}'}}
    responses = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "shell",
                 "arguments": '{"cmd": "rm -rf /tmp/x"}', "status": "completed"}
    legacy = {"name": "shell", "arguments": '{"cmd": "rm -rf /tmp/x"}'}
    for call in (chat, responses, legacy, {**chat, "function": {**chat["function"], "arguments": {"cmd": "rm -rf /tmp/x"}}}):
        assert GuardInput(action=call).action == expected == Action.from_tool_call(call)
    openai_types = pytest.importorskip("openai.types.chat")
    sdk = openai_types.ChatCompletionMessageToolCall(**chat)  # the openai client's own object
    assert GuardInput(action=sdk).action == expected
    assert Action.from_tool_call(chat, task="tidy up").task == "tidy up"
    custom = Action.from_tool_call({"type": "custom_tool_call", "call_id": "c", "name": "sql", "input": "DROP TABLE t"})
    assert (custom.tool, custom.arguments) == ("sql", "DROP TABLE t")
    malformed = Action.from_tool_call({**chat, "function": {"name": "shell", "arguments": '{"cmd": "rm -rf'}})
    assert malformed.arguments == '{"cmd": "rm -rf'  # the model's broken JSON is kept and read as written
    with pytest.raises(InputError, match="no function name"):
        GuardInput(action={"type": "function", "function": {"arguments": "{}"}})
    with pytest.raises(InputError, match="arguments must be a JSON string or an object"):
        Action.from_tool_call({"type": "function", "function": {"name": "f", "arguments": 3}})
    with pytest.raises(InputError, match="an action dict or a tool call"):
        GuardInput(action=42)


def test_a_tool_call_is_judged_like_the_action_it_is(agent):
    call = {"id": "call_9", "type": "function", "function": {"name": "shell", "arguments": '{"cmd": "rm -rf /home/me"}'}}
    direct, by_hand = agent.check([GuardInput(action=call), GuardInput(action=Action(
        "tool_call", tool="shell", arguments={"cmd": "rm -rf /home/me"}))])
    assert (direct.action_risk, direct.action) == ("HIGH", "block")
    assert direct.action_risk_probs == by_hand.action_risk_probs
    assert "agent.rules.shell_rm_rf" in [r.rule for r in direct.explanation]


def test_text_inputs_are_unchanged():
    x = GuardInput("hello")
    assert (x.prompt, x.action, x.trajectory) == ("hello", None, ())
    with pytest.raises(InputError):
        GuardInput(prompt=None)
    assert GuardInput(action=Action("navigate", url="https://example.com")).prompt == ""


# --- the guard ---------------------------------------------------------------------------------------------

def test_clear_cases_get_the_expected_levels(agent):
    delete = one(agent, action=Action("click", target="Delete account", url="https://example.com/account/settings",
                                      element_tag="button"))
    browse = one(agent, action=Action("click", target="Next page", url="https://news.example.org/world",
                                      element_tag="a"))
    assert (delete.action_risk, delete.action, delete.flagged) == ("HIGH", "block", True)
    assert (browse.action_risk, browse.action, browse.flagged) == ("SAFE", "allow", False)
    for v in (delete, browse):
        assert set(v.action_risk_probs) == set(RISK_LEVELS)
        assert sum(v.action_risk_probs.values()) == pytest.approx(1.0, abs=1e-4)


def test_a_rule_raises_the_model_and_is_named_in_the_explanation(agent):
    v = one(agent, action=Action("tool_call", tool="shell", arguments={"cmd": "rm -rf /home/me"}))
    assert v.action_risk == "HIGH"
    rules = [r.rule for r in v.explanation]
    assert "agent.rules.shell_rm_rf" in rules and "agent.model" in rules
    assert v.to_dict()["explanation"][0]["rule"].startswith("agent.")


def test_agent_fields_appear_in_json_only_when_set(agent):
    v = one(agent, action=Action("click", target="Add to cart", url="https://shop.example.com/product/1"))
    data = v.to_dict()
    assert data["action_risk"] in RISK_LEVELS and set(data["action_risk_probs"]) == set(RISK_LEVELS)
    assert "trajectory_unsafe" not in data
    assert tuple(railguard.Verdict(tier="x").to_dict()) == VERDICT_KEYS


def test_trajectories_are_scored_and_their_tool_calls_checked_by_the_rules(agent):
    turns = [{"role": "user", "content": "Free some disk space on the server."},
             {"role": "agent", "thought": "I will clear everything.", "action": 'Terminal{"command": "rm -rf /"}'},
             {"role": "environment", "content": "done"}]
    v = one(agent, trajectory=turns)
    assert v.trajectory_unsafe is True and v.flagged
    assert 0.0 <= v.trajectory_score <= 1.0
    assert any(r.rule == "agent.rules.shell_rm_rf" for r in v.explanation)
    assert "action_risk" not in v.to_dict()


def test_the_agent_guard_refuses_text_only_inputs(agent):
    with pytest.raises(InputError, match="actions and trajectories"):
        agent.check([GuardInput("just text")])


def test_the_embedded_default_routes_actions_to_the_agent_heads(embedded_guard):
    text, acted = embedded_guard.check([
        GuardInput("How do I kill a Python process?"),
        GuardInput("Buy the cheapest one", action=Action("click", target="Place order",
                                                          url="https://shop.example.com/checkout")),
    ])
    assert text.action_risk is None and "action_risk" not in text.to_dict()
    assert acted.action_risk == "HIGH" and acted.flagged and acted.action == "block"
    assert "prompt_harmful" in acted.scores and "action_high" in acted.scores


def test_the_loader_puts_the_agent_guard_beside_the_text_guard(embedded_guard):
    """The embedded guard itself judges text only; the loaded one (text guard and agent guard composed) keeps
    the embedded guard's capabilities and judges the action in its layer views too."""
    from railguard.agent.compose import WithAgent
    from railguard.guard import HasEncoder, HasLayerViews, HasManifest, HasThresholds, ReadsLanguages, unwrap
    from railguard.guards.embedded import EmbeddedGuard

    composed = unwrap(embedded_guard, WithAgent)
    text_guard = composed.inner
    assert isinstance(text_guard, EmbeddedGuard)
    for capability in (HasEncoder, HasLayerViews, HasManifest, HasThresholds, ReadsLanguages):
        assert isinstance(composed, capability), capability.__name__
    acting = GuardInput("Buy it", action=Action("click", target="Place order", url="https://shop.example.com/checkout"))
    assert text_guard.check([acting])[0].action_risk is None
    viewed, checked = composed.check_views([acting])[0][0].to_dict(), composed.check([acting])[0].to_dict()
    assert {**viewed, "latency_ms": 0} == {**checked, "latency_ms": 0}
    assert viewed["action_risk"] == "HIGH"


def test_a_changed_model_file_is_refused(tmp_path):
    broken = tmp_path / "agent"
    shutil.copytree(AGENT_DIR, broken)
    with open(broken / "action.npz", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ModelError, match="corrupt or was changed"):
        railguard.load_guard(f"agent:{broken}")


# --- policies ----------------------------------------------------------------------------------------------

def test_policy_rules_and_actions_apply_to_agent_verdicts(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("agent:\n"
                    "  rules:\n"
                    "    - name: wiki_edit\n"
                    "      when: {kind: [click], url: 'wiki\\.example\\.com', target: '^publish'}\n"
                    "      risk: HIGH\n"
                    "  actions: {LOW: allow, HIGH: flag}\n")
    guard = railguard.load_guard("agent", policy=str(path))
    v = one(guard, action=Action("click", target="Publish page", url="https://wiki.example.com/edit"))
    assert v.action_risk == "HIGH"
    assert v.action == "flag" and not v.flagged  # the policy maps HIGH to flag
    assert any(r.rule == "agent.rules.wiki_edit" and r.action == "flag" for r in v.explanation)
    assert load_policy(str(path)).to_dict()["agent"]["rules"][0]["name"] == "wiki_edit"


def test_policy_agent_mistakes_name_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("agent:\n  rules:\n    - name: x\n      when: {kind: [hover]}\n      risk: HIGH\n")
    with pytest.raises(PolicyError, match=r"line 4.*kind must list action kinds"):
        load_policy(str(path))
    path.write_text("agent:\n  rules:\n    - name: x\n      when: {url: checkout}\n      risk: SAFE\n")
    with pytest.raises(PolicyError, match="must be one of LOW, HIGH"):
        load_policy(str(path))


# --- command line, server, example ---------------------------------------------------------------------------

def test_check_action_json_and_errors():
    result = runner.invoke(app, ["check-action", "--kind", "click", "--target", "Delete account", "--url",
                                 "https://example.com/account", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["action_risk"] == "HIGH"
    result = runner.invoke(app, ["check-action", "--kind", "hover", "--target", "x"])
    assert result.exit_code == 2 and result.stderr.startswith("error: Action.kind 'hover' is unknown")


def test_check_action_reads_json_lines(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"kind": "navigate", "url": "https://example.com"}) + "\n"
                    + json.dumps({"action": {"kind": "click", "target": "Pay now"}, "id": "b"}) + "\n")
    result = runner.invoke(app, ["check-action", "--input", str(path)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r.get("id") for r in rows] == [None, "b"] and rows[1]["action_risk"] == "HIGH"
    path.write_text(json.dumps({"id": "call_3", "type": "function",
                                "function": {"name": "shell", "arguments": '{"cmd": "rm -rf /"}'}}) + "\n")
    result = runner.invoke(app, ["check-action", "--input", str(path)])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert (row["id"], row["action_risk"]) == ("shell:call_3", "HIGH")
    path.write_text('{"kind": "click", "target": "ok"}\n{"kind": "click"}\n')
    result = runner.invoke(app, ["check-action", "--input", str(path)])
    assert result.exit_code == 2 and "line 2" in result.stderr


def test_server_route_judges_actions_with_keys_and_errors(tmp_path, agent):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from server_support import make_app

    with TestClient(make_app(tmp_path, guard=agent, api_keys="k1")) as client:
        body = [{"action": {"kind": "click", "target": "Place order", "url": "https://s.example.com/checkout"},
                 "id": 7}, {"trajectory": [{"role": "user", "content": "What's the weather?"}]}]
        assert client.post("/v1/guard/actions", json=body).status_code == 401
        answer = client.post("/v1/guard/actions", json=body, headers={"Authorization": "Bearer k1"})
        assert answer.status_code == 200, answer.text
        first, second = answer.json()
        assert (first["id"], first["action_risk"], first["action"]) == ("7", "HIGH", "block")
        assert isinstance(second["trajectory_unsafe"], bool)
        bad = client.post("/v1/guard/actions", json={"action": {"kind": "hover", "target": "x"}},
                          headers={"Authorization": "Bearer k1"})
        assert bad.status_code == 422 and "hover" in bad.json()["error"]["message"]
        empty = client.post("/v1/guard/actions", json={}, headers={"Authorization": "Bearer k1"})
        assert empty.status_code == 422 and "neither" in empty.json()["error"]["message"]
        calls = client.post("/v1/guard/actions", headers={"Authorization": "Bearer k1"}, json=[
            {"action": {"id": "call_1", "type": "function",
                        "function": {"name": "wire_transfer", "arguments": '{"to": "IBAN DE00", "amount": 900}'}}},
            {"action": {"type": "function_call", "call_id": "c2", "name": "shell", "arguments": '{"cmd": "ls"}'},
             "id": "mine"}])
        assert calls.status_code == 200, calls.text
        wire, ls = calls.json()
        assert (wire["id"], wire["action_risk"], wire["action"]) == ("wire_transfer:call_1", "HIGH", "block")
        assert ls["id"] == "mine" and ls["action_risk"] in RISK_LEVELS
        nameless = client.post("/v1/guard/actions", headers={"Authorization": "Bearer k1"},
                               json={"action": {"type": "function", "function": {"arguments": "{}"}}})
        assert nameless.status_code == 422 and "no function name" in nameless.json()["error"]["message"]


def test_the_example_loop_blocks_high_and_asks_before_low():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "agent_loop.py")], capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rm = next(i for i, line in enumerate(lines) if "rm -rf" in line)
    assert lines[rm].startswith("HIGH") and lines[rm + 1].strip() == "blocked"
    assert any("[y/N] n" in line for line in lines) and "skipped" in result.stdout
    assert lines[-1].endswith("blocked")


# --- evaluation and training ----------------------------------------------------------------------------------

def _write(path: Path, rows: list[dict]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    with gzip.open(path / "data.jsonl.gz", "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def _tiny_data(root: Path) -> Path:
    verbs = {"SAFE": ["Read more", "Next page", "English"], "LOW": ["Add to cart", "Save", "Follow"],
             "HIGH": ["Place order", "Delete account", "Send message"]}
    rows = [{"id": f"w{i}-{level}-{j}", "website": f"site{i}", "url": f"https://site{i}.example.com/p",
             "action": "CLICK", "target_text": t, "tag_head": "button", "page_title": "Page", "task": None,
             "risk": level, "split": split}
            for i, split in ((0, "train"), (1, "train"), (2, "train"), (3, "train"), (4, "test"))
            for level, texts in verbs.items() for j, t in enumerate(texts)]
    _write(root / "webguard", rows)
    for name in ("rjudge", "assebench_security"):
        _write(root / name, [{"id": f"{name}-{i}", "source": name, "profile": "", "unsafe": i % 2 == 0,
                              "split": "train" if i < 24 else "test",
                              "trajectory": [{"role": "user", "content": f"task {i}"},
                                             {"role": "agent", "action": "rm -rf /" if i % 2 == 0 else "ls"}]}
                             for i in range(30)])
    return root


def test_eval_reports_three_level_metrics_and_trajectory_f1(tmp_path):
    from railguard.eval import runner as eval_runner

    data = _tiny_data(tmp_path / "data")
    run = eval_runner.run(["agent"], ["webguard", "rjudge"], data, progress=False, latency_samples=0)
    names = {(r.benchmark, r.task) for r in run.results}
    assert ("webguard", "action_high") in names and ("rjudge", "trajectory_unsafe") in names
    (detail,) = run.details
    assert detail["n"] == 9 and len(detail["confusion"]) == 3 and 0.0 <= detail["accuracy"] <= 1.0
    skipped = eval_runner.run(["fake"], ["webguard"], data, progress=False, latency_samples=0)
    assert not skipped.results or all(r.errors == r.n for r in skipped.results)


@pytest.mark.slow
def test_training_writes_loadable_heads(tmp_path):
    from railguard.train.agent import train_action_risk, train_trajectory

    data, out = _tiny_data(tmp_path / "data"), tmp_path / "model"
    train_action_risk(data, out, progress=False)
    manifest = train_trajectory(data, out, progress=False)
    assert {"action", "trajectory"} <= set(manifest) and {"action.npz", "trajectory.npz"} <= set(manifest["files"])
    guard = railguard.load_guard(f"agent:{out}")
    v = guard.check([GuardInput(action=Action("click", target="Place order"), trajectory=[{"role": "user",
                                                                                           "content": "hi"}])])[0]
    assert v.action_risk in RISK_LEVELS and v.trajectory_unsafe is not None
