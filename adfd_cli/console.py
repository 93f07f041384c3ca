"""Where the command line writes: data to stdout, everything else to rich consoles on stderr.

``err`` carries messages and progress, and --quiet silences it; ``alerts`` carries warnings and
failed inputs, which --quiet keeps. Off a terminal neither wraps nor pads: one line per message,
file names whole, and progress as a plain line at a steady interval (adfd_cli.progress_lines).
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape as markup_escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from adfd_cli import verbosity
from adfd_cli.progress_lines import LineProgress, interval_s
from adfd_core.escaping import escape


def _stderr_console() -> Console:
    """A console on stderr (looked up at each print, so a progress bar can redirect it); off a terminal it never wraps."""
    return Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())


err = _stderr_console()
alerts = _stderr_console()


def warn(message: str) -> None:
    """A one-line warning on stderr, shown under --quiet too."""
    alerts.print(f"[yellow]warning:[/] {markup_escape(message)}", markup=True, soft_wrap=True)  # a name with [brackets] stays whole


def failed(path: object, reason: str) -> None:
    """'failed: PATH: REASON' on stderr, shown under --quiet too."""
    alerts.print(f"failed: {escape(str(path))}: {reason}", markup=False, soft_wrap=True)


def progress() -> Progress | LineProgress:
    """Progress on stderr: a bar with ETA on a terminal, a plain line every ADFD_PROGRESS_SECONDS off one, nothing under --quiet."""
    quiet = verbosity.level() == verbosity.QUIET
    if err.is_terminal or quiet:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err,
            disable=quiet,
            transient=False,
        )
    return LineProgress(err, interval_s())


class BarObserver:
    """Feeds the core's per-recording progress hooks to a progress display; failures go to stderr as they happen."""

    def __init__(self, bar: Progress | LineProgress, description: str):
        self._bar, self._description = bar, description
        self._task = None

    def start(self, total: int, already_done: int) -> None:
        self._task = self._bar.add_task(self._description, total=total, completed=already_done)

    def advance(self, n: int = 1) -> None:
        self._bar.advance(self._task, n)

    def failed(self, utt, reason: str) -> None:
        failed(utt.path, reason)

    def warned(self, utt, reason: str) -> None:
        alerts.print(f"warning: {escape(str(utt.path))}: {reason}", markup=False, soft_wrap=True)
