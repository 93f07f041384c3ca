"""`adfd score` end to end, as a user runs it: formats on stdout, failures, pipes, feature files, errors.

Every model here is a tiny untrained cnn.v1 saved by tests/model_factory.py (never the bundled one),
and each `adfd` run is a subprocess that costs a second or two of start-up, so runs are shared.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import shlex
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest

import audio_factory
from adfd_core.corpus import read_corpus
from adfd_core.featurize import FeaturizeOptions, featurize
from adfd_core.fusion import mean_fusion
from adfd_core.metrics import class_scores, eer
from adfd_core.scoretable import read_scores
from model_factory import tiny_model

from .helpers import ADFD, adfd, make_bad_files, make_corpus

COLUMNS = "id\tpath\tscore\tp_spoof\tdecision\tlabel\tattack"
SEGMENTS = re.compile(r"^\d+\.\d\d-\d+\.\d\d:[01]\.\d{4}(;\d+\.\d\d-\d+\.\d\d:[01]\.\d{4})*$")


@pytest.fixture(scope="module")
def s(tmp_path_factory):
    """A labelled corpus of six clips, a corpus of three good and four bad files, two models on two front-ends."""
    root = tmp_path_factory.mktemp("score")
    make_corpus(root / "corpus", audio_factory, seconds=2.5)
    make_corpus(root / "mixed", audio_factory, n_real=1, n_fake=2, seconds=1.5)
    bad = make_bad_files(root / "mixed")
    return SimpleNamespace(
        root=root, corpus=root / "corpus", mixed=root / "mixed", bad=bad,
        stft=tiny_model(root / "stft.safetensors", "stft-lf", seed=1),
        cqt=tiny_model(root / "cqt.safetensors", "cqt", seed=2),
    )


@pytest.fixture(scope="module")
def tsv(s):
    """`adfd score CORPUS -m stft.safetensors` (the default format, stdout)."""
    return adfd("score", str(s.corpus), "-m", str(s.stft))


@pytest.fixture(scope="module")
def other(s):
    """The cqt model's table of the same corpus, written with -o."""
    out = s.root / "other.tsv"
    return out, adfd("score", str(s.corpus), "-m", str(s.cqt), "-o", str(out))


def _table(text: str):
    return read_scores(io.StringIO(text))


def test_tsv_on_stdout_holds_data_only_and_matches_the_library(s, tsv):
    assert tsv.returncode == 0, tsv.stderr
    assert "Traceback" not in tsv.stderr and "failed" not in tsv.stderr
    lines = tsv.stdout.splitlines()
    assert lines[0] == COLUMNS and len(lines) == 7  # header + one row per recording, nothing else
    table = _table(tsv.stdout)
    fakes = ["spoof/hifigan/fake0", "spoof/hifigan/fake2", "spoof/melgan/fake1"]
    assert table.ids == [f"bonafide/spk1/real{i}" for i in range(3)] + fakes
    assert table.labels == ["bonafide"] * 3 + ["spoof"] * 3
    assert table.attacks == ["-"] * 3 + ["hifigan", "hifigan", "melgan"]
    assert "error" not in table.extra and "segments" not in table.extra

    import torch

    from adfd_core.scoring import load_models, score_audio

    cpu = torch.device("cpu")
    expected = score_audio(read_corpus(s.corpus), load_models([s.stft], cpu), cpu)
    assert table.p_spoof == pytest.approx([r.p_spoof for r in expected], abs=1e-6)
    assert table.scores == pytest.approx([math.log((1 - r.p_spoof) / r.p_spoof) for r in expected], abs=1e-5)
    assert table.decisions == ["spoof" if r.p_spoof > 0.5 else "bonafide" for r in expected]


@pytest.mark.parametrize("fmt", ["jsonl", "asvspoof2019", "asvspoof2021", "asvspoof5"])
def test_every_format_reads_back_with_the_same_scores(s, tsv, fmt):
    done = adfd("score", str(s.corpus), "-m", str(s.stft), "--format", fmt)
    assert done.returncode == 0, done.stderr
    assert not any(line.startswith("#") for line in done.stdout.splitlines())  # official scorers read these as they are
    ours, theirs = _table(tsv.stdout), _table(done.stdout)
    assert theirs.ids == ours.ids
    assert theirs.scores.tolist() == ours.scores.tolist()  # written so they read back exactly
    if fmt in ("jsonl", "asvspoof2019"):
        assert (theirs.labels, theirs.attacks) == (ours.labels, ours.attacks)
    if fmt == "jsonl":
        assert theirs.p_spoof.tolist() == ours.p_spoof.tolist()
        assert json.loads(done.stdout.splitlines()[0])["path"].endswith("real0.wav")


