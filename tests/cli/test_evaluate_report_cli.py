"""`adfd evaluate` output a script or an analyst can trust: plain TSV off a terminal, balanced accuracy,
seeded EER intervals, breakdowns by any column, min t-DCF from ASV scores, plots that say what they show."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess

import numpy as np
import pandas as pd
import pytest

from adfd_core.scoretable import ScoreTable, write_scores

from .helpers import ADFD, adfd


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A labelled table (60 bona fide, 60 spoof of attacks A07/A08) and a manifest key giving each id a source."""
    root = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    labels = ["bonafide"] * 60 + ["spoof"] * 60
    ids = [f"LA_E_{i:07d}" for i in range(120)]
    y = np.where(np.array(labels) == "bonafide", 1.0, -1.0)
    table = root / "scores.tsv"
    write_scores(ScoreTable.build(ids, 1.5 * y + rng.normal(size=120), labels=labels, attacks=["-"] * 60 + ["A07", "A08"] * 30,
                                  provenance={"models": [{"path": "m.safetensors", "model": "cnn.v1"}]}), table)
    key = root / "manifest.tsv"
    key.write_text("id\tpath\tlabel\tsource\tspeaker\n" + "".join(
        f"{i}\t{i}.wav\t{label}\t{'studio' if k % 3 else 'phone'}\tspk{k % 12}\n" for k, (i, label) in enumerate(zip(ids, labels))))
    return {"table": table, "key": key, "root": root}


def test_off_a_terminal_evaluate_prints_a_tsv_that_pandas_reads(scored):
    done = adfd("evaluate", str(scored["table"]))
    assert done.returncode == 0, done.stderr
    assert not any(c in done.stdout for c in "┏━│└")
    frame = pd.read_csv(io.StringIO(done.stdout), sep="\t")
    assert list(frame["attack"]) == ["pooled", "A07", "A08"]
    assert {"eer", "auc", "balanced_accuracy", "bonafide_error", "spoof_error", "min_dcf"} <= set(frame.columns)
    as_json = json.loads(adfd("evaluate", str(scored["table"]), "--json").stdout)
    assert frame["eer"][0] == pytest.approx(as_json["eer"], rel=1e-5)


def test_on_a_terminal_evaluate_draws_tables(scored):
    primary, secondary = pty.openpty()
    done = subprocess.run([*ADFD, "evaluate", str(scored["table"])], stdout=secondary, stderr=subprocess.PIPE,
                          env={**os.environ, "COLUMNS": "120"}, timeout=120, check=False)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    shown = b"".join(chunks).decode()
    assert done.returncode == 0, done.stderr
    assert "┏" in shown and "balanced accuracy" in shown and "\t" not in shown


def test_balanced_accuracy_gives_away_a_model_that_calls_everything_spoof(tmp_path):
    # 9 spoofs per bona fide, every score below 0: 90 % accurate, 50 % balanced, every bona fide rejected
    table = tmp_path / "lazy.tsv"
    scores = -1.0 - np.linspace(0, 1, 100)
    write_scores(ScoreTable.build([f"u{i}" for i in range(100)], scores, labels=["bonafide"] * 10 + ["spoof"] * 90), table)
    r = json.loads(adfd("evaluate", str(table), "--json").stdout)
    assert r["accuracy"] == pytest.approx(0.9)
    assert r["balanced_accuracy"] == pytest.approx(0.5)
    assert (r["bonafide_error"], r["spoof_error"]) == (1.0, 0.0)


def test_the_eer_interval_is_seeded_and_says_what_it_resampled(scored):
    args = ("evaluate", str(scored["table"]), "--ci", "--resamples", "200", "--json")
    first, again, other = (json.loads(adfd(*args, *seed).stdout) for seed in ((), (), ("--seed", "7")))
    low, high = first["eer_ci"]
    assert low <= first["eer"] <= high and low < high
    assert first["eer_ci"] == again["eer_ci"] and first["eer_ci"] != other["eer_ci"]
    assert first["ci"]["resamples"] == 200 and first["ci"]["level"] == 0.95
    assert first["ci"]["resampled"].startswith("recordings") and first["ci"]["by"] is None
    assert all(len(g["eer_ci"]) == 2 for g in first["groups"].values())
    tsv = pd.read_csv(io.StringIO(adfd(*args[:-1]).stdout), sep="\t")
    assert tsv["eer_ci_low"][0] == pytest.approx(low, rel=1e-5) and tsv["eer_ci_high"][0] == pytest.approx(high, rel=1e-5)


def test_the_interval_can_resample_whole_speakers(scored):
    done = adfd("evaluate", str(scored["table"]), "--key", str(scored["key"]), "--ci", "--ci-by", "speaker",
                "--resamples", "50", "--json")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["ci"]["by"] == "speaker" and r["ci"]["resampled"].startswith("values of speaker")
    assert r["eer_ci"][0] <= r["eer"] <= r["eer_ci"][1]
    alone = adfd("evaluate", str(scored["table"]), "--ci-by", "speaker")
    assert alone.returncode == 2 and "--ci" in alone.stderr


