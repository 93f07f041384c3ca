"""Where commands write and what they accept: inputs and folders never overwritten, unwritable
places refused before the work, bounded option values, Ctrl-C at any moment, the README's word."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import audio_factory
from feature_factory import random_features
from model_factory import tiny_model

from .helpers import ADFD, adfd, make_corpus

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def s(tmp_path_factory):
    """Six clips, a manifest of them, a tiny model and a tiny feature file."""
    root = tmp_path_factory.mktemp("outputs")
    paths = make_corpus(root / "corpus", audio_factory, n_real=2, n_fake=2, seconds=1.0)
    manifest = root / "man.tsv"
    manifest.write_text("path\tlabel\n" + "".join(f"{p}\t{'bonafide' if 'real' in p.name else 'spoof'}\n" for p in paths))
    return SimpleNamespace(root=root, corpus=root / "corpus", audio=paths[0], manifest=manifest,
                           model=tiny_model(root / "m.safetensors", "cqt", seed=1),
                           feats=random_features(root / "f.h5", 20, seed=1))


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder where no file can be created: a read-only one, or as root (whom permissions do not stop) /sys."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    try:
        Path("/sys/adfd-write-probe").write_text("")
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return Path("/sys")
    pytest.skip("running as root with no folder that refuses files")


def _one_error_line(done: subprocess.CompletedProcess, *words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and lines[0].startswith("adfd: error: "), done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], done.stderr


# --------------------------------------------------------------------------- 18: never over an input or a folder


def test_score_never_writes_over_the_audio_it_scores(s, tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(s.audio.read_bytes())
    done = adfd("score", str(audio), "-m", str(s.model), "-o", str(audio))
    _one_error_line(done, str(audio), "input")
    assert audio.read_bytes() == s.audio.read_bytes()
    in_folder = adfd("score", str(s.corpus), "-m", str(s.model), "-o", str(s.audio))  # a file inside the folder scored
    _one_error_line(in_folder, str(s.audio), "input")


def test_featurize_never_writes_over_its_manifest_even_with_force(s):
    before = s.manifest.read_bytes()
    done = adfd("featurize", str(s.manifest), "-o", str(s.manifest), "--force", "--device", "cpu")
    _one_error_line(done, str(s.manifest), "input")
    assert s.manifest.read_bytes() == before


def test_featurize_refuses_a_folder_as_its_output(s):
    done = adfd("featurize", str(s.corpus), "-o", str(s.corpus), "--force", "--device", "cpu")
    _one_error_line(done, str(s.corpus), "is a folder")
    assert not Path(f"{s.corpus}.partial").exists()


def test_fuse_never_writes_over_a_table_it_fuses(tmp_path):
    table = tmp_path / "a.tsv"
    table.write_text("id\tscore\nu1\t0.5\nu2\t-1.0\n")
    before = table.read_text()
    done = adfd("fuse", str(table), str(table), "-o", str(table))
    _one_error_line(done, str(table), "input")
    assert table.read_text() == before


# --------------------------------------------------------------------------- 19: unwritable places, full disks


def test_unwritable_output_folders_are_refused_before_any_work(s, tmp_path):
    folder = _unwritable_folder(tmp_path)
    featurize = adfd("featurize", str(s.corpus), "-o", str(folder / "f.h5"), "--device", "cpu")
    _one_error_line(featurize, str(folder / "f.h5"))
    score = adfd("score", str(s.corpus), "-m", str(s.model), "-o", str(folder / "s.tsv"))
    _one_error_line(score, str(folder / "s.tsv"))
    train = adfd("train", str(s.feats), "-o", str(folder / "m.safetensors"), "--epochs", "1", "--device", "cpu",
                 "--set", "channels=4,8,8", "--set", "dense=16")
    _one_error_line(train, str(folder / "m.safetensors"))
    assert "epoch 1" not in train.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_scores_to_a_full_stdout_are_one_error_line(s):
    with open("/dev/full", "w") as full:
        done = subprocess.run([*ADFD, "score", str(s.corpus), "-m", str(s.model)], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=240)
    done.stdout = ""
    _one_error_line(done, "<stdout>", "no space left")


def test_featurize_on_a_full_disk_names_the_partial_file_it_keeps(s, tmp_path, monkeypatch, capsys):
    from adfd_cli.main import run
    from adfd_core.store import FeatureWriter

    def disk_full(self):
        raise RuntimeError("Can't write data (file write failed: errno = 28, error message = 'No space left on device')")

    monkeypatch.setattr(FeatureWriter, "commit", disk_full)
    out = tmp_path / "f.h5"
    with pytest.raises(SystemExit) as done:
        run(["featurize", str(s.corpus), "-o", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert done.value.code == 1, err
    assert f"adfd: error: {out}.partial: cannot write: no space left on the device" in err
    assert "internal error" not in err and not out.exists()


# --------------------------------------------------------------------------- 20: bounded option values


@pytest.mark.parametrize("args, option", [
    (["featurize", "CORPUS", "--segment-seconds", "100000"], "--segment-seconds"),
    (["featurize", "CORPUS", "--segment-seconds", "nan"], "--segment-seconds"),
    (["featurize", "CORPUS", "--segment-seconds", "inf"], "--segment-seconds"),
    (["featurize", "CORPUS", "--device", "tpu"], "--device"),
    (["score", "CORPUS", "--device", "tpu"], "--device"),
    (["train", "FEATS", "--lr", "nan"], "--lr"),
    (["train", "FEATS", "--lr", "inf"], "--lr"),
    (["train", "FEATS", "--weight-decay", "nan"], "--weight-decay"),
    (["split", "CORPUS", "--val", "nan"], "--val"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_out_of_range_values_are_usage_errors_naming_the_option(s, tmp_path, args, option):
    args = [{"CORPUS": str(s.corpus), "FEATS": str(s.feats)}.get(a, a) for a in args]
    done = adfd(*args, "-o", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    assert option in done.stderr and "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- 21: Ctrl-C at any moment


def test_ctrl_c_at_any_moment_exits_130_with_one_line(s, tmp_path):
    """Ctrl-C while the app loads and while it scores: exit 130, one line, no traceback. Delays count
    from the end of the interpreter's own start-up (a sitecustomize module says when), plus a margin
    for runpy: until adfd's first line runs, a traceback is Python's, out of adfd's hands."""
    (tmp_path / "sitecustomize.py").write_text("import os\nos.write(int(os.environ['ADFD_TEST_READY']), b'.')\n")
    env_path = os.pathsep.join([*os.environ.get("PYTHONPATH", "").split(os.pathsep), str(tmp_path)])
    for delay in (0.05, 0.1, 0.2, 0.4, 0.8, 1.6):
        read, write = os.pipe()
        env = {**os.environ, "PYTHONPATH": env_path, "ADFD_TEST_READY": str(write)}
        proc = subprocess.Popen([*ADFD, "score", str(s.corpus), "-m", str(s.model)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, pass_fds=(write,))
        os.close(write)
        try:
            assert os.read(read, 1) == b"."
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            os.close(read)
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        if proc.returncode == 0 and delay >= 0.4:
            # On a quick machine the run may be over before a late signal: then it must have written every row.
            rows = [line for line in stdout.splitlines() if not line.startswith(("#", "id\t"))]
            assert len(rows) == sum(p.is_file() for p in s.corpus.rglob("*")), (delay, stdout)
            continue
        assert proc.returncode == 130, (delay, stderr)
        assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, (delay, stderr)
        assert stderr.startswith("adfd: interrupted; "), (delay, stderr)


def test_interrupted_score_writes_the_recordings_it_finished(s, tmp_path, monkeypatch, capsys):
    from adfd_cli.console import BarObserver
    from adfd_cli.main import run
    from adfd_core.scoretable import read_scores

    advance = BarObserver.advance
    calls = []

    def ctrl_c_on_the_third(self, n=1):
        calls.append(n)
        if len(calls) == 3:
            raise KeyboardInterrupt
        advance(self, n)

    monkeypatch.setattr(BarObserver, "advance", ctrl_c_on_the_third)
    out = tmp_path / "s.tsv"
    with pytest.raises(SystemExit) as done:
        run(["score", str(s.corpus), "-m", str(s.model), "-o", str(out), "--device", "cpu", "--batch-size", "1"])
    err = capsys.readouterr().err
    assert done.value.code == 130, err
    table = read_scores(out)
    assert 1 <= len(table) < 4 and "error" not in table.extra
    assert f"adfd: interrupted; the {len(table)} of 4 recordings finished before it are in {out}" in err


def test_score_interrupted_before_any_recording_finished_writes_nothing(s, tmp_path, monkeypatch, capsys):
    from adfd_cli.console import BarObserver
    from adfd_cli.main import run

    def ctrl_c(self, n=1):
        raise KeyboardInterrupt

    monkeypatch.setattr(BarObserver, "advance", ctrl_c)
    out = tmp_path / "s.tsv"
    with pytest.raises(SystemExit) as done:
        run(["score", str(s.corpus), "-m", str(s.model), "-o", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert done.value.code == 130 and "nothing was written" in err, err
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- 23: the README says what a failed row holds


def test_readme_says_a_failed_row_has_a_nan_score(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    from adfd_core.scoring import RecordingScore, to_table
    from adfd_core.corpus import Utterance
    from adfd_core.scoretable import write_scores

    table = to_table([RecordingScore(Utterance("bad", bad, "unknown"), error="not audio")], [])
    write_scores(table, tmp_path / "t.tsv")
    row = dict(zip(*[line.split("\t") for line in (tmp_path / "t.tsv").read_text().splitlines() if not line.startswith("#")]))
    assert (row["score"], row["p_spoof"], row["decision"]) == ("nan", "nan", "-")
    text = " ".join(README.read_text().split())
    assert "empty score" not in text
    assert "`score` and `p_spoof` are `nan`" in text
