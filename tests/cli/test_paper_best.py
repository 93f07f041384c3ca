"""The paper's best five-model ensemble, as recipes/paper_best.sh runs it, on a generated corpus with tiny models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adfd_core.scoretable import read_scores
from feature_factory import spectral_corpus
from model_factory import save_whisper

from .helpers import adfd

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "paper_best.sh"


@pytest.mark.slow
def test_the_documented_pipeline_runs_end_to_end(tmp_path):
    sets = [spectral_corpus(tmp_path / name, n, seed=seed) for name, n, seed in (("train", 8, 0), ("val", 4, 1), ("test", 4, 2))]
    whisper = save_whisper(tmp_path / "whisper")
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # this venv's adfd
        "WHISPER": str(whisper),
        "TRAIN_OPTS": "--epochs 2 --batch-size 8 --device cpu",
        "CNN_OPTS": "--set channels=4,8,8 --set dense=16",
        "CONVNEXT_OPTS": "--set input_size=none",
    }
    done = subprocess.run(["bash", str(RECIPE), *map(str, sets), str(out)], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    models = ["cqt-cnn", "stft-lf-cnn", "stft-gam-cnn", "stft-lf-convnext", "whisper-mlp"]
    for name in models:
        info = json.loads(adfd("info", str(out / f"{name}.safetensors"), "--json").stdout)
        assert info["training"]["train"]["feature"] == name.rsplit("-", 1)[0]
    fused = read_scores(out / "test-scores.tsv")
    assert len(fused.ids) == 8 and {"bonafide", "spoof"} == set(fused.labels)
    metrics = json.loads((out / "test-metrics.json").read_text())
    assert 0.0 <= metrics["eer"] <= 1.0 and metrics["n_bonafide"] == 4

    # The same five models score new recordings from their audio: every feature, Whisper's included, computed on the fly.
    from_audio = adfd("score", str(sets[2]), *[a for n in models for a in ("-m", str(out / f"{n}.safetensors"))], "--device", "cpu")
    assert from_audio.returncode == 0, from_audio.stderr
    by_audio = dict(zip(*_ids_and_p(from_audio.stdout)))
    by_file = dict(zip(fused.ids, fused.p_spoof))
    assert by_audio.keys() == by_file.keys()
    assert all(abs(by_audio[k] - by_file[k]) < 1e-4 for k in by_file)


def test_the_recipe_trains_table_threes_five_members_and_fuses_them(tmp_path):
    """The recipe's commands, recorded by a stand-in `adfd`: C7 (ConvNeXt-Tiny) on STFT&LF as Table III has it."""
    stub = tmp_path / "bin" / "adfd"
    stub.parent.mkdir()
    stub.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "$ADFD_CALLS"\n')
    stub.chmod(0o755)
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}", "ADFD_CALLS": str(calls)}
    done = subprocess.run(["bash", str(RECIPE), "tr", "va", "te", "out"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    trained = {}
    for line in calls.read_text().splitlines():
        words = line.split()
        if words[0] == "train":
            trained[words[words.index("-m") + 1], words[words.index("-f") + 1]] = words[words.index("-o") + 1]
        if words[0] == "score":
            fused = [words[i + 1] for i, w in enumerate(words) if w == "-m"]
    assert set(trained) == {("cnn.v1", "cqt"), ("cnn.v1", "stft-lf"), ("cnn.v1", "stft-gam"), ("convnext_tiny.v1", "stft-lf"),
                            ("mlp.v1", "whisper")}  # fmt: skip
    assert sorted(fused) == sorted(trained.values())
    header = RECIPE.read_text().split("set -euo")[0]
    assert "defaults are the paper's" not in header and "the paper\n#                  gives no epochs" in header


def _ids_and_p(tsv: str) -> tuple[list[str], list[float]]:
    rows = [line.split("\t") for line in tsv.splitlines() if line and not line.startswith("#")]
    header, body = rows[0], rows[1:]
    return [r[header.index("id")] for r in body], [float(r[header.index("p_spoof")]) for r in body]