def test_the_breakdown_takes_any_column_of_the_key_pooled_and_per_group(scored):
    done = adfd("evaluate", str(scored["table"]), "--key", str(scored["key"]), "--by", "source", "--json")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["by"] == "source" and list(r["groups"]) == ["phone", "studio"]
    phone, studio = r["groups"]["phone"], r["groups"]["studio"]
    assert phone["versus"] == "own" and phone["n_bonafide"] + studio["n_bonafide"] == r["n_bonafide"] == 60
    assert phone["n_spoof"] + studio["n_spoof"] == 60
    frame = pd.read_csv(io.StringIO(adfd("evaluate", str(scored["table"]), "--key", str(scored["key"]), "--by", "source").stdout), sep="\t")
    assert list(frame["source"]) == ["pooled", "phone", "studio"]


def test_grouping_by_a_missing_column_is_a_usage_error(scored):
    done = adfd("evaluate", str(scored["table"]), "--by", "family")
    assert done.returncode == 2 and done.stdout == ""
    assert "--by" in done.stderr and "'family'" in done.stderr and "attack" in done.stderr


def _hand_case(root):
    """The hand-worked case of tests/core/test_tdcf.py: ASV EER threshold 1 (P_miss 0, P_fa 1/4, spoof P_fa 1/2);
    CM bona fide 3 1, spoof -1 2, whose utterances the ASV scored 1.5 and 5 (its spoof trials LA_E_9, LA_E_10)."""
    asv = root / "asv.txt"
    asv.write_text("".join(f"LA_0001 LA_E_{k} {key} {s}\n" for k, (key, s) in enumerate(
        [("target", t) for t in (1, 2, 3, 4)] + [("nontarget", n) for n in (-2, -1, 0, 2.5)]
        + [("spoof", s) for s in (0, 1.5, 5, -3)])))
    cm = root / "cm.txt"  # ASVspoof 2019 CM score format: ID ATTACK KEY SCORE
    cm.write_text("LA_E_1 - bonafide 3\nLA_E_2 - bonafide 1\nLA_E_9 A07 spoof -1\nLA_E_10 A07 spoof 2\n")
    return cm, asv


def test_min_tdcf_from_an_asv_score_file_matches_the_hand_computed_values(tmp_path):
    cm, asv = _hand_case(tmp_path)
    done = adfd("evaluate", str(cm), "--asv-scores", str(asv), "--json")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["min_tdcf_2019"] == pytest.approx(0.5)  # 0.125 / min(0.91675, 0.25)
    assert r["min_tdcf_2021"] == pytest.approx(0.14875 / 0.27375)  # (C0 + C2 / 2) / (C0 + C2)
    assert (r["asv"]["eer"], r["asv"]["threshold"], r["asv"]["p_fa_spoof"]) == (0.25, 1.0, 0.5)
    # A07's own ASV spoof trials (1.5, 5) are all accepted: C2 = 0.5, so 2021: (C0 + C2 / 2) / (C0 + C2)
    a07 = r["groups"]["A07"]
    assert a07["asv_n_spoof"] == 2 and a07["min_tdcf_2021"] == pytest.approx(0.27375 / 0.52375)
    assert a07["min_tdcf_2019"] == pytest.approx(0.5)  # 0.25 / min(0.91675, 0.5)
    tsv = pd.read_csv(io.StringIO(adfd("evaluate", str(cm), "--asv-scores", str(asv)).stdout), sep="\t")
    assert tsv["min_tdcf_2021"][0] == pytest.approx(0.14875 / 0.27375, rel=1e-5)


def test_an_unusable_asv_score_file_is_one_line_naming_it(tmp_path):
    cm, _ = _hand_case(tmp_path)
    bad = tmp_path / "asv-bad.txt"
    bad.write_text("LA_0001 LA_E_1 target 1.0\nLA_0001 LA_E_2 nontarget 0.0\n")
    done = adfd("evaluate", str(cm), "--asv-scores", str(bad))
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"adfd: error: {bad}: no spoof trials; the t-DCF needs target, nontarget and spoof ASV scores"


def test_the_plot_is_titled_with_the_system_and_the_data(scored, tmp_path):
    from PIL import Image

    png = tmp_path / "eval.png"
    done = adfd("evaluate", str(scored["table"]), "--key", str(scored["key"]), "--plot", str(png))
    assert done.returncode == 0, done.stderr
    assert Image.open(png).text["Title"] == "cnn.v1 on scores.tsv (labels of manifest.tsv): 60 bona fide, 60 spoof"


def test_a_tab_in_a_group_name_cannot_break_a_row(tmp_path):
    table = tmp_path / "odd.tsv"
    write_scores(ScoreTable.build(["a", "b", "c"], [1.0, -1.0, 0.5], labels=["bonafide", "spoof", "spoof"],
                                  attacks=["-", "tts\tv2", "vc"]), table)
    done = adfd("evaluate", str(table))
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert len({len(row) for row in rows}) == 1 and [row[0] for row in rows] == ["attack", "pooled", "tts\\tv2", "vc"]
