"""`adfd featurize` and `adfd info` end to end, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

from adfd_core import audio
from adfd_core.frontends import build
from adfd_core.store import FeatureFile, SegmentDataset, partial_path

from .helpers import ADFD, adfd, make_bad_files, make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    import audio_factory

    root = tmp_path_factory.mktemp("corpus")
    good = make_corpus(root, audio_factory)
    bad = make_bad_files(root)
    return root, good, bad


def _info(path) -> dict:
    done = adfd("info", str(path), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_bad_inputs_are_named_recorded_and_the_rest_featurized(corpus, tmp_path):
    root, good, bad = corpus
    out = tmp_path / "f.h5"
    done = adfd("featurize", str(root), "-o", str(out), "-f", "stft-lf", "-f", "wave", "--jobs", "2")
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""  # data only on stdout, and featurize prints none
    failed_lines = [line for line in done.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed_lines) == len(bad)
    for path in bad.values():
        assert any(line.startswith(f"failed: {path}: ") for line in failed_lines), done.stderr
    assert "Traceback" not in done.stderr

    d = _info(out)
    assert d["complete"] and d["n_utterances"] == len(good)
    assert {f["path"] for f in d["failures"]} == {str(p) for p in bad.values()}
    assert d["labels"] == {"bonafide": 3, "spoof": 3, "unknown": 0}
    assert d["attacks"] == {"hifigan": 2, "melgan": 1}
    shapes = {f["name"]: f["row_shape"] for f in d["features"]}
    assert shapes == {"stft-lf": [3, 64, 64], "wave": []}
    assert d["command"][1:3] == ["featurize", str(root)]

    again = adfd("featurize", str(root), "-o", str(out), "-f", "stft-lf", "-f", "wave")
    assert again.returncode == 3 and "nothing to do" in again.stderr

    other = adfd("featurize", str(root), "-o", str(out), "-f", "cqt")
    assert other.returncode == 1 and "--force" in other.stderr and str(out) in other.stderr
    forced = adfd("featurize", str(root), "-o", str(out), "-f", "cqt", "--force")
    assert forced.returncode == 3
    assert [f["name"] for f in _info(out)["features"]] == ["cqt"]


def test_round_trip_through_the_torch_dataset_gives_the_front_end_output(corpus, tmp_path):
    import torch

    root, good, _ = corpus
    out = tmp_path / "f.h5"
    listing = "\n".join(str(p) for p in good)
    done = adfd("featurize", "--from-list", "-", "-o", str(out), "-f", "cqt", "-f", "logspec", "--batch-size", "4", stdin=listing)
    assert done.returncode == 0, done.stderr
    for name in ("cqt", "logspec"):
        fe = build(name)
        ds = SegmentDataset(out, name)
        with FeatureFile(out) as ff:
            paths = [str(s.utterance.path) for s in ff.utterances()]
        assert sorted(paths) == sorted(str(p) for p in good)
        items = [ds[i] for i in range(len(ds))]
        for u, path in enumerate(paths):
            segs = np.stack(list(audio.iter_segments([audio.load(path)], fe.segment_samples)))
            with torch.no_grad():
                expected = fe(torch.from_numpy(segs))
            got = torch.stack([x for x, _, utt in items if utt == u])
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_usage_errors_exit_2_and_missing_files_exit_1(corpus, tmp_path):
    root, _, _ = corpus
    unknown = adfd("featurize", str(root), "-o", str(tmp_path / "x.h5"), "-f", "nope")
    assert unknown.returncode == 2 and "'nope' is not one of" in unknown.stderr and "--feature" in unknown.stderr
    both = adfd("featurize", str(root), "--from-list", "-", "-o", str(tmp_path / "x.h5"), stdin="")
    assert both.returncode == 2 and "exactly one of INPUT or --from-list" in both.stderr
    missing = adfd("info", str(tmp_path / "absent.h5"))
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [f"adfd: error: {tmp_path / 'absent.h5'}: no such feature file"]


def _committed(part) -> int:
    """Committed utterances of a partial file that another process is writing (0 while unreadable)."""
    try:
        with h5py.File(part, "r", locking=False) as h5:
            return int(h5.attrs["n_utterances"])
    except (OSError, KeyError):
        return 0


@pytest.fixture(scope="module")
def bigger_corpus(tmp_path_factory):
    import audio_factory

    root = tmp_path_factory.mktemp("bigger")
    make_corpus(root, audio_factory, n_real=30, n_fake=30, seconds=4.0)
    reference = root.parent / "reference.h5"
    done = adfd("featurize", str(root), "-o", str(reference), "-f", "wt", "-f", "wave", "--batch-size", "2")
    assert done.returncode == 0, done.stderr
    return root, reference


def _same_contents(a, b) -> None:
    with FeatureFile(a) as fa, FeatureFile(b) as fb:
        ua = {s.utterance.id: i for i, s in enumerate(fa.utterances())}
        ub = {s.utterance.id: i for i, s in enumerate(fb.utterances())}
        assert ua.keys() == ub.keys()
        for uid in ua:
            for name in fa.features:
                np.testing.assert_array_equal(fa.rows(name, ua[uid]), fb.rows(name, ub[uid]))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_interrupted_run_resumes_to_the_same_file(bigger_corpus, tmp_path, sig):
    root, reference = bigger_corpus
    out = tmp_path / "f.h5"
    cmd = [*ADFD, "featurize", str(root), "-o", str(out), "-f", "wt", "-f", "wave", "--batch-size", "2"]
    # The corpus's last file becomes a named pipe for this run: opening it blocks, so the run cannot
    # finish before it is interrupted, however fast it is.
    last = max((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).parts)
    last_bytes = last.read_bytes()
    last.unlink()
    os.mkfifo(last)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while _committed(partial_path(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1]
        assert _committed(partial_path(out)) >= 2  # work to resume from
        os.kill(proc.pid, sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        last.unlink()
        last.write_bytes(last_bytes)
    assert not out.exists()
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "rerun the same command to resume" in stderr
        assert partial_path(out).exists()
    rerun = adfd("featurize", str(root), "-o", str(out), "-f", "wt", "-f", "wave", "--batch-size", "2")
    assert rerun.returncode == 0, rerun.stderr
    if sig == signal.SIGINT:
        already = int(rerun.stderr.split(" already there")[0].split()[-1])
        assert 2 <= already < 60
    assert not partial_path(out).exists()
    _same_contents(out, reference)


def test_info_describes_an_interrupted_partial_file(tmp_path):
    from adfd_core.store import FeatureWriter

    out = tmp_path / "f.h5"
    spec = {"name": "wave", "version": 1, "params": {"sample_rate": 16000, "segment_seconds": None}, "row_shape": []}
    FeatureWriter.open(out, {"wave": spec}, "x", {"command": ["adfd", "featurize"]}).close()
    done = adfd("info", str(partial_path(out)))
    assert done.returncode == 0 and "INCOMPLETE" in done.stdout
    refused = adfd("info", str(out))
    assert refused.returncode == 1 and "rerun featurize to finish it" in refused.stderr


def test_feature_listing_names_every_front_end():
    from adfd_core.frontends import available

    done = adfd("info", "--features", "--json")
    assert done.returncode == 0
    rows = json.loads(done.stdout)
    assert [r["name"] for r in rows] == available()
    assert {r["name"]: r["row_shape"] for r in rows}["stft-lf"] == [3, 64, 64]
