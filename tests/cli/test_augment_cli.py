"""Augmented training data from the command line: `featurize --augment-copies` writes seeded degraded
copies of every utterance, the same ones in any run, and `train` records the augmentation it used."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adfd_core.store import FeatureFile

from .helpers import adfd, make_corpus

COPIES = 2
TINY_FDL = ["-m", "fdl.v1", "--set", "width=8", "--set", "crop_seconds=0.5", "--epochs", "1", "--batch-size", "8",
            "--device", "cpu"]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """A 6-file corpus featurized (-f wave) plainly, with copies, and with copies again using 2 jobs."""
    import audio_factory

    root = tmp_path_factory.mktemp("augment")
    make_corpus(root / "corpus", audio_factory, seconds=1.0)
    files = {"plain": root / "plain.h5", "copies": root / "copies.h5", "jobs2": root / "jobs2.h5"}
    runs = {
        "plain": [],
        "copies": ["--augment-copies", str(COPIES), "--augment-seed", "5"],
        "jobs2": ["--augment-copies", str(COPIES), "--augment-seed", "5", "--jobs", "2"],
    }
    for name, extra in runs.items():
        done = adfd("featurize", str(root / "corpus"), "-o", str(files[name]), "-f", "wave", *extra)
        assert done.returncode == 0, done.stderr
    return {"root": root, **files}


def _contents(path) -> tuple[list, dict[str, np.ndarray]]:
    with FeatureFile(path) as ff:
        utts = ff.utterances()
        return utts, {s.utterance.id: ff.rows("wave", i) for i, s in enumerate(utts)}


def test_copies_follow_each_utterance_with_its_label_group_and_degradation(made):
    plain, plain_waves = _contents(made["plain"])
    utts, waves = _contents(made["copies"])
    assert len(utts) == (COPIES + 1) * len(plain)
    for i, original in enumerate(plain):
        u = original.utterance
        block = [s.utterance for s in utts[i * (COPIES + 1) : (i + 1) * (COPIES + 1)]]
        assert [c.id for c in block] == [u.id, *(f"{u.id}~aug{k}" for k in range(1, COPIES + 1))]
        assert block[0] == u and np.array_equal(waves[u.id], plain_waves[u.id])  # the original is untouched
        for copy in block[1:]:
            assert (copy.label, copy.attack, copy.speaker, copy.path) == (u.label, u.attack, u.speaker, u.path)
            assert copy.group == u.id  # the corpus has no groups: a copy groups with its original
            assert copy.meta["augment_of"] == u.id and copy.meta["augment"].split("(")[0] in (
                "codec", "band", "noise", "reverb", "gain", "silence")
            assert not np.array_equal(waves[copy.id][: len(waves[u.id])], waves[u.id][: len(waves[copy.id])])
    with FeatureFile(made["copies"]) as ff:
        recorded = ff.provenance["augment"]
    assert recorded["copies"] == COPIES and recorded["seed"] == 5 and "snr_db" in recorded["chain"]


def test_copies_are_identical_across_runs_and_jobs(made, tmp_path):
    utts, waves = _contents(made["copies"])
    again = tmp_path / "again.h5"
    done = adfd("featurize", str(made["root"] / "corpus"), "-o", str(again), "-f", "wave",
                "--augment-copies", str(COPIES), "--augment-seed", "5")
    assert done.returncode == 0, done.stderr
    for other in (again, made["jobs2"]):
        other_utts, other_waves = _contents(other)
        assert [s.utterance for s in other_utts] == [s.utterance for s in utts]
        assert all(np.array_equal(other_waves[k], waves[k]) for k in waves)
    reseeded = tmp_path / "reseeded.h5"
    assert adfd("featurize", str(made["root"] / "corpus"), "-o", str(reseeded), "-f", "wave",
                "--augment-copies", str(COPIES), "--augment-seed", "6").returncode == 0
    _, reseeded_waves = _contents(reseeded)
    assert sum(not np.array_equal(reseeded_waves[k], waves[k]) for k in waves if "~aug" in k) >= len(waves) // 2


def test_a_plain_output_is_not_taken_for_an_augmented_one(made):
    done = adfd("featurize", str(made["root"] / "corpus"), "-o", str(made["plain"]), "-f", "wave", "--augment-copies", "1")
    assert done.returncode == 1 and "--force" in done.stderr and "Traceback" not in done.stderr


def test_train_records_the_augmentation_in_the_model_file_and_log(made, tmp_path):
    from adfd_core.modelfile import load_model

    out = tmp_path / "fdl.safetensors"
    done = adfd("train", str(made["copies"]), "--val", str(made["plain"]), "-o", str(out), "--augment", *TINY_FDL)
    assert done.returncode == 0, done.stderr
    _, info = load_model(out)
    chain = info.training["augment"]
    assert chain["probability"] == 0.8 and "noise" in chain["kinds"]
    assert "codec" not in chain["kinds"]  # fdl.v1 learns compression pseudo-labels: no unlabelled compression
    assert info.training["options"]["augment"] is True
    assert info.training["train"]["augmented_copies"]["copies"] == COPIES
    assert info.training["val"]["augmented_copies"] is None
    logged = json.loads((tmp_path / "fdl.train.json").read_text())
    assert logged["augment"] == chain and logged["train"]["augmented_copies"]["seed"] == 5

    scored = adfd("score", "--features", str(made["copies"]), "-m", str(out), "--device", "cpu")
    assert scored.returncode == 0, scored.stderr
    warning = " ".join(scored.stderr.split())
    assert "2 degraded copies of each utterance, made for training" in warning  # not taken for plain recordings
    rows = [line.split("\t")[0] for line in scored.stdout.splitlines() if line and not line.startswith("#")][1:]
    assert len(rows) == 6 * (COPIES + 1) and sum("~aug" in r for r in rows) == 6 * COPIES


def test_train_augment_refuses_a_segment_model(made, tmp_path):
    done = adfd("train", str(made["plain"]), "-m", "cnn.v1", "--augment", "-o", str(tmp_path / "m.safetensors"), "--device", "cpu")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--augment-copies" in lines[0] and "Traceback" not in done.stderr
