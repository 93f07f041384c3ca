"""Ctrl-C (or SIGTERM): exit code 130 and one line on stderr saying what the interrupted command kept."""

from __future__ import annotations

import os

EXIT_INTERRUPTED = 130

# What an interrupt leaves, per command; commands not listed write nothing before they finish.
KEPT = {
    "featurize": "the work committed so far is kept beside the output (NAME.partial): rerun the same command to resume",
    "train": "the last finished epoch is kept in a checkpoint beside the output: rerun the same command with --resume",
}
NOTHING_KEPT = "nothing was written"


class Interrupted(Exception):
    """Raised by a command that handled Ctrl-C itself; ``kept`` says what it kept."""

    def __init__(self, kept: str):
        super().__init__(kept)
        self.kept = kept


def exit_at_once(signum: int, frame: object) -> None:
    """SIGINT handler while the program loads, before any command runs: one line, exit 130, no traceback."""
    os.write(2, f"adfd: interrupted; {NOTHING_KEPT}\n".encode())
    os._exit(EXIT_INTERRUPTED)


def message(argv: list[str], kept: str | None = None) -> str:
    """The line printed on an interrupt of the command that ``argv`` (without the program name) runs."""
    command = next((a for a in argv if not a.startswith("-")), "")
    return f"adfd: interrupted; {kept or KEPT.get(command, NOTHING_KEPT)}"
