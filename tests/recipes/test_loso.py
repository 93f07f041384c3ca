"""recipes/loso.py: how sources are dealt into folds, and the leave-one-source-out report and calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adfd_core.calibration import Calibration
from adfd_core.scoretable import ScoreTable, read_provenance, read_scores, write_scores
from scripts import load_script

@pytest.fixture(scope="module")
def loso():
    return load_script("recipes/loso.py")


def test_every_source_is_held_out_exactly_once(loso):
    sizes = {"a": 50, "b": 40, "c": 30, "d": 20, "e": 10}
    folds = loso.fold_sources(sizes, 2)
    assert sorted(s for f in folds for s in f) == sorted(sizes)
    assert sorted(sum(sizes[s] for s in f) for f in folds) == [70, 80]
    assert loso.fold_sources(sizes, 0) == [["a"], ["b"], ["c"], ["d"], ["e"]]


def _corpus(tmp_path: Path) -> tuple[Path, Path]:
    """A joined manifest of three sources and an out-of-fold table whose scores separate the classes,
    except that source s3's bona fide recordings score like spoof."""
    rng = np.random.default_rng(0)
    manifest = tmp_path / "manifest.tsv"
    ids, scores, labels = [], [], []
    lines = ["id\tpath\tlabel\tfamily\tsystem\tsource\tgroup\tspeaker\tlanguage\tset"]
    for source in ("s1", "s2", "s3"):
        for k in range(40):
            label = "bonafide" if k % 2 else "spoof"
            utt = f"{source}:{k}"
            shift = {"bonafide": 2.0, "spoof": -2.0}[label] if source != "s3" or label == "spoof" else -4.0
            ids.append(utt), labels.append(label), scores.append(shift + rng.normal(0, 0.5))
            lines.append(f"{utt}\t/x/{utt}.wav\t{label}\t-\t-\t{source}\t{utt}\t-\tund\tt")
    manifest.write_text("\n".join(lines) + "\n")
    table = tmp_path / "oof.tsv"
    write_scores(ScoreTable.build(ids, np.array(scores), labels=labels), table)
    return manifest, table


def test_the_report_finds_the_source_that_fails_and_thresholds_each_source_on_the_others(loso, tmp_path, capsys):
    manifest, table = _corpus(tmp_path)
    results = loso.report(manifest, [table], fuse=False, target_fa=0.05, out_json=tmp_path / "r.json")
    r = results["oof"]
    assert r["sources"]["s1"]["eer"] == 0.0 and r["sources"]["s2"]["eer"] == 0.0
    assert r["sources"]["s3"]["eer"] > 90  # its bona fide score below its spoof
    assert r["sources"]["s3"]["false_alarm"] == 100.0  # every bona fide of s3 is called spoof
    assert r["sources"]["s1"]["false_alarm"] <= 10.0
    assert json.loads((tmp_path / "r.json").read_text())["oof"]["n_bonafide"] == 60
    assert "| oof |" in capsys.readouterr().out


def test_calibrate_writes_a_calibration_that_score_reads(loso, tmp_path):
    manifest, table = _corpus(tmp_path)
    loso.calibrate(manifest, [table], ["member.safetensors"], 0.05, tmp_path / "cal.json")
    cal = Calibration.load(tmp_path / "cal.json")
    assert cal.members == ("member.safetensors",) and cal.weights[0] > 0
    assert cal.measured["protocol"] == "leave-one-source-out" and set(cal.measured["per_source"]) == {"s1", "s2", "s3"}


def test_join_keeps_every_utterance_and_row_of_its_inputs_in_order(loso, tmp_path):
    from adfd_core.store import FeatureFile
    from feature_factory import random_features

    a, b = random_features(tmp_path / "a.h5", 4, seed=1), random_features(tmp_path / "b.h5", 3, seed=2)
    loso.join(tmp_path / "ab.h5", [a, b])
    with FeatureFile(tmp_path / "ab.h5") as ab, FeatureFile(a) as fa, FeatureFile(b) as fb:
        assert ab.column("id") == fa.column("id") + fb.column("id")
        expected = np.concatenate([fa.all_rows("toy"), fb.all_rows("toy")])
        np.testing.assert_array_equal(ab.all_rows("toy"), expected)
        assert [ab.rows("toy", 5).shape[0]] == [fb.rows("toy", 1).shape[0]]
    other = random_features(tmp_path / "c.h5", 2, seed=3, spec_params={"hop_length": 256})
    with pytest.raises(SystemExit, match="other front-ends"):
        loso.join(tmp_path / "ac.h5", [a, other])


def test_join_can_leave_out_whole_sources(loso, tmp_path):
    from adfd_core.corpus import Utterance
    from adfd_core.store import FeatureFile, FeatureWriter, StoredUtterance

    spec = {"name": "toy", "version": 1, "params": {"sample_rate": 16000, "segment_seconds": 2.0}, "row_shape": [1, 2, 2]}
    writer = FeatureWriter.open(tmp_path / "s.h5", {"toy": spec}, identity="s", provenance={"test": True})
    for i, source in enumerate(["keep", "gen", "keep", "gen"]):
        writer.add_rows("toy", np.full((1, 1, 2, 2), i, dtype=np.float32))
        utt = Utterance(id=f"u{i}", path=Path(f"/x/u{i}.wav"), label="spoof", group=f"g{i}", meta={"source": source})
        writer.end_utterance(StoredUtterance(utt, content_hash=f"{i:064x}", duration_s=2.0))
    loso.join(tmp_path / "kept.h5", [writer.finish()], drop=["gen"])
    with FeatureFile(tmp_path / "kept.h5") as ff:
        assert ff.column("id") == ["u0", "u2"]
        assert ff.all_rows("toy")[:, 0, 0, 0].tolist() == [0.0, 2.0]


def test_the_folds_tables_join_into_one_plain_table_with_the_first_ones_provenance(loso, tmp_path):
    parts = []
    for k, ids in enumerate((["a", "b"], ["c"])):
        parts.append(tmp_path / f"part{k}.tsv")
        write_scores(ScoreTable.build(ids, np.arange(len(ids), dtype=float), provenance={"fold": k}), parts[-1])
    out = tmp_path / "oof.tsv"
    loso._concatenate(parts, out)
    assert out.read_text().splitlines()[0].startswith("id\tpath\tscore")
    assert read_scores(out).ids == ["a", "b", "c"] and read_provenance(out) == ({"fold": 0}, "sidecar")


def test_each_fold_starts_from_its_own_pretrained_file(loso):
    overrides = [("finetune_blocks", "1")]
    assert loso.fold_overrides(overrides, "starts/{fold}.safetensors", "s1+s2") == (
        ("finetune_blocks", "1"), ("pretrained", "starts/s1+s2.safetensors"))
    assert loso.fold_overrides(overrides, "default.safetensors", "s3")[-1] == ("pretrained", "default.safetensors")
    assert loso.fold_overrides(overrides, None, "s3") == (("finetune_blocks", "1"),)
