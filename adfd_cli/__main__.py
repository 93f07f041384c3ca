"""`python -m adfd_cli` runs the `adfd` command."""

import _signal  # the C module, loaded with the interpreter: `signal` would first import enum, and Ctrl-C could land there
import os

if __name__ == "__main__":  # spawned worker processes import this module too

    def _leave(signum: int, frame: object) -> None:
        """Ctrl-C before `main` takes over: one line, exit 130, no traceback."""
        os.write(2, b"adfd: interrupted; nothing was written\n")
        os._exit(130)

    _signal.signal(_signal.SIGINT, _leave)

    from adfd_cli.main import main

    main()
