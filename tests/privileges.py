"""Acting as an unprivileged user inside a test: the suite runs as root, who reads anything."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

NOBODY = 65534  # uid and gid of 'nobody'


@contextmanager
def as_nobody() -> Iterator[None]:
    """Drop the effective uid and gid to 'nobody' for the block (a no-op when not root), then restore them."""
    euid, egid = os.geteuid(), os.getegid()
    if euid == 0:
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
    try:
        yield
    finally:
        if euid == 0:
            os.seteuid(euid)
            os.setegid(egid)
