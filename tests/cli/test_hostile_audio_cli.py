"""`adfd score` and `featurize` over files that once stopped a batch or were read in silence (issue 15):
each decodes and is scored, a damaged one with a one-line warning naming it, and the tables read back."""

from __future__ import annotations

import io
import math
import os
from types import SimpleNamespace

import pytest

import audio_factory
from adfd_core.escaping import escape
from adfd_core.scoretable import read_scores
from adfd_core.store import FeatureFile
from model_factory import tiny_model

from .helpers import adfd, make_corpus, make_odd_files


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd")
    make_corpus(root / "corpus", audio_factory, n_real=1, n_fake=1, seconds=1.0)
    files = make_odd_files(root / "corpus")
    return SimpleNamespace(root=root, corpus=root / "corpus", files=files, model=tiny_model(root / "m.safetensors", "stft-lf", seed=3))


def _assert_warned_about_the_cut_files_only(stderr: str, files: dict) -> None:
    warned = [line for line in stderr.splitlines() if line.startswith("warning: ")]
    for name in ("cut-mp3", "cut-opus"):
        assert any(line.startswith(f"warning: {files[name]}: ") and "ended early" in line for line in warned), stderr
    assert all(str(files["cut-mp3"]) in line or str(files["cut-opus"]) in line for line in warned), warned
    assert all(line.startswith("warning: ") for line in stderr.splitlines() if "Xing" in line)  # libmpg123: never raw


@pytest.mark.parametrize("fmt", ["tsv", "asvspoof2021"])
def test_odd_files_are_all_scored_and_named_exactly(odd, fmt):
    done = adfd("score", str(odd.corpus), "-m", str(odd.model), "--format", fmt, "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr and "failed" not in done.stderr
    _assert_warned_about_the_cut_files_only(done.stderr, odd.files)
    table = read_scores(io.StringIO(done.stdout))
    assert len(table) == 2 + len(odd.files) and not any(math.isnan(s) for s in table.scores)
    expected = {os.path.splitext(os.path.relpath(p, odd.corpus))[0] for p in odd.files.values()}
    assert expected <= set(table.ids)  # the non-UTF-8 and the line-break names came back as they are
    if fmt == "tsv":
        assert {str(p) for p in odd.files.values()} <= set(table.paths)
        assert f"\t{escape(str(odd.files['newline']))}\t" in done.stdout


def test_odd_files_are_all_featurized(odd, tmp_path):
    out = tmp_path / "f.h5"
    done = adfd("featurize", str(odd.corpus), "-o", str(out), "-f", "stft-lf")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    _assert_warned_about_the_cut_files_only(done.stderr, odd.files)
    with FeatureFile(out) as ff:
        paths = {str(u.utterance.path) for u in ff.utterances()}
    assert {str(p) for p in odd.files.values()} <= paths
