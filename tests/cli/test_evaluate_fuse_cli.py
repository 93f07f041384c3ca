"""`adfd fuse` and `adfd evaluate` end to end: pipes through stdin/stdout, weights files, plots, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adfd_core.fusion import mean_fusion
from adfd_core.metrics import class_scores, eer
from adfd_core.scoretable import ScoreTable, read_scores, write_scores

from .helpers import adfd


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """dev and eval score tables of two systems (a informative, b weak) with ASVspoof-like ids and attacks."""
    root = tmp_path_factory.mktemp("scores")
    rng = np.random.default_rng(0)
    labels = ["bonafide"] * 60 + ["spoof"] * 60
    attacks = ["-"] * 60 + ["A07", "A08"] * 30
    y = np.where(np.array(labels) == "bonafide", 1.0, -1.0)
    paths = {}
    for part in ("dev", "eval"):
        ids = [f"LA_{part[0].upper()}_{i:07d}" for i in range(len(labels))]
        for system, separation in (("a", 2.0), ("b", 0.5)):
            t = ScoreTable.build(ids, separation * y + rng.normal(size=y.size), labels=labels, attacks=attacks)
            paths[f"{part}_{system}"] = root / f"{part}_{system}.tsv"
            write_scores(t, paths[f"{part}_{system}"])
    return paths


def test_fuse_reads_stdin_and_evaluate_reads_the_pipe(tables):
    fused = adfd("fuse", "-", str(tables["eval_b"]), stdin=tables["eval_a"].read_text())
    assert fused.returncode == 0, fused.stderr
    assert fused.stdout.splitlines()[0] == "id\tpath\tscore\tp_spoof\tdecision\tlabel\tattack"  # data only on stdout

    done = adfd("evaluate", "-", "--json", stdin=fused.stdout)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected = mean_fusion([read_scores(tables["eval_a"]), read_scores(tables["eval_b"])])
    assert result["eer"] == pytest.approx(eer(*class_scores(expected))[0])
    assert (result["n_bonafide"], result["n_spoof"]) == (60, 60)
    assert result["by"] == "attack" and list(result["groups"]) == ["A07", "A08"]


def test_evaluate_prints_rows_and_writes_a_plot(tables, tmp_path):
    png = tmp_path / "eval.png"
    done = adfd("evaluate", str(tables["eval_a"]), "--plot", str(png))
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split("\t")[:5] == ["attack", "versus", "n_bonafide", "n_spoof", "eer"] and "min_dcf" in header
    assert [row.split("\t")[0] for row in rows] == ["pooled", "A07", "A08"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_on_an_infinite_score_is_one_line_naming_the_table(tables, tmp_path):
    lines = tables["dev_b"].read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("LA_D_0000003\t"))
    cells = lines[row].split("\t")
    cells[2] = "inf"
    lines[row] = "\t".join(cells)
    broken = tmp_path / "dev_b_inf.tsv"
    broken.write_text("\n".join(lines) + "\n")
    weights = tmp_path / "w.json"
    done = adfd("fuse", str(tables["eval_a"]), str(tables["eval_b"]), "--train", str(tables["dev_a"]),
                "--train", str(broken), "--save-weights", str(weights))
    assert done.returncode == 1 and done.stdout == "" and not weights.exists()
    assert done.stderr.strip().splitlines() == [
        f"adfd: error: {broken}: LA_D_0000003 has score inf; training the fusion needs finite scores within +-1e+06"], done.stderr


def test_logreg_weights_trained_once_apply_the_same_fusion(tables, tmp_path):
    weights = tmp_path / "w.json"
    trained = adfd("fuse", str(tables["eval_a"]), str(tables["eval_b"]), "--train", str(tables["dev_a"]),
                   "--train", str(tables["dev_b"]), "--save-weights", str(weights), "-o", str(tmp_path / "t.tsv"))
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout == ""
    assert [s["sha256"] for s in json.loads(weights.read_text())["trained_on"]] == [
        read_scores(tables["dev_a"]).sha256, read_scores(tables["dev_b"]).sha256]
    applied = adfd("fuse", str(tables["eval_a"]), str(tables["eval_b"]), "--apply", str(weights), "--format", "asvspoof2021")
    assert applied.returncode == 0, applied.stderr
    first = read_scores(tmp_path / "t.tsv")
    lines = applied.stdout.splitlines()
    assert lines == [f"{i} {s!r}" for i, s in zip(first.ids, first.scores.tolist())]


def test_evaluate_takes_labels_from_a_key(tables, tmp_path):
    t = read_scores(tables["eval_a"])
    scores = tmp_path / "s21.txt"
    write_scores(t, scores, "asvspoof2021")
    unlabelled = adfd("evaluate", str(scores))
    assert unlabelled.returncode == 1 and "--key" in unlabelled.stderr and unlabelled.stdout == ""
    key = tmp_path / "protocol.txt"
    key.write_text("".join(f"LA_0001 {i} - {a} {label}\n" for i, a, label in zip(t.ids, t.attacks, t.labels)))
    done = adfd("evaluate", str(scores), "--key", str(key), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["eer"] == pytest.approx(eer(*class_scores(t))[0])


def test_user_errors_are_one_line_with_exit_1(tables, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tscore\nx\t1\ny\tlots\n")
    part = tmp_path / "part.tsv"
    part.write_text("\n".join(tables["eval_a"].read_text().splitlines()[:50]) + "\n")
    malformed = adfd("evaluate", str(bad))
    mismatched = adfd("fuse", str(part), str(tables["eval_b"]))
    for done in (malformed, mismatched):
        assert done.returncode == 1, done.stderr
        assert done.stdout == "" and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("adfd: error: ")
    assert f"{bad}:3: score 'lots' is not a number" in malformed.stderr
    assert f"LA_E_0000049 (not in {part})" in mismatched.stderr and "--allow-missing" in mismatched.stderr


@pytest.mark.parametrize(
    "args, hint",
    [
        (("fuse", "A", "--method", "median"), "--method"),
        (("fuse", "A", "B", "--train", "A"), "--train"),
        (("fuse", "-", "-"), "stdin"),
        (("fuse", "A", "--format", "csv"), "--format"),
        (("evaluate",), "SCORES"),
    ],
)
def test_usage_errors_exit_2(args, hint):
    done = adfd(*args)
    assert done.returncode == 2 and hint.lower() in done.stderr.lower() and done.stdout == ""
