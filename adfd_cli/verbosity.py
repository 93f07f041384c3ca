"""How much the command line says on stderr: --quiet, --verbose, and where log records go.

    normal   messages, warnings, failed inputs and progress
    quiet    warnings and failed inputs only (errors always show)
    verbose  also the core's debug records, and the traceback of an unexpected error

Every command takes --quiet and --verbose (``with_verbosity`` adds them), so scripts need not
know which commands talk.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Annotated, Any

import typer

QUIET, NORMAL, VERBOSE = 0, 1, 2
_LOG_LEVELS = {QUIET: logging.WARNING, NORMAL: logging.INFO, VERBOSE: logging.DEBUG}
_level = NORMAL

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Say only warnings and errors on stderr: no progress, no summary.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Say more on stderr: debug messages, and tracebacks of unexpected errors.")]


def level() -> int:
    """The verbosity of this run: QUIET, NORMAL or VERBOSE."""
    return _level


def set_level(quiet: bool, verbose: bool) -> None:
    """Set the verbosity from the two flags (a usage error when both are given) and the core's log level."""
    global _level
    if quiet and verbose:
        raise typer.BadParameter("--quiet and --verbose ask for opposite things; give one", param_hint="--quiet")
    _level = QUIET if quiet else VERBOSE if verbose else NORMAL
    logging.getLogger("adfd_core").setLevel(_LOG_LEVELS[_level])
    from adfd_cli.console import err  # here, not at the top: the console module reads this one's level

    err.quiet = _level == QUIET


def with_verbosity(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with --quiet and --verbose added to its options; they set the verbosity and are not passed on."""
    signature = inspect.signature(command, eval_str=True)
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=False, annotation=kind)
             for name, kind in (("quiet", Quiet), ("verbose", Verbose))]

    @functools.wraps(command)
    def run(*args: Any, quiet: bool = False, verbose: bool = False, **kwargs: Any) -> Any:
        set_level(quiet, verbose)
        return command(*args, **kwargs)

    run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])
    run.__annotations__ = {**{p.name: p.annotation for p in signature.parameters.values()}, "quiet": Quiet, "verbose": Verbose}
    return run


class LineHandler(logging.Handler):
    """Log records as one line each on a rich console: the message, led by its level unless INFO.

    No padding, no wrapping, no columns: a log file reads ``warning: NAME: resuming after 120 utterances``.
    """

    def __init__(self, console):
        super().__init__()
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.levelno != logging.INFO:
                text = f"{record.levelname.lower()}: {text}"
            self._console.print(text, markup=False, highlight=False, soft_wrap=True)
        except Exception:  # logging's convention: a failing handler must not stop the program
            self.handleError(record)


def log_to_stderr(console) -> None:
    """The core's log records (logger ``adfd_core``) go to ``console`` one line each, at this run's level."""
    root = logging.getLogger("adfd_core")
    root.handlers = [handler for handler in root.handlers if not isinstance(handler, LineHandler)]
    root.addHandler(LineHandler(console))
    root.setLevel(_LOG_LEVELS[_level])
