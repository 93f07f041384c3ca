"""JSON from files adfd did not necessarily write (metadata of model, feature and weights files), with its nesting capped.

Python's decoder recurses once per level: text nested thousands deep ends in a RecursionError, and
anything that walks the result afterwards (printing it, comparing it) recurses as deep. ``loads``
refuses such text first, as a ``json.JSONDecodeError``, so every caller's handler for bad JSON
names the file and the reason.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64  # levels of nested arrays and objects; adfd's own metadata is a few deep
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``; a JSONDecodeError at the first bracket nested deeper than ``max_depth``, and a
    TypeError for what is neither str nor bytes."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if isinstance(text, str) and text.count("[") + text.count("{") > max_depth:
        _check_depth(text, max_depth)
    return json.loads(text)


def _check_depth(text: str, max_depth: int) -> None:
    """Raise where the nesting first exceeds ``max_depth``; brackets inside strings do not count."""
    depth = 0
    outside = _STRING.sub(lambda m: " " * len(m.group()), text)  # same length: positions stay true
    for bracket in _BRACKET.finditer(outside):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > max_depth:
            raise json.JSONDecodeError(f"nested deeper than {max_depth} levels", text, bracket.start())
