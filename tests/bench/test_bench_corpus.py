"""The benchmark scripts' corpus: --corpus takes a folder or a manifest; an absent one is one line, not a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

import audio_factory as factory
from scripts import ROOT, load_script


@pytest.mark.parametrize("script", ["bench/score.py", "bench/featurize.py"])
def test_an_absent_corpus_is_one_line_naming_it(script, tmp_path):
    missing = tmp_path / "nowhere"
    extra = ["--skip-cold"] if script.endswith("score.py") else []
    done = subprocess.run([sys.executable, str(ROOT / script), "--corpus", str(missing), *extra],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"{script.split('/')[1]}: {missing}: no such file or folder"], done.stderr


def test_an_absent_default_corpus_says_to_give_one(tmp_path, monkeypatch):
    measure = load_script("bench/measure.py")
    monkeypatch.setattr(sys, "argv", ["score.py"])
    with pytest.raises(SystemExit) as stop:
        measure.corpus_files(None, 10, default=tmp_path / "devset" / "manifest.tsv")
    assert "default corpus is absent; give --corpus" in str(stop.value.code)


def test_a_folder_or_a_manifest_lists_its_first_files(tmp_path):
    measure = load_script("bench/measure.py")
    for name in ("b.wav", "a.flac"):
        factory.write(tmp_path / "audio" / name, factory.noise(0.1))
    (tmp_path / "audio" / "notes.txt").write_text("not audio")
    assert [p.name for p in measure.corpus_files(tmp_path / "audio", 5)] == ["a.flac", "b.wav"]
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("label\tpath\nspoof\taudio/b.wav\nbonafide\taudio/a.flac\n")
    assert measure.corpus_files(manifest, 1) == [tmp_path / "audio" / "b.wav"]
