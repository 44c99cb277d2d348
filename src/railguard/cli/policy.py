"""``railguard policy``: the shipped presets and policy files."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import Group

app = typer.Typer(cls=Group, help="Show policy presets and files.", no_args_is_help=True)


@app.command("show")
def policy_show(
    name: Annotated[str, typer.Argument(help="a preset (default, strict, permissive, children, enterprise) "
                                             "or a YAML policy file")],
    raw: Annotated[bool, typer.Option("--raw", help="print the preset's file as written, not merged")] = False,
) -> None:
    """Print a policy with everything it extends merged in (as YAML), after validating it."""
    import yaml

    from ..policy import PRESETS, load_policy, preset_text

    policy = load_policy(name)
    if raw and name in PRESETS:
        typer.echo(preset_text(name), nl=False)
        return
    typer.echo(f"# policy {policy.name}")
    typer.echo(yaml.safe_dump(policy.to_dict(), sort_keys=False, allow_unicode=True, width=110,
                              default_flow_style=None), nl=False)


@app.command("list")
def policy_list() -> None:
    """List the shipped presets."""
    from ..policy import PRESETS, load_policy

    for name in PRESETS:
        typer.echo(f"{name:<11} {load_policy(name).description}")
