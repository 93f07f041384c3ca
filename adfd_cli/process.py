"""Process-wide settings of the `adfd` executable: how glibc's allocator treats big buffers, and a quick exit.

Both concern the real command only (``adfd_cli.main.main``); code that calls ``run`` in-process, as
the tests do, keeps its own allocator settings and its normal exit.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import sys
from typing import NoReturn

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # blocks up to this size come from the heap (glibc's largest allowed value)
TRIM_THRESHOLD = 256 << 20  # freed memory at the heap's top kept up to this size


def keep_freed_memory() -> bool:
    """Let glibc reuse freed big blocks instead of unmapping them; False where the C library is not glibc.

    By default glibc maps each block of a few MB afresh and unmaps it when freed, so every batch's
    tensors page-fault their way in again: the CPU front-ends ran about half as fast as with the
    memory kept (`python bench/featurize.py`). The process keeps at most its peak use resident.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:  # the C library the interpreter runs on (ctypes.util.find_library would run `ldconfig -p`: 15 ms)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def quick_exit(code: int) -> NoReturn:
    """End the process with ``code`` once the command is done, skipping the interpreter's teardown.

    Python's atexit handlers still run (temporary folders, multiprocessing, logging), and stdout and
    stderr are flushed; what is skipped is freeing every module and the C libraries' destructors,
    about 0.6 s once torch (its CUDA build) is loaded, paid by every command that uses it.
    """
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be written anyway
            pass
    os._exit(code)
