"""recipes/fdl_ablations.sh and its table: every grid row is one ablation that changes only what it names, and the
table tells a real difference from noise."""

from __future__ import annotations

import io
import json
import re
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from adfd_core.models import config as configs
from adfd_core.models.fdl import FDLConfig
from adfd_core.scoretable import ScoreTable, spoof_probability, write_scores
from scripts import ROOT, load_script

RECIPE = ROOT / "recipes" / "fdl_ablations.sh"


def grid() -> list[tuple[str, str, str]]:
    """The recipe's GRID rows as (name, sets, paper)."""
    text = RECIPE.read_text()
    body = text[text.index("GRID=(") : text.index("\n)\n", text.index("GRID=("))]
    return [tuple(row.split("|")) for row in re.findall(r'^\s+"([^"]*)"$', body, re.M)]


def test_every_ablation_of_the_paper_is_a_row_that_changes_only_what_it_names():
    rows = grid()
    names = [name for name, _, _ in rows]
    assert names[0] == "full" and len(set(names)) == len(names) == 16
    full = asdict(FDLConfig())
    for name, sets, paper in rows:
        fields = dict(kv.split("=", 1) for kv in sets.split())
        config = configs.make("fdl.v1", FDLConfig, fields, text=True)
        changed = {k for k, v in asdict(config).items() if v != full[k]}
        assert changed == set(fields), name
        assert config.input_augmentation, name  # the speed and codec crops stay in every ablation
        assert paper, name
    from tests.core.test_fdl import ABLATIONS  # the loss terms of each of these rows are tested there

    as_text = {name: {k: str(v).lower() for k, v in fields.items()} for name, (fields, _) in ABLATIONS.items()}
    recipe = {name: {k: v.replace("0", "0.0") if v == "0" else v for k, v in (kv.split("=", 1) for kv in sets.split())}
              for name, sets, _ in rows}
    assert recipe == as_text
    papers = " ".join(paper for _, _, paper in rows)
    for table in ("Table X (a)", "Table XI", "Table XII", "Fig. 5"):
        assert table in papers


def _table(path: Path, bona: np.ndarray, spoof: np.ndarray) -> None:
    scores = np.concatenate([bona, spoof])
    n = len(scores)
    labels = ["bonafide"] * len(bona) + ["spoof"] * len(spoof)
    write_scores(ScoreTable([f"u{i}" for i in range(n)], [f"u{i}.wav" for i in range(n)], scores, spoof_probability(scores),
                            ["-"] * n, labels, ["-"] * n), path)
    path.with_suffix(".train.json").write_text(json.dumps({"epochs_run": 3, "best_epoch": 2, "val_auc": 0.9}))


def test_the_table_marks_differences_within_the_bootstrap_interval_as_noise(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    bona, spoof = rng.normal(1.0, 1.0, 40), rng.normal(-1.0, 1.0, 200)
    _table(tmp_path / "full.tsv", bona, spoof)
    _table(tmp_path / "same.tsv", bona + rng.normal(0, 0.05, 40), spoof + rng.normal(0, 0.05, 200))
    _table(tmp_path / "broken.tsv", bona - 2.0, spoof)  # bona fide now scores like spoof
    table = load_script("recipes/fdl_ablation_table.py")
    rows = "full||the full model\nsame|x=1|Table X\nbroken|y=0|Table XI\nmissing|z=0|Fig. 5\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(rows))
    monkeypatch.setattr(sys, "argv", ["fdl_ablation_table.py", str(tmp_path), "--resamples", "300"])
    table.main()
    out = capsys.readouterr().out
    assert "40 bona fide and 200 spoof" in out
    lines = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| ")}
    assert lines["same"].endswith("noise |") and lines["broken"].endswith("worse |")
    assert "not run" in lines["missing"] and "`x=1`" in lines["same"]
    eer = float(lines["full"].split(" | ")[5].split()[0])
    assert eer == pytest.approx(100 * 0.16, abs=8)  # two unit Gaussians 2 apart: EER about 16 %
