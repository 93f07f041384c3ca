"""A reader that leaves early (`adfd score dir/ | head -1`): a quiet exit with code 141, as a Unix tool killed by SIGPIPE.

Python ignores SIGPIPE, so the write fails with BrokenPipeError; the parser underneath would turn
that into exit code 1, and the core into an error naming <stdout>. A command wrapped in ``closed_pipe_stops`` raises ClosedPipe instead, and
``adfd_cli.main`` ends the run with EXIT_CLOSED_PIPE and nothing on stderr.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE (13): what the shell reports for `cat`, `seq` or `yes` in the same place


class ClosedPipe(Exception):
    """stdout's reader closed the pipe; nothing more can be delivered."""


def closed_pipe_stops(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` raising ClosedPipe where writing to stdout finds the pipe closed."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as exc:
            if _from_closed_pipe(exc):
                raise ClosedPipe from exc
            raise

    return run


def _from_closed_pipe(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a BrokenPipeError or was raised while handling one (a core error that names "<stdout>")."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, BrokenPipeError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what is still buffered fails no more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (an in-process caller's): nothing to redirect
        pass
