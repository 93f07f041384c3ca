"""Audio given on standard input ("-"), as in ``sox in.mp3 -t wav - | adfd score -``.

The bytes are copied to a temporary file (removed when the process exits), so that they are
decoded like any file: any format libsndfile or FFmpeg reads, streamed WAV headers included. The
copy is capped at MAX_STDIN_BYTES; a longer stream is refused with a clear error instead of
filling the disk. The recording's id is ``stdin`` and its path ``-``; ``audio_path`` maps that
path to the copy for whoever decodes it.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from adfd_core.corpus import CorpusError, Utterance

STDIN = Path("-")
STDIN_ID = "stdin"
MAX_STDIN_BYTES = 4 << 30  # 4 GiB: over 18 hours of 16-bit 16-kHz mono WAV
COPY_CHUNK_BYTES = 1 << 20

_copies: dict[Path, tuple[Path, str]] = {}  # STDIN -> (its copy, sha256 of its bytes)


def stdin_utterance(stream: BinaryIO, limit: int = MAX_STDIN_BYTES) -> Utterance:
    """The recording on ``stream`` (standard input's bytes) as an utterance with path "-"; read once per process."""
    if STDIN not in _copies:
        if stream.isatty():
            raise CorpusError("<stdin>: a terminal, not audio; pipe the audio in (sox in.mp3 -t wav - | adfd score -)")
        _copies[STDIN] = _copy(stream, limit)
    return Utterance(id=STDIN_ID, path=STDIN, label="unknown")


def audio_path(path: Path) -> Path:
    """Where the audio of ``path`` is: the copy of standard input for "-", else ``path`` itself."""
    return _copies[STDIN][0] if path == STDIN and STDIN in _copies else path


def stdin_sha256() -> str | None:
    """The sha256 of the audio read from standard input; None when none was."""
    return _copies[STDIN][1] if STDIN in _copies else None


def _copy(stream: BinaryIO, limit: int) -> tuple[Path, str]:
    """Copy ``stream`` to a file in a temporary folder removed at exit; (the file, sha256 of its bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="adfd-stdin-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy, digest, size = folder / "stdin", hashlib.sha256(), 0
    with open(copy, "wb") as out:
        for chunk in iter(lambda: stream.read(COPY_CHUNK_BYTES), b""):
            size += len(chunk)
            if size > limit:
                shown = f"{limit / (1 << 30):g} GiB" if limit >= 1 << 30 else f"{limit:,} bytes"
                raise CorpusError(f"<stdin>: more than {shown} of audio on standard input; "
                                  "save it to a file and give the file's path instead")
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        raise CorpusError("<stdin>: no audio on standard input (give '-' only with audio piped in)")
    return copy, digest.hexdigest()
