"""Past one process: `--shard K/N` with `adfd merge`, and `--ray` on a real local Ray cluster (2 CPUs),
each giving the file a single process writes: the same utterances and ids, bit-identical rows and scores."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import audio_factory as factory
from adfd_core.scoretable import read_scores
from adfd_core.store import FeatureFile
from model_factory import tiny_model

from .helpers import ADFD, adfd, make_corpus

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Twelve good clips and one that does not decode."""
    root = tmp_path_factory.mktemp("corpus")
    make_corpus(root, factory, n_real=6, n_fake=6, seconds=2.5)
    (root / "bonafide" / "spk1" / "broken.wav").write_text("not audio at all\n" * 10)
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("model") / "m.safetensors")


@pytest.fixture(scope="module")
def whole(corpus, model, tmp_path_factory) -> dict[str, Path]:
    """What one process writes: a feature file and a score table."""
    out = tmp_path_factory.mktemp("whole")
    feats, table = out / "feats.h5", out / "scores.tsv"
    from adfd_core.corpus import read_corpus
    from adfd_core.featurize import FeaturizeOptions, featurize

    assert len(featurize(read_corpus(corpus), feats, FeaturizeOptions(("stft-lf",), device="cpu")).failures) == 1
    done = adfd("score", str(corpus), "-m", str(model), "--segments", "-o", str(table), "--device", "cpu", env=ENV)
    assert done.returncode == 3, done.stderr
    return {"feats": feats, "scores": table}


def assert_same_features(a: Path, b: Path) -> None:
    with FeatureFile(a) as x, FeatureFile(b) as y:
        assert x.attrs["identity"] == y.attrs["identity"]
        for field in ("id", "path", "label", "attack", "content_hash"):
            assert x.column(field) == y.column(field), field
        for name in x.features:
            assert np.array_equal(x.all_rows(name), y.all_rows(name)), name
            assert all(np.array_equal(p, q) for p, q in zip(x.extent(name), y.extent(name)))
        assert x.failures() == y.failures() and len(x.failures()) == 1


def assert_same_scores(a: Path, b: Path) -> None:
    x, y = read_scores(a), read_scores(b)
    assert (x.ids, x.paths, x.decisions, x.labels, x.attacks, x.extra) == (y.ids, y.paths, y.decisions, y.labels, y.attacks, y.extra)
    assert np.array_equal(x.scores, y.scores, equal_nan=True) and np.array_equal(x.p_spoof, y.p_spoof, equal_nan=True)
    for key in ("inputs_sha256", "identity", "models"):
        assert x.provenance[key] == y.provenance[key], key


# --------------------------------------------------------------------------- --shard and merge


def test_featurize_shards_merge_into_the_single_run_file(corpus, whole, tmp_path):
    shards = [tmp_path / f"{k}.h5" for k in (1, 2)]
    codes = [adfd("featurize", str(corpus), "-o", str(s), "-f", "stft-lf", "--device", "cpu", "--shard", f"{k}/2", env=ENV).returncode
             for k, s in enumerate(shards, 1)]
    assert sorted(codes) == [0, 3]  # the broken file is in one shard, named there
    done = adfd("merge", str(shards[1]), str(shards[0]), "-o", str(tmp_path / "merged.h5"))
    assert done.returncode == 3 and "broken.wav" in done.stderr
    assert_same_features(whole["feats"], tmp_path / "merged.h5")
    missing = adfd("merge", str(shards[1]), "-o", str(tmp_path / "m2.h5"))
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == ["adfd: error: missing shard 1/2; merge needs all 2"]


def test_score_shards_merge_into_the_single_run_table(corpus, model, whole, tmp_path):
    for k in (1, 2):
        done = adfd("score", str(corpus), "-m", str(model), "--segments", "--device", "cpu", "--shard", f"{k}/2",
                    "-o", str(tmp_path / f"{k}.tsv"), env=ENV)
        assert done.returncode in (0, 3), done.stderr
    done = adfd("merge", str(tmp_path / "2.tsv"), str(tmp_path / "1.tsv"), "-o", str(tmp_path / "merged.tsv"))
    assert done.returncode == 3, done.stderr
    assert_same_scores(whole["scores"], tmp_path / "merged.tsv")
    mixed = adfd("merge", str(tmp_path / "1.tsv"), str(whole["feats"]), "-o", str(tmp_path / "x.tsv"))
    assert mixed.returncode == 2 and "not both" in mixed.stderr


def test_shard_options_are_checked_before_any_work(corpus, tmp_path):
    bad = adfd("featurize", str(corpus), "-o", str(tmp_path / "f.h5"), "--shard", "4/3")
    assert bad.returncode == 2 and "between 1 and N" in bad.stderr
    both = adfd("score", str(corpus), "--shard", "1/2", "--ray", "-o", str(tmp_path / "s.tsv"))
    assert both.returncode == 2 and "not both" in both.stderr
    fmt = adfd("score", str(corpus), "--shard", "1/2", "--format", "asvspoof5")
    assert fmt.returncode == 2 and "merging" in fmt.stderr


# --------------------------------------------------------------------------- a local Ray cluster


