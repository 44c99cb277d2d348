"""The agent heads' training rows: one adapter per agent source, grouped held-out splits, deduplication.

Every source says in :data:`ACTION_SOURCES` / :data:`TRAJECTORY_SOURCES` what its rows become, how far its
labels can be trusted (``reliability``, a row weight), how many of its rows are kept (``cap``, drawn evenly
across its groups so that one source, or one scenario of it, does not dominate) and what a *group* is (a
website, a toolkit, a task, a scenario): the held-out part of a source is a set of whole groups, so its
figures measure unseen websites and tools.

What the labels mean differs by source (see each SOURCE.md in the data folder). WebGuard grades the
consequence of one click (SAFE / LOW / HIGH) by hand. Most other sets say HIGH because of how the benchmark is
organised (an attacker's goal, a scenario that should be refused, a templated leaking step), not because
someone judged the row, so they weigh less; ToolEmu's and OpenAgentSafety's trajectories carry a grader's
per-row label and weigh most among the new ones. The non-commercial sets (AgentDAM, WASP) are left out of
what ships (:data:`NON_COMMERCIAL`).

Splits: a source with its own train/test split keeps it and only its train rows are read; a source that is all
one split is cut by group, a seeded :data:`HELDOUT_SHARE` of its groups held out. Training rows are dropped when
they match a row of a test split (WebGuard, R-Judge, ASSEBench): a row of another source when its instruction
starts like a test row's (:data:`DEDUP_PREFIX` normalised characters; R-Judge took some of its cases from
ToolEmu), a train row of a split source when it is the same action or trajectory as one of its test rows (R-Judge
and ASSEBench reuse an instruction across many trajectories of both splits, each judged on what the agent did).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..agent.actions import RISK_LEVELS, Action, Turn
from ..datasets.agent import parse_field, read_turns, webguard_action
from .data import norm_key, read_rows

HELDOUT_SHARE = 0.2
#: A training instruction matching a test row on its first this-many normalised characters is dropped.
DEDUP_PREFIX = 100
NON_COMMERCIAL: frozenset[str] = frozenset({"agent_agentdam", "agent_wasp"})
@dataclass(frozen=True, slots=True)
class ActionRow:
    """One proposed action with its risk level (an index into RISK_LEVELS)."""

    action: Action
    level: int
    source: str
    group: str
    weight: float
    split: str  # "train" or "heldout"
    key: str  # what is compared with the test splits


@dataclass(frozen=True, slots=True)
class TrajectoryRow:
    """One trajectory and whether it is unsafe."""

    turns: tuple[Turn, ...]
    profile: str | None
    unsafe: bool
    source: str
    group: str
    weight: float
    split: str
    key: str


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """How one source feeds a head: its reader, label reliability, row cap and grouping."""

    read: Callable[[dict], Any]  # row -> (item, label, group, key) or None
    reliability: float
    cap: int | None = None


def _after(text: str, marker: str) -> str:
    return text.split(marker, 1)[1].strip() if marker in text else text


def _bracket(text: str) -> str:
    """``[suite] ...`` -> suite."""
    m = re.match(r"\s*\[([^\]]+)\]", text or "")
    return m.group(1) if m else "?"


def _tool_action(tool: str | None, arguments: str, task: str | None = None) -> Action:
    return Action("tool_call", tool=(tool or "agent").strip() or "agent", arguments=arguments[:4000] or None,
                  task=(task or None) and task[:1000])


# ---- action sources: row -> (Action, level name, group, key) or None -------------------------------------------

def webguard_key(row: dict) -> str:
    return norm_key(f"{row.get('target_text') or ''} {row.get('url') or ''}")


def _webguard(row: dict):
    return webguard_action(row), row["risk"], row.get("website") or row.get("domain") or "?", webguard_key(row)


_ST_TASK = re.compile(r"During task '(.*?)': ", re.S)
_ST_KEEP = ("irreversible_actions", "jailbreaking", "sensitive_information", "ask_the_user", "access_management")


def _st_webagentbench(row: dict):
    """The violating step of a policy, as the click or typing it is; navigation limits are left out (visiting
    a URL is harmless unless a site's own policy says otherwise, which an action alone does not show)."""
    if row.get("risk") != "HIGH" or not any(k in (row.get("category") or "") for k in _ST_KEEP):
        return None
    args = parse_field(row.get("arguments")) or {}
    m = _ST_TASK.match(row.get("action_description") or "")
    task = m.group(1) if m else None
    if "sensitive_information" in row["category"]:
        value = args.get("value") if isinstance(args, dict) else None
        if not value:
            return None
        action = Action("type", target="Message", text=str(value), task=task)
    else:
        text = (args.get("element_text") or args.get("action")) if isinstance(args, dict) else None
        if not text:
            return None
        action = Action("click", target=str(text).split("|OR|")[0].strip(), task=task)
    return action, "HIGH", row["id"].split("-")[1], norm_key(task or "")


def _toolemu_case(row: dict):
    text = row.get("action_description") or ""
    task = _after(text.split(" | Proposed agent behaviour:")[0], "User instruction:")
    behaviour = _after(text, "Proposed agent behaviour:")
    return _tool_action(row.get("tool"), behaviour, task), row["risk"], row.get("tool") or "?", norm_key(task)


def _asb(row: dict):
    text = row.get("action_description") or ""
    body = re.sub(r"^\s*\[[^\]]+\]\s*", "", text)
    body = _after(_after(body, "Injected/attacker instruction:"), "User task:")
    return _tool_action(row.get("tool"), body), row["risk"], _bracket(text), norm_key(body)


def _redcode(row: dict):
    text = row.get("action_description") or ""
    return _tool_action(row.get("tool"), text), "HIGH", row.get("category") or "?", norm_key(text)


def _instruction_rows(row: dict):
    """A task or an attacker's goal as the step that carries it out (AgentDojo, SafeAgentBench)."""
    if row.get("risk") not in RISK_LEVELS:
        return None
    text = row.get("action_description") or ""
    body = re.sub(r"^\s*\[[^\]]+\]\s*", "", text)
    for marker in ("Injected instruction (attacker goal):", "User task:", "Embodied household agent instruction:"):
        body = _after(body, marker)
    args = parse_field(row.get("arguments"))
    if row.get("source") == "SafeAgentBench":
        plan = args.get("plan") if isinstance(args, dict) else None
        tool, group = "household_robot", (args.get("scene") if isinstance(args, dict) else None) or "?"
        body = body + (f" | plan: {', '.join(map(str, plan))}" if plan else "")
    else:
        tool, group = _bracket(text), _bracket(text)
    return _tool_action(tool, body), row["risk"], group, norm_key(body)


def _agent_safetybench(row: dict):
    if row.get("kind") != "action" or row.get("risk") not in RISK_LEVELS:
        return None
    args = parse_field(row.get("arguments"))
    envs = args.get("environments") if isinstance(args, dict) else None
    env = envs[0].get("name") if envs and isinstance(envs[0], dict) else ""
    text = row.get("action_description") or ""
    return _tool_action(row.get("tool") or env or "agent", text), row["risk"], env or "none", norm_key(text)


def _riosworld(row: dict):
    if row.get("risk") != "HIGH":
        return None
    text = row.get("action_description") or ""
    return _tool_action("computer", text), "HIGH", row.get("category") or "?", norm_key(text)


def _toolsword(row: dict):
    if row.get("kind") != "action" or row.get("risk") != "HIGH":
        return None
    text = _after(row.get("action_description") or "", "User query to tool-using agent:")
    return (_tool_action("agent", text), "HIGH", f"{row.get('category')}-{row['id'].rsplit('-', 1)[-1][:-1] or '0'}",
            norm_key(text))


# ---- trajectory sources: row -> ((turns, profile), unsafe, group, key) or None --------------------------------

def first_user_key(turns: Iterable[Turn]) -> str:
    """What a trajectory is deduplicated on: the normalised start of its first user turn."""
    return next((norm_key(t.content or "")[:DEDUP_PREFIX] for t in turns if t.role == "user" and t.content), "")


def _trajectory(row: dict):
    """R-Judge and ASSEBench (their own schema: ``unsafe``, ``profile``, a scenario)."""
    if row.get("unsafe") is None:
        return None
    turns = read_turns(row.get("trajectory"))
    key = first_user_key(turns)  # also its group: the many trajectories of one instruction stay together
    return (turns, row.get("profile")), bool(row["unsafe"]), key, key


def _graded_trajectory(row: dict):
    """ToolEmu and OpenAgentSafety trajectories: a grader's label per row; grouped by case/task."""
    if row.get("kind") != "trajectory" or row.get("unsafe") is None:
        return None
    turns = read_turns(row.get("trajectory"))
    return (turns, None), bool(row["unsafe"]), row.get("category") or "?", first_user_key(turns)


_PROPOSED = re.compile(r"^Proposed final action (\w+): include the following in the output: (.*)$", re.S)


def _privacylens(row: dict):
    """A leaking final step (unsafe) and the same case stopped before it (not unsafe yet). The templated last
    turn is rewritten as the agent's tool call it stands for, so its wording is no shortcut."""
    turns = list(read_turns(row.get("trajectory")))
    leak = row["id"].endswith("-leak")
    if leak and turns:
        m = _PROPOSED.match(turns[-1].content or "")
        if m:
            turns[-1] = Turn("agent", action=f"{m.group(1)} {json.dumps({'content': m.group(2)}, ensure_ascii=False)}")
    if not turns:
        return None
    return (tuple(turns), None), leak, row["id"].split("-")[1], first_user_key(turns)


def _agent_safetybench_trajectory(row: dict):
    if row.get("kind") != "trajectory" or row.get("unsafe") is None:
        return None
    turns = read_turns(row.get("trajectory"))
    return (turns, None), bool(row["unsafe"]), row.get("category") or "?", first_user_key(turns)


#: Action-risk sources. WebGuard is the per-row hand label the rubric comes from.
ACTION_SOURCES: dict[str, SourceSpec] = {
    "webguard": SourceSpec(_webguard, 1.0),
    "agent_st_webagentbench": SourceSpec(_st_webagentbench, 0.4, cap=300),
    "agent_toolemu_cases": SourceSpec(_toolemu_case, 0.6),
    "agent_agent_safetybench": SourceSpec(_agent_safetybench, 0.4, cap=400),
    "agent_asb": SourceSpec(_asb, 0.4, cap=250),
    "agent_redcode": SourceSpec(_redcode, 0.3, cap=250),
    "agent_agentdojo_tasks": SourceSpec(_instruction_rows, 0.4),
    "agent_safeagentbench": SourceSpec(_instruction_rows, 0.3, cap=300),
    "agent_riosworld": SourceSpec(_riosworld, 0.2, cap=150),
    "agent_toolsword": SourceSpec(_toolsword, 0.2, cap=150),
}
#: Trajectory sources. R-Judge and ASSEBench are hand-labelled; ToolEmu / OpenAgentSafety carry a grader's label.
TRAJECTORY_SOURCES: dict[str, SourceSpec] = {
    "rjudge": SourceSpec(_trajectory, 1.0),
    "assebench_security": SourceSpec(_trajectory, 1.0),
    "agent_toolemu_trajectories": SourceSpec(_graded_trajectory, 0.6, cap=800),
    "agent_openagentsafety": SourceSpec(_graded_trajectory, 0.6, cap=500),
    "agent_privacylens": SourceSpec(_privacylens, 0.3, cap=400),
    "agent_agent_safetybench": SourceSpec(_agent_safetybench_trajectory, 0.3),
}
#: The test splits every training row is deduplicated against.
TEST_SPLITS: tuple[str, ...] = ("webguard", "rjudge", "assebench_security")


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def heldout_groups(source: str, groups: Iterable[str], share: float = HELDOUT_SHARE) -> set[str]:
    """A seeded ``share`` of a source's groups (at least one of two or more): its held-out part."""
    ordered = sorted(set(groups), key=lambda g: _stable(f"{source}\x00{g}"))
    if len(ordered) < 2:
        return set()
    return set(ordered[: max(1, round(share * len(ordered)))])


def _cap(items: list, groups: list[str], cap: int | None, source: str) -> list[int]:
    """Indices of at most ``cap`` items, taken round-robin over groups (in a seeded order)."""
    order = sorted(range(len(items)), key=lambda i: _stable(f"{source}\x00{i}"))
    if cap is None or len(items) <= cap:
        return sorted(order)
    by_group: dict[str, list[int]] = defaultdict(list)
    for i in order:
        by_group[groups[i]].append(i)
    queues = [by_group[g] for g in sorted(by_group, key=lambda g: _stable(g))]
    picked: list[int] = []
    while len(picked) < cap:
        for q in queues:
            if q and len(picked) < cap:
                picked.append(q.pop())
    return sorted(picked)


@dataclass(frozen=True, slots=True)
class EvalKeys:
    """What training rows are compared with: the test rows' whole keys and their instructions' starts."""

    whole: frozenset[str]
    starts: frozenset[str]

    def clash(self, key: str, own_split: bool) -> bool:
        return key in self.whole if own_split else key[:DEDUP_PREFIX] in self.starts


def eval_keys(data_dir: Path) -> EvalKeys:
    """The keys of every test split's rows: WebGuard actions (and tasks), R-Judge / ASSEBench trajectories."""
    whole: set[str] = set()
    starts: set[str] = set()
    for name in present(data_dir, TEST_SPLITS):
        for row in read_rows(data_dir, name):
            if row.get("split") != "test":
                continue
            if name == "webguard":
                whole.add(webguard_key(row))
                starts.update({webguard_key(row)[:DEDUP_PREFIX], norm_key(row.get("task") or "")[:DEDUP_PREFIX]})
            else:
                turns = read_turns(row.get("trajectory"))
                whole.add(trajectory_key(turns))
                starts.add(first_user_key(turns))
    return EvalKeys(frozenset(whole - {""}), frozenset(starts - {""}))


def trajectory_key(turns: Iterable[Turn]) -> str:
    return norm_key(" ".join(t.text() for t in turns))


def _read_source(data_dir: Path, name: str, spec: SourceSpec, tests: EvalKeys) -> list[tuple]:
    """(item, label, group, key, split) of one source's usable rows, capped, deduplicated, split."""
    rows = read_rows(data_dir, name)
    has_split = {r.get("split") for r in rows} >= {"train", "test"}
    parsed = []
    for r in rows:
        if has_split and r.get("split") != "train":
            continue
        got = spec.read(r)
        if got is None or not got[3]:
            continue
        whole = trajectory_key(got[0][0]) if isinstance(got[0], tuple) else got[3]
        if tests.clash(whole if has_split else got[3], has_split):
            continue
        parsed.append(got)
    held = set() if has_split else heldout_groups(name, (p[2] for p in parsed))
    keep = _cap(parsed, [p[2] for p in parsed], spec.cap, name)
    return [(*parsed[i], "heldout" if parsed[i][2] in held else "train") for i in keep]


def present(data_dir: Path, names: Iterable[str]) -> tuple[str, ...]:
    """Those of ``names`` the data folder holds (a missing optional source is not an error)."""
    return tuple(n for n in names if (Path(data_dir) / n / "data.jsonl.gz").is_file())


def action_rows(data_dir: Path, sources: Iterable[str] | None = None,
                tests: EvalKeys | None = None) -> list[ActionRow]:
    """Labelled action rows of ``sources`` (default: every action source), each tagged train or heldout."""
    tests = eval_keys(data_dir) if tests is None else tests
    out = []
    for name in sources or ACTION_SOURCES:
        spec = ACTION_SOURCES[name]
        for action, level, group, key, split in _read_source(data_dir, name, spec, tests):
            out.append(ActionRow(action, RISK_LEVELS.index(level), name, f"{name}:{group}", spec.reliability, split,
                                 key))
    return out


def trajectory_rows(data_dir: Path, sources: Iterable[str] | None = None,
                    tests: EvalKeys | None = None) -> list[TrajectoryRow]:
    """Labelled trajectory rows of ``sources`` (default: every trajectory source), tagged train or heldout."""
    tests = eval_keys(data_dir) if tests is None else tests
    out = []
    for name in sources or TRAJECTORY_SOURCES:
        spec = TRAJECTORY_SOURCES[name]
        for (turns, profile), unsafe, group, key, split in _read_source(data_dir, name, spec, tests):
            if turns:
                out.append(TrajectoryRow(turns, profile, unsafe, name, f"{name}:{group}", spec.reliability, split, key))
    return out
