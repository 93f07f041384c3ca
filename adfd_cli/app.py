"""The `adfd` typer application: each command registered explicitly (``adfd_cli.main`` runs it)."""

from __future__ import annotations

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
from adfd_cli.options import EXIT_CODES_HELP

app = typer.Typer(
    name="adfd",
    help=f"Audio deepfake detection: featurize corpora, train detectors, score recordings.\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("featurize", epilog=EXIT_CODES_HELP)(featurize)
app.command("split", epilog=EXIT_CODES_HELP)(split)
app.command("train", epilog=EXIT_CODES_HELP)(train)
app.command("bundle", epilog=EXIT_CODES_HELP)(bundle)
app.command("fuse", epilog=EXIT_CODES_HELP)(fuse)
app.command("merge", epilog=EXIT_CODES_HELP)(merge)
app.command("evaluate", epilog=EXIT_CODES_HELP)(evaluate)
app.command("score", epilog=EXIT_CODES_HELP)(score)
app.command("explain", epilog=EXIT_CODES_HELP)(explain)
app.command("info", epilog=EXIT_CODES_HELP)(info)
app.command("models", epilog=EXIT_CODES_HELP)(models)
app.command("completions", epilog=EXIT_CODES_HELP)(completions)
