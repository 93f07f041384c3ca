"""Progress off a terminal: a plain line at a steady interval, which a log file or a batch system keeps.

    featurize: 120/760 (16 %), 3.1/s, eta 3m26s

The interval is ADFD_PROGRESS_SECONDS (default 30; 0 prints at every step). It takes the calls
of rich's Progress that the commands use (add_task, advance, remove_task, console), so a command
need not know where its stderr goes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_INTERVAL_S = 30.0
INTERVAL_VARIABLE = "ADFD_PROGRESS_SECONDS"


def interval_s() -> float:
    """Seconds between progress lines: ADFD_PROGRESS_SECONDS when it is a number >= 0, else 30."""
    try:
        value = float(os.environ.get(INTERVAL_VARIABLE, DEFAULT_INTERVAL_S))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value >= 0 else DEFAULT_INTERVAL_S


def duration(seconds: float) -> str:
    """3726 -> '1h02m', 206 -> '3m26s', 9.4 -> '9s'."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    started_at: float
    completed_at_start: float


class LineProgress:
    """Prints each task's done/total, rate and ETA on ``console`` at most every ``interval`` seconds."""

    def __init__(self, console, interval: float, clock: Callable[[], float] = time.monotonic):
        self.console = console
        self._interval, self._clock = interval, clock
        self._tasks: dict[int, _Task] = {}
        self._last_line_at = clock()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **_: object) -> int:
        task_id = len(self._tasks)
        self._tasks[task_id] = _Task(description, total, completed, self._clock(), completed)
        return task_id

    def remove_task(self, task_id: int) -> None:
        self._tasks.pop(task_id, None)

    def advance(self, task_id: int, advance: float = 1) -> None:
        task = self._tasks[task_id]
        task.completed += advance
        now = self._clock()
        if now - self._last_line_at >= self._interval:
            self._last_line_at = now
            self.console.print(self.line(task, now), markup=False, highlight=False, soft_wrap=True)

    @staticmethod
    def line(task: _Task, now: float) -> str:
        """'NAME: DONE/TOTAL (P %), R/s, eta T': rate and ETA over this run's steps only (a resumed run's are not counted)."""
        done = int(task.completed)
        elapsed = now - task.started_at
        rate = (task.completed - task.completed_at_start) / elapsed if elapsed > 0 else 0.0
        parts = [f"{done}/{int(task.total)} ({100 * task.completed / task.total:.0f} %)" if task.total else str(done)]
        parts.append(f"{rate:.3g}/s" if rate >= 0.1 else f"{60 * rate:.3g}/min")
        if task.total and rate > 0:
            parts.append(f"eta {duration((task.total - task.completed) / rate)}")
        return f"{task.description}: {', '.join(parts)}"
