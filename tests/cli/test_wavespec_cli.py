"""`adfd train -m wavespec.v1` without its Wav2Vec2 weights: one line that says how to get them."""

from __future__ import annotations

import audio_factory

from .helpers import adfd


def test_a_pretrained_folder_that_does_not_exist_is_named_with_the_hf_download_hint(tmp_path):
    audio_factory.write(tmp_path / "c" / "bonafide" / "a.wav", audio_factory.vowel(120, seconds=1.2))
    audio_factory.write(tmp_path / "c" / "spoof" / "x" / "b.wav", audio_factory.chirp(200, 5000, seconds=1.2))
    feats = tmp_path / "w.h5"
    assert adfd("featurize", str(tmp_path / "c"), "-o", str(feats), "-f", "wave").returncode == 0
    absent = tmp_path / "no" / "such" / "folder"
    done = adfd("train", str(feats), "--val", str(feats), "-m", "wavespec.v1", "--set", f"pretrained={absent}",
                "-o", str(tmp_path / "m.safetensors"))
    assert done.returncode == 1
    assert f"({absent}: no such folder)" in done.stderr
    assert "`hf download facebook/wav2vec2-xls-r-300m`" in done.stderr  # the command huggingface_hub installs now
    assert "huggingface-cli" not in done.stderr and "Repo id" not in done.stderr and "Traceback" not in done.stderr
