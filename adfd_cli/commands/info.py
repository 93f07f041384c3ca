"""`adfd info`: what a feature file holds, or which front-ends exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from adfd_cli import options


def info(
    path: Annotated[Path | None, typer.Argument(help="Feature file (.h5) to describe.")] = None,
    features: Annotated[bool, typer.Option("--features", help="List the registered front-ends instead.")] = False,
    as_json: options.Json = False,
) -> int:
    """Describe a feature file: format version, features with spec and shape, counts by label and attack, failures."""
    if features:
        from adfd_core.frontends import describe_all

        rows = describe_all()
        _emit(rows, as_json, _frontends_table)
        return 0
    if path is None:
        raise typer.BadParameter("give a feature file, or --features", param_hint="PATH")
    from adfd_core.store import describe

    _emit(describe(path), as_json, _feature_file_tables)
    return 0


def _emit(data, as_json: bool, render) -> None:
    out = Console(highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        render(out, data)


def _frontends_table(out: Console, rows: list[dict]) -> None:
    table = Table("name", "output (C, F, T)", "segment s", "parameters", title="front-ends", title_justify="left")
    for row in rows:
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items() if k not in ("sample_rate", "segment_seconds"))
        seg = "whole" if row["params"].get("segment_seconds") is None else str(row["params"]["segment_seconds"])
        table.add_row(row["name"], "x".join(map(str, row["row_shape"])) or "(samples,)", seg, params)
    out.print(table)


def _feature_file_tables(out: Console, d: dict) -> None:
    state = "complete" if d["complete"] else "INCOMPLETE (interrupted run; rerun featurize to finish)"
    out.print(f"{d['path']}: {d['format']} v{d['format_version']}, {state}")
    out.print(f"made by adfd {d['adfd_version']} at {d['created_at']}: {' '.join(d['command'])}")
    out.print(f"{d['n_utterances']} utterances, {d['total_duration_s']:.1f} s of audio")
    table = Table("feature", "row shape", "rows", "spec", title="features", title_justify="left")
    for f in d["features"]:
        shape = "x".join(map(str, f["row_shape"])) if f["row_shape"] else "whole waveform (samples)"
        spec = ", ".join(f"{k}={v}" for k, v in f["spec"]["params"].items())
        table.add_row(f["name"], shape, str(f["rows"]), f"v{f['spec']['version']}: {spec}")
    out.print(table)
    counts = Table("label", "utterances", title="labels", title_justify="left")
    for label, n in d["labels"].items():
        counts.add_row(label, str(n))
    out.print(counts)
    if d["attacks"]:
        attacks = Table("attack", "utterances", title="attacks", title_justify="left")
        for attack, n in d["attacks"].items():
            attacks.add_row(attack, str(n))
        out.print(attacks)
    out.print(f"{len(d['failures'])} failed inputs")
    for f in d["failures"]:
        out.print(f"  {f['path']}: {f['reason']}", markup=False)
