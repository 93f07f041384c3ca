"""Options that take one of a fixed set of values: the values shown in --help, anything else a usage error (exit 2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer


def one_of(values: Sequence[str]) -> dict[str, Any]:
    """typer.Option keyword arguments: ``metavar`` listing ``values`` and a callback refusing any other value.

        by: Annotated[str, typer.Option("--by", **one_of(GROUP_FIELDS), help="...")] = "group"
    """
    values = tuple(values)

    def check(value: Any) -> Any:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and item not in values:
                raise typer.BadParameter(f"{item!r} is not one of {', '.join(values)}")
        return value

    return {"metavar": f"[{'|'.join(values)}]", "callback": check}
