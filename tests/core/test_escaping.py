"""adfd_core.escaping: any file name on one line, in one field, in UTF-8, and back exactly."""

from __future__ import annotations

import os

import pytest

from adfd_core.escaping import escape, unescape

NAMES = [b"plain", b"caf\xc3\xa9", b"bad\xff\xfe", b"new\nline", b"cr\rlf", b"tab\t", b"sp ace", b"back\\slash",
         b"\\x41 written out", b"\\u2028 written out", b"\\", "nbsp\u00a0 ls\u2028 nel\u0085 ff\x0c".encode()]


@pytest.mark.parametrize("raw", NAMES)
@pytest.mark.parametrize("whitespace", [False, True])
def test_escape_round_trips_and_keeps_one_line(raw, whitespace):
    name = os.fsdecode(raw)
    out = escape(name, whitespace)
    assert os.fsencode(unescape(out)) == raw
    out.encode("utf-8")  # no surrogates left
    assert len(out.splitlines()) == 1 and "\t" not in out
    if whitespace:
        assert out.split() == [out]


def test_plain_text_is_left_alone():
    for text in ("LA_E_1", "spoof/hifigan/fake0", "café", "/a/b c.wav"):
        assert escape(text) == text and unescape(text) == text
    assert escape("a b", whitespace=True) == "a\\x20b"
    assert escape("bad\udcff") == "bad\\xff"
    assert unescape("not \\q an escape") == "not \\q an escape"
