"""Depth-capped JSON: refuses what would recurse thousands deep, counts no bracket inside a string."""

from __future__ import annotations

import json

import pytest

from adfd_core import jsontext


def test_nesting_up_to_the_cap_loads_and_one_more_level_is_refused_where_it_starts():
    deepest = "[" * 64 + "]" * 64
    assert jsontext.loads(deepest) == json.loads(deepest)
    with pytest.raises(json.JSONDecodeError, match=r"nested deeper than 64 levels: line 1 column 70 \(char 69\)"):
        jsontext.loads(' {"a":' + "[" * 64 + "]" * 64 + "}")


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"note": "[" * 500 + '\\" {{{' + "}" * 9, "list": [[1]]})
    assert jsontext.loads(text.encode()) == json.loads(text)


def test_a_hundred_thousand_levels_are_refused_not_recursed():
    with pytest.raises(json.JSONDecodeError, match="nested deeper than 64 levels"):
        jsontext.loads("[" * 100_000 + "]" * 100_000)
