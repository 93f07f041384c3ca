"""`adfd completions`: print a shell completion script generated from this app."""

from __future__ import annotations

from typing import Annotated

import typer

from adfd_cli.choices import one_of
from adfd_cli.completion_scripts import SHELLS


def completions(
    shell: Annotated[str, typer.Argument(metavar="SHELL", callback=one_of(SHELLS)["callback"], help="bash, zsh or fish.")],
) -> int:
    """Print the completion script for SHELL (bash: `source <(adfd completions bash)`)."""
    from adfd_cli.app import app
    from adfd_cli.completion_scripts import render

    print(render(shell, typer.main.get_command(app)), end="")
    return 0
