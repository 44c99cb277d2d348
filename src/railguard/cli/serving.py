"""``serve``, ``mcp`` and ``mcp-gateway``: railguard as a server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from .. import load_guard
from .common import GuardName, PolicyOption, import_extra


class ServeCommand(TyperCommand):
    """``serve --help`` lists every server setting; read from the settings model when help is asked for."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        try:
            from ..server.settings import setting_help

            lines = [f"{env}  {desc} (default {default})" for env, default, desc in setting_help()]
            self.epilog = ("Settings: environment variables, or the same names in lower case without the prefix "
                           "as keys of --config FILE (.yaml or .toml):\n\n\b\n" + "\n".join(lines))
        except ImportError:
            self.epilog = "The server needs its extra: pip install 'railguard[server]'"
        super().format_help(ctx, formatter)


def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8000)")] = None,
    guard: Annotated[str | None, typer.Option("--guard", help="guard to serve (default embedded)")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML or TOML file with server settings")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="server processes (default 1)")] = None,
    upstream: Annotated[str | None, typer.Option(
        "--upstream", help="OpenAI-compatible LLM API to guard, e.g. http://localhost:8080/v1: adds the "
                           "guarding proxy /v1/chat/completions")] = None,
    policy: Annotated[str | None, typer.Option(
        "--policy", help="policy preset (strict, children, ...) or YAML file for the served guard")] = None,
) -> None:
    """Run the moderation server: OpenAI-compatible /v1/moderations, native /v1/guard, audit log; with
    --upstream also a guarding proxy for chat completions."""
    settings_module = import_extra("railguard.server.settings", "server")
    run = import_extra("railguard.server.run", "server")
    settings = settings_module.ServerSettings.load(config, host=host, port=port, guard=guard, workers=workers,
                                                   upstream_url=upstream, policy=policy)
    run.serve(settings)


def mcp_server(guard: GuardName = "default", policy: PolicyOption = None) -> None:
    """Serve railguard to MCP clients on stdio: tools moderate, check_action and redact (needs the mcp extra;
    redact also the pii extra)."""
    integration = import_extra("railguard.integrations.mcp", "mcp")
    integration.serve_guard(load_guard(guard, policy=policy), policy=policy)


def mcp_gateway(
    command: Annotated[list[str], typer.Argument(help="the MCP server to guard and its arguments, after --, e.g. "
                                                      "railguard mcp-gateway -- npx @modelcontextprotocol/server-everything")],
    guard: GuardName = "default",
    policy: PolicyOption = None,
) -> None:
    """Guard another MCP server (stdio): tools whose descriptions hide instructions are left out, tool results that
    hold prompt injections are withheld, or both annotated where the policy flags (needs the mcp extra)."""
    integration = import_extra("railguard.integrations.mcp", "mcp")
    import anyio

    g = load_guard(guard, policy=policy)
    anyio.run(integration.run_gateway, g, command)
