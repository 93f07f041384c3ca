r"""Backslash escapes that keep any file name on one line, in one field, and in UTF-8.

A Linux file name may hold tabs, line breaks and bytes that are not UTF-8 (Python holds those as the
surrogates U+DC80-U+DCFF). Written as they are, they split a table's rows or fields, or cannot be
encoded at all. ``escape`` writes a backslash as ``\\``, a tab as ``\t``, a line feed as ``\n``, a
carriage return as ``\r``, each undecodable byte as ``\xHH``, and every other character that Python's
``str.splitlines`` breaks lines at as ``\xHH`` (ASCII) or ``\uHHHH``; with ``whitespace=True`` every
whitespace character likewise (the space of the ASVspoof score files, a no-break space, ...).
``unescape`` reverses it exactly, so ``os.fsencode(unescape(escape(name)))`` gives the name's bytes
back. Other text is left alone.
"""

from __future__ import annotations

import re

_NAMED = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # besides \n and \r
_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())  # U+3000 is the last one
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_ESCAPE = re.compile(r"\\(\\|t|n|r|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})")
_UNNAMED = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def _code(c: str) -> str:
    return f"\\x{ord(c):02x}" if c.isascii() else f"\\u{ord(c):04x}"


def _table(chars: str) -> dict[int, str]:
    return str.maketrans({**{c: _code(c) for c in chars}, **_NAMED})


_IN_A_LINE = _table(_LINE_BREAKS)
_IN_A_FIELD = _table(_LINE_BREAKS + _WHITESPACE)


def escape(text: str, whitespace: bool = False) -> str:
    """``text`` with backslashes, line breaks, undecodable bytes (and, if asked, all whitespace) escaped."""
    out = text.translate(_IN_A_FIELD if whitespace else _IN_A_LINE)
    if out.isascii():
        return out
    return _UNDECODABLE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", out)


def unescape(text: str) -> str:
    r"""The text ``escape`` was given: ``\xHH`` from 0x80 up is that undecodable byte again."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(_unescaped, text)


def _unescaped(match: re.Match) -> str:
    code = match.group(1)
    if code[0] == "u":
        return chr(int(code[1:], 16))
    if code[0] != "x":
        return _UNNAMED[code]
    value = int(code[1:], 16)
    return chr(value if value < 0x80 else 0xDC00 + value)
