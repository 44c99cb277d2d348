"""The ``railguard`` command: parses arguments, calls the library, prints. No model logic lives here.

Every RailguardError (and every unreadable path) ends the command with one line ``error: <message>`` on
stderr and exit code 2, never a traceback. One module per topic; this one puts the commands together, in the order
``railguard --help`` lists them.
"""

from __future__ import annotations

import typer

from . import audit, checking, evaluation, feedback, info, policy, serving, training
from .common import EXIT_ERROR, Group

__all__ = ["EXIT_ERROR", "app"]

app = typer.Typer(
    cls=Group,
    help="Offline, CPU-fast guardrails: harm, refusal, jailbreak and prompt-injection checks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals would print the user's prompts
)

app.command()(checking.check)
app.command()(checking.moderate)
app.command()(training.train)
app.command(name="eval")(evaluation.evaluate)
app.command(name="model-card")(evaluation.model_card)
app.command()(info.info)
app.command(cls=serving.ServeCommand)(serving.serve)
app.command()(checking.redact)
app.command(name="check-action")(checking.check_action)
app.command()(training.improve)
app.command(name="mcp")(serving.mcp_server)
app.command(name="mcp-gateway")(serving.mcp_gateway)
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.add_typer(feedback.app, name="feedback")
