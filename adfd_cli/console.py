"""Where the command line writes: data to stdout, everything else to a rich console on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from adfd_core.escaping import escape

err = Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    err.print(f"[yellow]warning:[/] {message}", markup=True, soft_wrap=True)


def progress() -> Progress:
    """A progress bar with ETA on stderr, silent when stderr is not a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
        transient=False,
    )


class BarObserver:
    """Feeds the core's per-recording progress hooks to a rich progress bar; failures go to stderr as they happen."""

    def __init__(self, bar: Progress, description: str):
        self._bar, self._description = bar, description
        self._task = None

    def start(self, total: int, already_done: int) -> None:
        self._task = self._bar.add_task(self._description, total=total, completed=already_done)

    def advance(self, n: int = 1) -> None:
        self._bar.advance(self._task, n)

    def failed(self, utt, reason: str) -> None:
        self._bar.console.print(f"failed: {escape(str(utt.path))}: {reason}", markup=False, soft_wrap=True)

    def warned(self, utt, reason: str) -> None:
        self._bar.console.print(f"warning: {escape(str(utt.path))}: {reason}", markup=False, soft_wrap=True)
