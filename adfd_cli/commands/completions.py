"""`adfd completions`: print a shell completion script generated from this app."""

from __future__ import annotations

from typing import Annotated

import typer


def completions(shell: Annotated[str, typer.Argument(help="bash, zsh or fish.")]) -> int:
    """Print the completion script for SHELL (bash: `source <(adfd completions bash)`)."""
    from adfd_cli.completion_scripts import SHELLS, render
    from adfd_cli.app import app

    if shell not in SHELLS:
        raise typer.BadParameter(f"unknown shell {shell!r}; choose from {', '.join(SHELLS)}", param_hint="SHELL")
    print(render(shell, typer.main.get_command(app)), end="")
    return 0
