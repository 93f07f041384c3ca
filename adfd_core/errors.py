"""The exception every user-facing adfd error derives from.

The command line turns an ``AdfdError`` into a one-line message on stderr and exit code 1;
anything else is a bug and shows a traceback only with ``ADFD_DEBUG=1``.
"""


class AdfdError(Exception):
    """A problem with the user's input or environment, explained in one line."""