@pytest.fixture(scope="module")
def cluster() -> str:
    """A real Ray cluster on this machine: 2 CPUs, no dashboard, a small object store. Its address.
    Without token authentication: the commands under test would otherwise need this cluster's token."""
    ray = pytest.importorskip("ray")
    os.environ["RAY_AUTH_MODE"] = ENV["RAY_AUTH_MODE"] = "disabled"
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024 * 1024, log_to_driver=False,
             configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        del os.environ["RAY_AUTH_MODE"], ENV["RAY_AUTH_MODE"]


def _ray_run(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*ADFD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def _shard_workers() -> list[int]:
    """Processes of this machine that are running a featurize shard task right now."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::_featurize_shard"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _wait_for(found, run: subprocess.Popen, seconds: float = 90):
    """What ``found()`` returns once it is not empty, while ``run`` runs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and run.poll() is None:
        what = found()
        if what:
            return what
        time.sleep(0.05)
    pytest.fail(f"not seen while the command ran: {run.communicate()[1] if run.poll() is not None else ''}")


@pytest.mark.slow
def test_featurize_on_ray_survives_a_killed_worker_and_gives_the_single_run_file(corpus, whole, cluster, tmp_path):
    out = tmp_path / "ray.h5"
    run = _ray_run("featurize", str(corpus), "-o", str(out), "-f", "stft-lf", "--device", "cpu",
                   "--ray", "--ray-address", cluster, "--ray-shards", "4")
    os.kill(_wait_for(_shard_workers, run)[0], signal.SIGKILL)  # Ray reruns its task; the shard resumes
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 3, stderr
    assert "broken.wav" in stderr and stdout == ""
    assert_same_features(whole["feats"], out)
    assert not (tmp_path / "ray.h5.shards").exists()


@pytest.mark.slow
def test_a_killed_ray_run_rerun_redoes_only_the_unfinished_shards(corpus, whole, cluster, tmp_path):
    out = tmp_path / "ray.h5"
    args = ("featurize", str(corpus), "-o", str(out), "-f", "stft-lf", "--device", "cpu", "--ray", "--ray-address", cluster,
            "--ray-shards", "6")
    run = _ray_run(*args)
    # One shard's worker is frozen mid-task while the other worker finishes shards; then Ctrl-C.
    frozen = _wait_for(_shard_workers, run)[0]
    os.kill(frozen, signal.SIGSTOP)
    try:
        _wait_for(lambda: list((tmp_path / "ray.h5.shards").glob("*-of-00006.h5")), run)
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=60)
    finally:
        try:
            os.kill(frozen, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert run.returncode == 130, stderr[:3000]
    finished = sorted(p.name for p in (tmp_path / "ray.h5.shards").glob("*-of-00006.h5"))
    assert 1 <= len(finished) < 6 and not out.exists()
    rerun = adfd(*args, env=ENV)
    assert rerun.returncode == 3, rerun.stderr
    assert f"{6 - len(finished)} of 6 shards to run ({len(finished)} already done)" in rerun.stderr
    assert_same_features(whole["feats"], out)


@pytest.mark.slow
def test_score_on_ray_gives_the_single_run_table(corpus, model, whole, cluster, tmp_path):
    out = tmp_path / "ray.tsv"
    done = adfd("score", str(corpus), "-m", str(model), "--segments", "--device", "cpu", "-o", str(out),
                "--ray", "--ray-address", cluster, "--ray-shards", "3", env=ENV)
    assert done.returncode == 3, done.stderr
    assert "broken.wav" in done.stderr
    progress = re.findall(r"shard \d/3 done: (\d+)/13 inputs, [\d.]+/s, ETA \d+:\d\d:\d\d", done.stderr)
    assert len(progress) == 3 and progress[-1] == "13"  # off a terminal too: done/total, rate, time left
    assert_same_scores(whole["scores"], out)
    assert not (tmp_path / "ray.tsv.shards").exists()


def test_ray_progress_reaches_the_driver(corpus, cluster, tmp_path):
    from adfd_core.corpus import read_corpus
    from adfd_core.distributed_ray import Cluster, featurize_on_ray
    from adfd_core.featurize import FeaturizeOptions

    class Seen:
        def __init__(self):
            self.total, self.done, self.names = None, 0, []

        def start(self, total, already_done):
            self.total, self.done = total, already_done

        def advance(self, n=1):
            self.done += n

        def failed(self, utt, reason):
            self.names.append(utt.path.name)

        def warned(self, utt, reason):
            pass

    seen = Seen()
    utts = read_corpus(corpus)
    result = featurize_on_ray(utts, tmp_path / "f.h5", FeaturizeOptions(("stft-lf",), device="cpu"), Cluster(cluster, 2),
                              observer=seen)
    assert seen.total == seen.done == len(utts) == 13
    assert seen.names == ["broken.wav"] and [f[1] for f in result.failures] == [str(corpus / "bonafide" / "spk1" / "broken.wav")]


def test_without_ray_installed_the_error_is_one_line_naming_the_extra(monkeypatch):
    import sys

    from adfd_core import distributed_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    with pytest.raises(distributed_ray.RayError) as err:
        distributed_ray._connect(None)
    assert str(err.value) == "--ray needs Ray, which is not installed: pip install 'adfd[ray]'"