def test_bad_inputs_get_rows_with_errors_are_named_and_exit_3(s):
    done = adfd("score", str(s.mixed), "-m", str(s.stft), "--segments", "--jobs", "2")
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    failed = [line for line in done.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == len(s.bad)
    for path in s.bad.values():
        assert any(line.startswith(f"failed: {path}: ") for line in failed), done.stderr
    assert f"3 recordings scored, {len(s.bad)} failed" in done.stderr
    assert "failed" not in done.stdout.replace("\terror", "")

    table = _table(done.stdout)
    assert len(table) == 3 + len(s.bad)  # every recording has a row
    bad_paths = {str(p) for p in s.bad.values()}
    for i, path in enumerate(table.paths):
        error, timeline = table.extra["error"][i], table.extra["segments"][i]
        if path in bad_paths:
            assert error and math.isnan(table.scores[i]) and table.decisions[i] == "-" and timeline == ""
        else:
            assert error == "" and not math.isnan(table.scores[i])
            assert SEGMENTS.match(timeline), timeline  # 1.5-s clips: one segment spanning them
            assert timeline.startswith("0.00-1.50:")


def test_output_file_records_the_model_and_its_hash(s, other):
    out, done = other
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert out.read_text().startswith(COLUMNS + "\n")  # the table holds data only; its provenance lies beside it
    made = json.loads(out.with_name("other.tsv.meta.json").read_text())
    assert made["models"] == [{"path": str(s.cqt), "model": "cnn.v1", "sha256": hashlib.sha256(s.cqt.read_bytes()).hexdigest()}]
    assert "score" in made["command"] and len(made["identity"]) == 64
    assert len(read_scores(out)) == 6


def test_score_fuse_evaluate_in_one_pipe(s, tsv, other):
    out, made = other
    assert made.returncode == 0, made.stderr
    adfd_cmd = shlex.join(ADFD)
    line = (f"set -o pipefail; {adfd_cmd} score {shlex.quote(str(s.corpus))} -m {shlex.quote(str(s.stft))}"
            f" | {adfd_cmd} fuse - {shlex.quote(str(out))} | {adfd_cmd} evaluate - --json")
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["n_bonafide"], result["n_spoof"]) == (3, 3)
    fused = mean_fusion([_table(tsv.stdout), read_scores(out)])
    assert result["eer"] == pytest.approx(eer(*class_scores(fused))[0])


def test_scoring_a_feature_file(s, tsv):
    feats = s.root / "feats.h5"
    featurize(read_corpus(s.corpus), feats, FeaturizeOptions(features=("stft-lf",), device="cpu"))
    done = adfd("score", "--features", str(feats), "-m", str(s.stft))
    assert done.returncode == 0, done.stderr
    ours, theirs = _table(tsv.stdout), _table(done.stdout)
    assert theirs.ids == ours.ids and theirs.labels == ours.labels
    np.testing.assert_allclose(theirs.p_spoof, ours.p_spoof, rtol=0, atol=1e-5)


def test_a_recording_whose_rows_give_no_finite_score_fails_with_exit_3(s, tsv):
    import h5py

    feats = s.root / "nan-feats.h5"
    featurize(read_corpus(s.corpus), feats, FeaturizeOptions(features=("stft-lf",), device="cpu"))
    with h5py.File(feats, "r+") as h5:
        h5["features/stft-lf/data"][0] = np.nan  # the first recording's first row
    done = adfd("score", "--features", str(feats), "-m", str(s.stft))
    assert done.returncode == 3, done.stderr
    table = _table(done.stdout)
    assert math.isnan(table.scores[0]) and "not finite" in table.extra["error"][0]
    assert not np.isnan(table.scores[1:]).any() and "Traceback" not in done.stderr
    assert any(line.startswith("failed: ") and "not finite" in line for line in done.stderr.splitlines()), done.stderr


@pytest.mark.parametrize(
    "args, hint",
    [
        ([], "INPUT"),
        (["--features", "feats.h5", "corpus"], "--features"),
        (["corpus", "--format", "csv"], "--format"),
    ],
    ids=["no-input", "features-and-input", "unknown-format"],
)
def test_usage_errors_exit_2(s, args, hint):
    done = adfd("score", *args, "-m", str(s.stft), cwd=s.root)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert hint in done.stderr and "Traceback" not in done.stderr


def test_a_model_file_of_random_bytes_is_one_line_naming_it(s, tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    done = adfd("score", str(s.corpus), "-m", str(junk))
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(junk) in lines[0], done.stderr
    assert "Traceback" not in done.stderr
