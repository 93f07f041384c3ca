"""The `adfd` application: registers each command and maps outcomes to exit codes.

Exit codes: 0 success; 1 error; 2 usage error; 3 finished but some inputs failed;
130 interrupted (a rerun resumes). ``ADFD_DEBUG=1`` shows tracebacks of unexpected errors.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import typer

from adfd_cli.commands.bundle import bundle
from adfd_cli.commands.completions import completions
from adfd_cli.commands.evaluate import evaluate
from adfd_cli.commands.explain import explain
from adfd_cli.commands.featurize import featurize
from adfd_cli.commands.fuse import fuse
from adfd_cli.commands.info import info
from adfd_cli.commands.models import models
from adfd_cli.commands.score import score
from adfd_cli.commands.split import split
from adfd_cli.commands.train import train
from adfd_cli.options import EXIT_CODES_HELP
from adfd_cli.process import keep_freed_memory, quick_exit

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
app.command("evaluate", epilog=EXIT_CODES_HELP)(evaluate)
app.command("score", epilog=EXIT_CODES_HELP)(score)
app.command("explain", epilog=EXIT_CODES_HELP)(explain)
app.command("info", epilog=EXIT_CODES_HELP)(info)
app.command("models", epilog=EXIT_CODES_HELP)(models)
app.command("completions", epilog=EXIT_CODES_HELP)(completions)


EXIT_INTERRUPTED = 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _log_to_stderr() -> None:
    """Core modules log through `logging`; show their INFO and above on the stderr console."""
    from rich.logging import RichHandler

    from adfd_cli.console import err

    handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("adfd_core")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app and exit with the documented code."""
    from adfd_core.errors import AdfdError

    signal.signal(signal.SIGTERM, _interrupt)
    _log_to_stderr()
    try:
        code = app(args=argv, prog_name="adfd", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        code = EXIT_INTERRUPTED
    except typer.TyperException as exc:  # usage errors: typer shows them with the command's usage line
        exc.show()
        sys.exit(exc.exit_code)
    except AdfdError as exc:
        print(f"adfd: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:  # a bug: one line unless debugging
        if os.environ.get("ADFD_DEBUG"):
            raise
        print(f"adfd: internal error: {type(exc).__name__}: {exc} (rerun with ADFD_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(1)
    if code == EXIT_INTERRUPTED:  # typer reports Ctrl-C as this return value, not as an exception
        print("adfd: interrupted; work committed so far is kept: rerun the same command to resume (train: add --resume)", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)


def main() -> None:
    """The `adfd` executable: ``run`` with glibc's allocator set for big tensors, and a quick exit."""
    keep_freed_memory()
    try:
        run()
    except SystemExit as done:
        code = done.code
    if isinstance(code, str):  # sys.exit's convention: a message means failure
        print(code, file=sys.stderr)
    quick_exit(code if isinstance(code, int) else int(code is not None))
