"""Where the command line writes: data to stdout, everything else to a rich console on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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
