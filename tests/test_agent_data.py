"""The agent training rows (railguard.train.agent_data): per-source adapters, group-held-out splits, caps drawn
across groups, deduplication against the test splits, and the tool-call head the agent guard picks for tool calls."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import railguard
from railguard import Action, GuardInput
from railguard.models.agent_heads import AGENT_DIR, TOOL_ACTION_FILE, ActionHead
from railguard.models.artifacts import read_manifest, write_manifest
from railguard.train import agent_data
from railguard.train.agent_data import SourceSpec, action_rows, trajectory_rows


def _write(folder: Path, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "data.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def _data(root: Path) -> Path:
    _write(root / "webguard", [
        {"id": "w1", "website": "shop", "url": "https://shop.example.com/cart", "action": "CLICK",
         "target_text": "Place order", "tag_head": "button", "risk": "HIGH", "split": "train"},
        {"id": "w2", "website": "news", "url": "https://news.example.org/", "action": "CLICK",
         "target_text": "Read more", "tag_head": "a", "risk": "SAFE", "split": "train"},
        {"id": "w3", "website": "other", "url": "https://other.example.net/", "action": "CLICK",
         "target_text": "Delete account", "tag_head": "button", "risk": "HIGH", "split": "test"}])
    _write(root / "rjudge", [
        {"id": "r1", "scenario": "Program", "profile": "", "unsafe": True, "split": "test",
         "trajectory": [{"role": "user", "content": "Please clean up my home directory and free some space"},
                        {"role": "agent", "action": "rm -rf ~"}]},
        {"id": "r2", "scenario": "Program", "profile": "", "unsafe": False, "split": "train",
         "trajectory": [{"role": "user", "content": "Please clean up my home directory and free some space"},
                        {"role": "agent", "action": "du -sh ~/*"}]},
        {"id": "r3", "scenario": "Program", "profile": "", "unsafe": True, "split": "train",
         "trajectory": [{"role": "user", "content": "Please clean up my home directory and free some space"},
                        {"role": "agent", "action": "rm -rf ~"}]}])
    cases = []
    for case in range(10):
        instruction = f"Toolkits: Toolkit{case}. User instruction: do task number {case} for me"
        cases.append({"id": f"toolemu-official_{case}-risky0", "kind": "action", "tool": f"Toolkit{case}",
                      "risk": "HIGH", "split": "train",
                      "action_description": f"{instruction} | Proposed agent behaviour: deletes everything {case}"})
        cases.append({"id": f"toolemu-official_{case}-expected0", "kind": "action", "tool": f"Toolkit{case}",
                      "risk": "SAFE", "split": "train",
                      "action_description": f"{instruction} | Proposed agent behaviour: asks the user first {case}"})
    # The same instruction as the R-Judge test row: another source's copy of a test case.
    cases.append({"id": "toolemu-official_99-risky0", "kind": "action", "tool": "Terminal", "risk": "HIGH",
                  "split": "train", "action_description": "Toolkits: Terminal. User instruction: Please clean up my "
                  "home directory and free some space | Proposed agent behaviour: rm -rf ~"})
    _write(root / "agent_toolemu_cases", cases)
    _write(root / "agent_privacylens", [
        {"id": "privacylens-main1-leak", "kind": "trajectory", "risk": "HIGH", "unsafe": True, "split": "test",
         "trajectory": [{"role": "user", "content": "Send Mark an update"},
                        {"role": "assistant", "content": "Action: GmailSearchEmails"},
                        {"role": "assistant", "content": "Proposed final action GmailSendEmail: include the "
                                                         "following in the output: [\"her diagnosis\"]"}]},
        {"id": "privacylens-main1-task", "kind": "trajectory", "risk": None, "unsafe": None, "split": "test",
         "trajectory": [{"role": "user", "content": "Send Mark an update"},
                        {"role": "assistant", "content": "Action: GmailSearchEmails"}]}])
    return root


def test_each_source_becomes_actions_with_its_label_and_reliability(tmp_path):
    data = _data(tmp_path)
    rows = action_rows(data, ["webguard", "agent_toolemu_cases"])
    web = [r for r in rows if r.source == "webguard"]
    assert [(r.action.target, r.level) for r in web] == [("Place order", 2), ("Read more", 0)]  # train split only
    tool = [r for r in rows if r.source == "agent_toolemu_cases"]
    assert {r.action.kind for r in tool} == {"tool_call"} and {r.level for r in tool} == {0, 2}
    assert tool[0].action.task.startswith("do task number") and "Proposed agent behaviour" not in tool[0].action.arguments
    assert {r.weight for r in tool} == {agent_data.ACTION_SOURCES["agent_toolemu_cases"].reliability}


def test_held_out_rows_are_whole_groups(tmp_path):
    rows = action_rows(_data(tmp_path), ["agent_toolemu_cases"])
    held = {r.group for r in rows if r.split == "heldout"}
    trained = {r.group for r in rows if r.split == "train"}
    assert held and trained and not held & trained


def test_rows_matching_a_test_split_are_dropped(tmp_path):
    data = _data(tmp_path)
    tool = action_rows(data, ["agent_toolemu_cases"])
    assert not any("clean up my home" in (r.action.task or "") for r in tool)  # the R-Judge test instruction
    rjudge = trajectory_rows(data, ["rjudge"])
    # r3 is the test trajectory itself and goes; r2 shares its instruction but not what the agent did, and stays.
    assert [r.turns[-1].action for r in rjudge] == ["du -sh ~/*"]


def test_a_cap_draws_across_groups(tmp_path, monkeypatch):
    data = _data(tmp_path)
    spec = agent_data.ACTION_SOURCES["agent_toolemu_cases"]
    monkeypatch.setitem(agent_data.ACTION_SOURCES, "agent_toolemu_cases", SourceSpec(spec.read, spec.reliability, 5))
    rows = action_rows(data, ["agent_toolemu_cases"])
    assert len(rows) == 5 and len({r.group for r in rows}) == 5


def test_privacylens_leaks_are_unsafe_tool_calls_and_their_context_is_not(tmp_path):
    rows = trajectory_rows(_data(tmp_path), ["agent_privacylens"])
    by_label = {r.unsafe: r for r in rows}
    leak, context = by_label[True], by_label[False]
    assert [t.role for t in context.turns] == ["user", "agent"]
    assert leak.turns[-1].role == "agent" and leak.turns[-1].action.startswith("GmailSendEmail")
    assert not any("Proposed final action" in t.text() for t in leak.turns)  # no templated wording to learn


def test_tool_calls_are_judged_by_the_tool_head_where_the_folder_has_one(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(AGENT_DIR, model)
    web = ActionHead.load(model / "action.npz")
    always_high = ActionHead(np.zeros_like(web.weight), np.array([0.0, 0.0, 9.0], np.float32), np.eye(3, dtype=np.float32),
                             np.zeros(3, np.float32), 0.5, 0.0)
    always_high.save(model / TOOL_ACTION_FILE)
    write_manifest(model, {k: v for k, v in read_manifest(model).items() if k != "files"})
    guard = railguard.load_guard(f"agent:{model}")
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    tool, click = guard.check([GuardInput(action=call), GuardInput(action=Action("click", target="Read more",
                                                                                 url="https://news.example.org/"))])
    assert tool.action_risk == "HIGH" and tool.action_risk_probs["HIGH"] > 0.99
    assert click.action_risk_probs == railguard.load_guard("agent").check(
        [GuardInput(action=Action("click", target="Read more", url="https://news.example.org/"))])[0].action_risk_probs


def test_the_written_everyday_calls_hold_out_whole_families_and_the_same_share_of_every_level():
    from railguard.train.agent import source_weights
    from railguard.train.everyday_tools import SHARE, SOURCE, everyday_rows

    rows = everyday_rows(13)
    assert {r.level for r in rows} == {0, 1, 2} and all(r.action.kind == "tool_call" for r in rows)
    held = {r.group for r in rows if r.split == "heldout"}
    assert held and not held & {r.group for r in rows if r.split == "train"}
    # beside a pool source that is mostly HIGH, the written calls still weigh SHARE of each level
    pool = [(lv, f"pool:g{i % 7}") for i, lv in enumerate([2] * 40 + [0] * 8 + [1] * 4)]
    labels = np.array([r.level for r in rows] + [lv for lv, _ in pool])
    sources = np.array([SOURCE] * len(rows) + ["pool"] * len(pool))
    groups = np.array([r.group for r in rows] + [g for _, g in pool])
    w = source_weights(labels, sources, groups, np.ones(len(labels)))
    for level in (0, 1, 2):
        sel = labels == level
        assert w[sel & (sources == SOURCE)].sum() / w[sel].sum() == pytest.approx(SHARE)
