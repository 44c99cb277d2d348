"""Agent benchmarks: WebGuard actions and R-Judge / ASSEBench trajectories as labelled GuardInputs, and the
three-level metrics (accuracy, macro-F1, HIGH recall and precision, confusion matrix) of action risk."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..agent.actions import RISK_LEVELS
from ..datasets.agent import trajectory_input, webguard_action
from ..errors import InputError
from ..types import GuardInput
from .items import Item
from .metrics import action_metrics


def webguard_item(row: dict):
    if row.get("split") != "test" or row.get("risk") not in RISK_LEVELS:
        return None
    return Item(GuardInput(action=webguard_action(row), id=row.get("id")), row["risk"] == "HIGH",
                (f"webguard:{row['risk']}",))


def trajectory_item(row: dict):
    if row.get("split") != "test" or row.get("unsafe") is None:
        return None
    turns, _ = trajectory_input(row)
    if not turns:
        return None
    try:
        return Item(GuardInput(trajectory=turns, id=row.get("id")), bool(row["unsafe"]))
    except InputError:
        return None  # longer than a guard accepts: not a fair test item


def action_details(items: list, verdicts: list) -> dict[str, Any]:
    """SAFE/LOW/HIGH metrics of the verdicts' ``action_risk`` against the rows' level."""
    truth, pred = [], []
    for it, v in zip(items, verdicts):
        group = next((g for g in it.groups if g.startswith("webguard:")), None)
        if group is None or v.action_risk not in RISK_LEVELS:
            continue
        truth.append(RISK_LEVELS.index(group.split(":", 1)[1]))
        pred.append(RISK_LEVELS.index(v.action_risk))
    return {"kind": "action_risk", "levels": list(RISK_LEVELS), **action_metrics(np.array(truth), np.array(pred))}


def details_markdown(details: list[dict]) -> str:
    """The three-level action-risk results as Markdown (one block per guard and benchmark)."""
    out = []
    for d in details:
        if d.get("kind") != "action_risk":
            continue
        out.append(f"\n**{d['guard']} on {d['benchmark']}** (n {d['n']}): accuracy {d['accuracy']:.3f}, "
                   f"macro-F1 {d['macro_f1']:.3f}, HIGH recall {d['high_recall']:.3f}, "
                   f"HIGH precision {d['high_precision']:.3f}\n")
        out.append("| true \\ predicted | " + " | ".join(d["levels"]) + " |")
        out.append("|---|" + "---:|" * len(d["levels"]))
        for level, row in zip(d["levels"], d["confusion"]):
            out.append(f"| {level} | " + " | ".join(str(int(x)) for x in row) + " |")
    return "\n".join(out) + ("\n" if out else "")
