"""A plain-Python tool-calling loop guarded by railguard: HIGH-risk actions are blocked, LOW-risk ones
need the user's confirmation, SAFE ones run. No framework, no network: the "model" here is a scripted list
of the tool calls an LLM agent might propose, and the tools are stubs.

    python examples/agent_loop.py            # asks before LOW actions (answers 'no' when not a terminal)
    python examples/agent_loop.py --yes      # confirms every LOW action
"""

from __future__ import annotations

import argparse
import sys

import railguard
from railguard import Action, GuardInput

# What an LLM agent proposes, step by step, for "tidy up my downloads and tell Ann the report is ready".
PROPOSED = [
    Action("tool_call", tool="list_files", arguments={"path": "~/Downloads"}),
    Action("tool_call", tool="shell", arguments={"cmd": "mkdir -p ~/Downloads/old"}),
    Action("tool_call", tool="shell", arguments={"cmd": "rm -rf ~/Downloads"}),
    Action("tool_call", tool="send_email", arguments={"to": "ann@example.com", "subject": "Report ready"}),
    Action("click", target="Place order", url="https://shop.example.com/checkout", element_tag="button"),
    Action("click", target="Next page", url="https://news.example.org/world", element_tag="a"),
]

TOOLS = {  # stubs: what would really run
    "list_files": lambda args: "report.pdf, setup.exe, photo.jpg",
    "shell": lambda args: f"ran {args}",
    "send_email": lambda args: "sent",
}


def run_tool(action: Action) -> str:
    if action.kind == "tool_call":
        return TOOLS.get(action.tool, lambda args: "unknown tool")(action.arguments)
    return f"{action.kind} on {action.target!r} done"


def ask(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print(f"  {question} [y/N] n (not a terminal)")
        return False
    return input(f"  {question} [y/N] ").strip().lower() in ("y", "yes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yes", action="store_true", help="confirm every LOW-risk action")
    parser.add_argument("--policy", help="a policy preset or YAML file (its agent: section adds rules)")
    args = parser.parse_args(argv)

    guard = railguard.load_guard("agent", policy=args.policy)
    task = "Tidy up my downloads and tell Ann the report is ready"
    ran = blocked = 0
    for proposed in PROPOSED:
        action = Action(**{**proposed.to_dict(), "task": task})
        verdict = guard.check([GuardInput(action=action)])[0]
        label = action.tool or action.target
        rules = [r.rule.rsplit(".", 1)[-1] for r in verdict.explanation or () if r.rule.startswith("agent.rules.")]
        why = f" (rules: {', '.join(rules)})" if rules else ""
        print(f"{verdict.action_risk:<4} {action.kind} {label} {action.arguments or ''}{why}")
        if verdict.action == "block":
            print("  blocked")
            blocked += 1
            continue
        if verdict.action == "flag" and not ask(f"allow {label}?", args.yes):
            print("  skipped")
            continue
        print(f"  -> {run_tool(action)}")
        ran += 1
    print(f"{ran} actions ran, {blocked} blocked")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
