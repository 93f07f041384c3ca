"""Where commands write: checked before the work starts, written so that a failure leaves nothing that looks complete.

- ``check_output``: refuse an output that is an existing folder or one of the inputs, and one whose
  folder takes no new file (read-only, no permission), before any work is done.
- ``storage_failure``: an error from writing (full disk, read-only file system, no permission),
  from the OS or from HDF5, as one line naming the path.
- ``atomic_text``: a text file written beside its final name and renamed over it once complete.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from adfd_core.errors import AdfdError

# Why a write failed, by errno: the conditions a user can fix (free space, another folder, permissions).
STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EFBIG: "file too large for the file system",
}
_HDF5_ERRNO = re.compile(r"errno = (\d+)")  # h5py reports the OS error inside its message, with no errno attribute


class OutputError(AdfdError):
    """An output that cannot or must not be written; the message names the path."""


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (), *, folder: bool = False) -> None:
    """Refuse, before any work, an output that would overwrite an input or a folder, or cannot be created.

    path: the output file ("-" = stdout: nothing to check), or with ``folder=True`` the folder a
    command writes its files into. inputs: the files and folders the command reads (None ignored).
    The nearest existing folder on the way to ``path`` must take a new file: one is created and removed.
    """
    if str(path) == "-":
        return
    out = Path(path)
    if not folder and out.is_dir():
        raise OutputError(f"{out}: is a folder; give the output a file name")
    if folder and out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file, not a folder")
    target = out.stat() if out.exists() else None  # an output yet to be made is no input
    if target is not None and any(_is(target, given) for given in inputs):
        raise OutputError(f"{out}: is also an input of this command; write the output elsewhere")
    _check_writable(out, out if folder else out.parent)


def _is(target: os.stat_result, given: str | os.PathLike | None) -> bool:
    """Whether ``given`` names the file or folder whose status is ``target`` (through any link)."""
    if given is None or str(given) == "-":
        return False
    try:
        found = os.stat(given)
    except (OSError, ValueError):
        return False
    return (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino)


def _check_writable(out: Path, folder: Path) -> None:
    """Create and remove a file in ``folder``, or in its nearest existing ancestor when it is still to be made."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{out}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".adfd-write-check-", dir=existing)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write in {existing}: {why_unwritable(exc)}") from None
    os.close(fd)
    os.unlink(probe)


def storage_failure(exc: BaseException, path: str | os.PathLike) -> OutputError | None:
    """``exc`` as a one-line OutputError naming ``path`` when it is a storage failure (full disk,
    read-only, no permission: see STORAGE_ERRNOS), from the OS or from HDF5; None for anything else."""
    code = getattr(exc, "errno", None)
    if code not in STORAGE_ERRNOS:
        found = _HDF5_ERRNO.search(str(exc))
        code = int(found.group(1)) if found else None
    if code not in STORAGE_ERRNOS:
        return None
    return OutputError(f"{path}: cannot write: {STORAGE_ERRNOS[code]}")


def why_unwritable(exc: OSError) -> str:
    """Why writing failed, in a few words: the STORAGE_ERRNOS phrase, else the OS message."""
    return STORAGE_ERRNOS.get(exc.errno, exc.strerror or str(exc))


@contextmanager
def atomic_text(path: str | os.PathLike) -> Iterator[TextIO]:
    """A UTF-8 text stream for ``path``: written to a temporary file beside it and renamed over it
    only when the body finishes, so an error or an interrupt leaves no partial file (and an older
    file untouched). A path that exists and is not a regular file (a device, a pipe) is written directly.
    Failing writes raise OutputError naming ``path``."""
    path = Path(path)
    if path.exists() and not path.is_file():
        with _mapped_errors(path), open(path, "w", encoding="utf-8", newline="\n") as direct:
            yield direct
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with _mapped_errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _mapped_errors(path: Path) -> Iterator[None]:
    """OSErrors of writing ``path`` as OutputErrors naming it."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {why_unwritable(exc)}") from None


@contextmanager
def storage_errors(path: str | os.PathLike) -> Iterator[None]:
    """Storage failures in the body (see ``storage_failure``) as an OutputError naming ``path``; other errors pass."""
    try:
        yield
    except (OSError, RuntimeError) as exc:  # h5py raises either, with the OS error in its message
        failure = storage_failure(exc, path)
        if failure is None:
            raise
        raise failure from None
