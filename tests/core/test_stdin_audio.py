"""Audio on standard input: copied once, within a size cap, refused when empty or a terminal."""

from __future__ import annotations

import io

import pytest

from adfd_core import stdin_audio
from adfd_core.corpus import CorpusError


@pytest.fixture(autouse=True)
def no_copy(monkeypatch):
    """Each test starts as a process that has read nothing from stdin."""
    monkeypatch.setattr(stdin_audio, "_copies", {})


class Terminal(io.BytesIO):
    def isatty(self) -> bool:
        return True


def test_stdin_is_copied_once_and_decoders_are_pointed_at_the_copy():
    utt = stdin_audio.stdin_utterance(io.BytesIO(b"RIFF....WAVE" * 10))
    assert (utt.id, str(utt.path), utt.label) == ("stdin", "-", "unknown")
    copy = stdin_audio.audio_path(utt.path)
    assert copy != utt.path and copy.read_bytes() == b"RIFF....WAVE" * 10
    assert stdin_audio.stdin_utterance(io.BytesIO(b"other")) == utt and stdin_audio.audio_path(utt.path) == copy
    assert len(stdin_audio.stdin_sha256()) == 64


def test_too_much_no_audio_or_a_terminal_is_refused_in_one_line():
    with pytest.raises(CorpusError, match=r"^<stdin>: more than 10 bytes of audio on standard input; save it to a file"):
        stdin_audio.stdin_utterance(io.BytesIO(b"x" * 11), limit=10)
    with pytest.raises(CorpusError, match=r"^<stdin>: no audio on standard input"):
        stdin_audio.stdin_utterance(io.BytesIO(b""))
    with pytest.raises(CorpusError, match=r"^<stdin>: a terminal, not audio; pipe the audio in"):
        stdin_audio.stdin_utterance(Terminal(b"typed"))
    assert stdin_audio.stdin_sha256() is None and stdin_audio.audio_path(stdin_audio.STDIN) == stdin_audio.STDIN
