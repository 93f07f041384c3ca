"""`adfd info`: what a feature file or model file holds, the default model's card, or which front-ends exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from adfd_cli import options


def info(
    path: Annotated[
        Path | None,
        typer.Argument(help="Feature file (.h5), model file (.safetensors) or score table (its FILE.meta.json is read) "
                       "to describe."),
    ] = None,
    features: Annotated[bool, typer.Option("--features", help="List the registered front-ends instead.")] = False,
    default_model: Annotated[
        bool, typer.Option("--default-model", help="Show the bundled default model's card and its member models.")
    ] = False,
    as_json: options.Json = False,
) -> int:
    """Describe a feature file (format, features, counts by label and attack, failures), a model
    file (model, config, front-end, training data and validation metrics) or a score table (rows,
    labels, and what made it: its FILE.meta.json, else the provenance inside the table)."""
    if features:
        from adfd_core.catalog import frontends

        rows = frontends()
        _emit(rows, as_json, _frontends_table)
        return 0
    if default_model:
        from adfd_core.modelfile import describe_model
        from adfd_core.scoring import default_calibration, default_model_card, default_model_paths

        calibration = default_calibration()
        card = {"card": default_model_card(), "members": [describe_model(p) for p in default_model_paths()],
                "calibration": calibration.describe() if calibration else None}
        _emit(card, as_json, _default_model_text)
        return 0
    if path is None:
        raise typer.BadParameter("give a feature or model file, --default-model or --features", param_hint="PATH")
    if path.suffix == ".safetensors":
        from adfd_core.modelfile import describe_model

        _emit(describe_model(path), as_json, _model_text)
        return 0
    import h5py

    if not (path.is_file() and h5py.is_hdf5(path)) and path.suffix not in (".h5", ".hdf5"):
        from adfd_core.scoretable import describe_scores

        _emit(describe_scores(path), as_json, _score_table_text)
        return 0
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
    table = Table("name", "row shape", "segment s", "parameters", title="front-ends", title_justify="left")
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


def _score_table_text(out: Console, d: dict) -> None:
    out.print(f"{d['path']}: score table, {d['rows']} recordings ({d['unscored']} without a score)", markup=False)
    out.print("labels: " + ", ".join(f"{k} {n}" for k, n in d["labels"].items()), markup=False)
    out.print("decisions: " + ", ".join(f"{k} {n}" for k, n in d["decisions"].items()), markup=False)
    if d["extra_columns"]:
        out.print("extra columns: " + ", ".join(d["extra_columns"]), markup=False)
    where = {"sidecar": f"{d['path']}.meta.json", "table": "inside the table", "none": "none recorded"}[d["provenance_from"]]
    if d["sidecar_outdated"]:
        out.print(f"{d['path']}.meta.json describes another table (this one was changed since); not used", markup=False)
    out.print(f"provenance ({where}):", markup=False)
    for key, value in d["provenance"].items():
        out.print(f"  {key}: {value if isinstance(value, str) else json.dumps(value)}", markup=False)


def _model_text(out: Console, d: dict) -> None:
    t = d["training"]
    out.print(f"{d['path']}: {d['model']} on front-end {d['frontend'].get('name')} v{d['frontend'].get('version')}")
    out.print("config: " + ", ".join(f"{k}={v}" for k, v in d["config"].items()), markup=False)
    out.print("front-end: " + ", ".join(f"{k}={v}" for k, v in d["frontend"].get("params", {}).items()), markup=False)
    if "train" in t:
        for part in ("train", "val"):
            s = t[part]
            out.print(f"{part}: {s['path']} (sha256 {s['sha256'][:12]}...): {s['utterances']} utterances, "
                      f"{s['bonafide_segments']} bona fide and {s['spoof_segments']} spoof segments", markup=False)
        out.print(f"best epoch {t['best_epoch']} of {t['epochs_run']}: validation AUC {t['val_auc']:.4f}, "
                  f"EER {t['val_eer']:.2f} %; seed {t['options']['seed']}; adfd {t['adfd_version']}, made {t['created_at']}")
    if d["calibration"]:
        out.print(f"calibration: {d['calibration']}", markup=False)


def _default_model_text(out: Console, d: dict) -> None:
    out.print(d["card"], markup=False)
    if d["calibration"]:
        c = d["calibration"]
        out.print(f"\noperating point: spoof where score < {c['threshold']:.3f} (chosen for {100 * c['target_false_alarm']:.0f} % "
                  f"false alarms on held-out bona fide speech); p_spoof at P(spoof) = {c['prior_spoof']}; "
                  f"score = {' + '.join(f'{w:.3f} s{i + 1}' for i, w in enumerate(c['weights']))} + {c['bias']:.3f}", markup=False)
    for member in d["members"]:
        out.print()
        _model_text(out, member)
