"""`adfd bundle`: a back-end on whisper rows and its network -> one model file that `adfd score` runs alone."""

from __future__ import annotations

import io
import shutil

import pytest

from adfd_core.scoretable import read_scores
from model_factory import save_whisper, tiny_model, whisper_backend

from .helpers import adfd


def test_bundled_file_scores_without_the_whisper_folder(tmp_path, make_audio):
    whisper = save_whisper(tmp_path / "whisper")
    backend = whisper_backend(tmp_path / "mlp.safetensors", whisper, {"layers": [1], "pooling": "mean+std"}, "mlp.v1")
    wav = make_audio.write(tmp_path / "a.wav", make_audio.vowel(seconds=3.5))
    two_step = adfd("score", "-m", str(backend), str(wav))
    assert two_step.returncode == 0, two_step.stderr

    out = tmp_path / "bundled.safetensors"
    done = adfd("bundle", str(backend), "--whisper", str(whisper), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "whisper-probe.v1" in done.stderr
    shutil.rmtree(whisper)  # the bundled file needs no folder
    one_file = adfd("score", "-m", str(out), str(wav))
    assert one_file.returncode == 0, one_file.stderr
    want, got = read_scores(io.StringIO(two_step.stdout)), read_scores(io.StringIO(one_file.stdout))
    assert got.p_spoof.tolist() == pytest.approx(want.p_spoof.tolist(), abs=1e-4)

    again = adfd("bundle", str(backend), "--whisper", str(whisper), "-o", str(out))
    assert again.returncode == 2 and "exists; pass --force" in again.stderr


def test_bundle_of_other_rows_is_one_line_error(tmp_path):
    cqt = tiny_model(tmp_path / "cqt.safetensors", frontend="cqt")
    done = adfd("bundle", str(cqt), "--whisper", str(tmp_path), "-o", str(tmp_path / "x.safetensors"))
    assert done.returncode == 1
    assert "trained on 'cqt' rows; bundle takes a back-end trained on whisper rows" in done.stderr
    assert "Traceback" not in done.stderr
