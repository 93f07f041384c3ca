"""`adfd models`: the registered models, with parameter counts, input kinds and default features."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Column, Table

from adfd_cli import options


def models(as_json: options.Json = False) -> int:
    """List the registered models: name, parameters (default config), input kind, default feature, description."""
    from adfd_core.catalog import models as catalog

    rows = catalog()
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(
        Column("name", no_wrap=True),
        Column("parameters", justify="right"),
        "input",
        "feature",
        "description",
        title="models",
        title_justify="left",
    )
    for row in rows:
        table.add_row(
            row["name"], f"{row['parameters'] / 1e6:.3g} M", row["input_kind"], row["default_feature"] or "-", row["description"]
        )
    Console(highlight=False, soft_wrap=True).print(table)
    return 0
