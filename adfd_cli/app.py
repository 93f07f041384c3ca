"""The `adfd` typer application: each command registered explicitly (``adfd_cli.main`` runs it).

Every command gets --quiet and --verbose (adfd_cli.verbosity), stops quietly when stdout's reader
leaves (adfd_cli.pipes), and has a help that ends with the exit
codes and examples (adfd_cli.help_text); -h is --help, and `adfd --version` prints the version.
"""

from __future__ import annotations

from typing import Annotated

import typer

from adfd_cli.commands.bundle import bundle
from adfd_cli.commands.completions import completions
from adfd_cli.commands.evaluate import evaluate
from adfd_cli.commands.explain import explain
from adfd_cli.commands.featurize import featurize
from adfd_cli.commands.fuse import fuse
from adfd_cli.commands.info import info
from adfd_cli.commands.merge import merge
from adfd_cli.commands.models import models
from adfd_cli.commands.score import score
from adfd_cli.commands.split import split
from adfd_cli.commands.train import train
from adfd_cli.help_text import epilog
from adfd_cli.options import EXIT_CODES_HELP
from adfd_cli.pipes import closed_pipe_stops
from adfd_cli.verbosity import with_verbosity

app = typer.Typer(
    name="adfd",
    help=f"Audio deepfake detection: featurize corpora, train detectors, score recordings.\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from adfd_core import __version__

        print(f"adfd {__version__}")
        raise typer.Exit(0)


@app.callback()
def _adfd(
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print adfd's version and exit.")
    ] = False,
) -> None:
    """Audio deepfake detection: featurize corpora, train detectors, score recordings."""


for _name, _command in (
    ("featurize", featurize), ("split", split), ("train", train), ("bundle", bundle), ("fuse", fuse), ("merge", merge),
    ("evaluate", evaluate), ("score", score), ("explain", explain), ("info", info), ("models", models), ("completions", completions),
):
    app.command(_name, epilog=epilog(_name))(with_verbosity(closed_pipe_stops(_command)))
