"""The `adfd` executable: runs the app and maps outcomes to exit codes.

Exit codes: 0 success; 1 error; 2 usage error; 3 finished but some inputs failed;
130 interrupted; 141 stdout closed by its reader. ``ADFD_DEBUG=1`` or ``--verbose`` shows
tracebacks of unexpected errors.

This module imports only the standard library at the top, and the app inside ``run``, so Ctrl-C at
any moment, even while typer, rich and the commands load, ends with one line and exit code 130.
"""

from __future__ import annotations

import os
import sys

from adfd_cli.interrupts import EXIT_INTERRUPTED, Interrupted, exit_at_once, message


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(argv: list[str] | None = None) -> None:
    """Run the app on ``argv`` (default: the command line) and exit (SystemExit) with the documented code."""
    import signal

    args = sys.argv[1:] if argv is None else list(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on Ctrl-C is a KeyboardInterrupt, handled
    try:
        code = _dispatch(args)
    except KeyboardInterrupt:  # typer turns one inside a command into code 130; this one came before or after
        code = EXIT_INTERRUPTED
    except Interrupted as stop:
        print(message(args, stop.kept), file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    if code == EXIT_INTERRUPTED:
        print(message(args), file=sys.stderr)
    sys.exit(code)


def _dispatch(args: list[str]) -> int:
    """The app's exit code for ``args``; errors are reported on stderr here, in one line each."""
    import typer

    from adfd_cli import verbosity
    from adfd_cli.app import app
    from adfd_cli.console import alerts
    from adfd_cli.pipes import EXIT_CLOSED_PIPE, ClosedPipe, discard_stdout
    from adfd_core.errors import AdfdError
    from adfd_core.outputs import storage_failure

    verbosity.set_level(quiet=False, verbose=False)  # each command sets its own; this is for what runs before one
    verbosity.log_to_stderr(alerts)
    try:
        code = app(args=args, prog_name="adfd", standalone_mode=False)
        sys.stdout.flush()  # a full disk behind stdout shows here, while it can still be reported
    except (ClosedPipe, BrokenPipeError):
        discard_stdout()
        return EXIT_CLOSED_PIPE
    except typer.Abort:
        return EXIT_INTERRUPTED
    except typer.TyperException as exc:  # usage errors: typer shows them with the command's usage line
        exc.show()
        return exc.exit_code
    except AdfdError as exc:
        print(f"adfd: error: {exc}", file=sys.stderr)
        return 1
    except Interrupted:
        raise
    except Exception as exc:
        failure = storage_failure(exc, getattr(exc, "filename", None) or "<stdout>") if isinstance(exc, OSError) else None
        if failure is not None:
            print(f"adfd: error: {failure}", file=sys.stderr)
            return 1
        if os.environ.get("ADFD_DEBUG") or verbosity.level() == verbosity.VERBOSE:  # a bug: one line unless debugging
            raise
        print(f"adfd: internal error: {type(exc).__name__}: {exc} (rerun with --verbose for the traceback)", file=sys.stderr)
        return 1
    return code if isinstance(code, int) else 0


def main() -> None:
    """The `adfd` executable: ``run`` with glibc's allocator set for big tensors, and a quick exit."""
    import _signal  # the C module: importing `signal` first would leave Ctrl-C a window

    _signal.signal(_signal.SIGINT, exit_at_once)
    try:
        from adfd_cli.process import keep_freed_memory, quick_exit

        keep_freed_memory()
        try:
            run()
        except SystemExit as done:
            code = done.code
        if isinstance(code, str):  # sys.exit's convention: a message means failure
            print(code, file=sys.stderr)
        quick_exit(code if isinstance(code, int) else int(code is not None))
    except KeyboardInterrupt:  # outside run: on the way out
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        print(message(sys.argv[1:]), file=sys.stderr)
        os._exit(EXIT_INTERRUPTED)
