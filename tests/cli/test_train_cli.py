"""`adfd train` as a user runs it: files out, one line per epoch on stderr, clear refusals,
resume after Ctrl-C or SIGTERM, and two processes under torchrun (DistributedDataParallel, gloo on CPU)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from adfd_core.store import partial_path
from feature_factory import random_features

from .helpers import ADFD, adfd

TINY_CNN = ["--set", "channels=4,8,8", "--set", "dense=16"]
FAST = [*TINY_CNN, "--batch-size", "16", "--lr", "3e-3", "--device", "cpu"]


@pytest.fixture(scope="module")
def feats(tmp_path_factory) -> dict[str, Path]:
    """Feature files of 3x8x8 Gaussian rows: train (60 utterances), val (30), val from another
    front-end spec, a bigger train file (for runs long enough to interrupt), and an interrupted one."""
    root = tmp_path_factory.mktemp("feats")
    files = {
        "train": random_features(root / "train.h5", 60, seed=1),
        "val": random_features(root / "val.h5", 30, seed=2),
        "other": random_features(root / "other.h5", 30, seed=3, spec_params={"hop_length": 256}),
        "big": random_features(root / "big.h5", 300, seed=4),
    }
    # What an interrupted featurize leaves: only NAME.partial, marked incomplete, and no NAME.
    from adfd_core.store import FeatureWriter

    cut = root / "cut.h5"
    spec = {"name": "toy", "version": 1, "params": {"sample_rate": 16000, "segment_seconds": 2.0}, "row_shape": [3, 8, 8]}
    FeatureWriter.open(cut, {"toy": spec}, identity="cut", provenance={"test": True}).close()
    assert partial_path(cut).exists() and not cut.exists()
    files["cut"] = cut
    # An incomplete file under the final name (e.g. copied away mid-run).
    files["copied"] = root / "copied.h5"
    shutil.copyfile(partial_path(cut), files["copied"])
    return files


def test_trains_and_writes_model_and_log_with_epochs_on_stderr(feats, tmp_path):
    out = tmp_path / "cnn.safetensors"
    done = adfd("train", str(feats["train"]), "--val", str(feats["val"]), "-o", str(out), "--epochs", "2", *FAST)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert out.exists() and (tmp_path / "cnn.train.json").exists()
    assert not (tmp_path / "cnn.ckpt.safetensors").exists()
    epochs = [line for line in done.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1", "epoch 2"]
    assert all("val AUC" in line and "samples/s" in line for line in epochs)
    logged = json.loads((tmp_path / "cnn.train.json").read_text())
    assert [r["epoch"] for r in logged["history"]] == [1, 2]
    assert logged["processes"] == 1 and logged["config"]["channels"] == [4, 8, 8]
    assert logged["train"]["path"] == str(feats["train"])

    from adfd_core.modelfile import load_model

    model, info = load_model(out)
    assert info.name == "cnn.v1" and info.frontend["name"] == "toy"


def test_unknown_config_key_names_the_valid_ones(feats, tmp_path):
    done = adfd("train", str(feats["train"]), "--val", str(feats["val"]), "-o", str(tmp_path / "m.safetensors"),
                *FAST, "--set", "bogus=3")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # a usage error: the usage line, then the reason
    assert "--set" in last and "bogus" in last and "channels" in last and "dense" in last
    assert not (tmp_path / "m.safetensors").exists()


def test_set_without_equals_is_a_usage_error(feats, tmp_path):
    done = adfd("train", str(feats["train"]), "-o", str(tmp_path / "m.safetensors"), "--set", "dense")
    assert done.returncode == 2, done.stderr
    assert "key=value" in done.stderr and "Traceback" not in done.stderr


def test_excluded_attack_is_left_out_and_recorded_in_the_log(feats, tmp_path):
    out = tmp_path / "m.safetensors"
    done = adfd("train", str(feats["train"]), "--val", str(feats["val"]), "-o", str(out), "--epochs", "1", *FAST,
                "--exclude", "attack=A1")
    assert done.returncode == 0, done.stderr
    logged = json.loads((tmp_path / "m.train.json").read_text())
    assert logged["options"]["exclude"] == [["attack", "A1"]]
    # 60 utterances, 12 bona fide; the spoof ones cycle through A0, A1, A2 by index: 16 of them are A1.
    assert logged["train"]["utterances"] == 60 - 16
    bad = adfd("train", str(feats["train"]), "-o", str(tmp_path / "n.safetensors"), "--exclude", "attack")
    assert bad.returncode == 2 and "--exclude" in bad.stderr and "Traceback" not in bad.stderr


def test_balance_by_is_recorded_and_needs_balanced_sampling_and_a_field_the_file_has(feats, tmp_path):
    out = tmp_path / "m.safetensors"
    done = adfd("train", str(feats["train"]), "--val", str(feats["val"]), "-o", str(out), "--epochs", "1", *FAST,
                "--balance-by", "attack")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "m.train.json").read_text())["options"]["balance_by"] == "attack"
    unweighted = adfd("train", str(feats["train"]), "-o", str(tmp_path / "n.safetensors"), *FAST, "--no-balanced",
                      "--balance-by", "attack")
    assert unweighted.returncode == 2 and "--balance-by" in unweighted.stderr and "Traceback" not in unweighted.stderr
    missing = adfd("train", str(feats["train"]), "--val", str(feats["val"]), "-o", str(tmp_path / "o.safetensors"),
                   "--epochs", "1", *FAST, "--balance-by", "source")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.count("\n") == 1 and str(feats["train"]) in missing.stderr and "'source'" in missing.stderr


def test_validation_file_from_another_front_end_is_refused(feats, tmp_path):
    done = adfd("train", str(feats["train"]), "--val", str(feats["other"]), "-o", str(tmp_path / "m.safetensors"), *FAST)
    assert done.returncode == 1
    assert done.stderr.startswith("adfd: error: ") and "Traceback" not in done.stderr
    assert str(feats["other"]) in done.stderr and "another front-end spec" in done.stderr


def test_interrupted_feature_file_is_refused_by_name(feats, tmp_path):
    cut = str(feats["cut"])  # only cut.h5.partial exists
    done = adfd("train", cut, "--val", str(feats["val"]), "-o", str(tmp_path / "m.safetensors"), *FAST)
    assert done.returncode == 1
    assert done.stderr.startswith(f"adfd: error: {cut}: ") and "Traceback" not in done.stderr
    assert str(partial_path(feats["cut"])) in done.stderr and "rerun featurize" in done.stderr


def test_incomplete_validation_file_under_its_final_name_is_refused(feats, tmp_path):
    copied = str(feats["copied"])
    done = adfd("train", str(feats["train"]), "--val", copied, "-o", str(tmp_path / "m.safetensors"), *FAST)
    assert done.returncode == 1
    assert done.stderr.startswith(f"adfd: error: {copied}: ") and "incomplete" in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_keeps_a_checkpoint_and_resumes_only_with_resume(feats, tmp_path, sig):
    out = tmp_path / "m.safetensors"
    ckpt = tmp_path / "m.ckpt.safetensors"
    epochs = 20  # the first checkpoint comes after epoch 1; the rest leave time to interrupt
    args = ["train", str(feats["big"]), "--val", str(feats["val"]), "-o", str(out), "--epochs", str(epochs),
            "--patience", str(epochs), *FAST]
    proc = subprocess.Popen([*ADFD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be interrupted; make the training file bigger"
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert stdout == "" and "Traceback" not in stderr
    assert ckpt.exists() and not out.exists()
    if sig == signal.SIGTERM:
        return  # from here on the same as after Ctrl-C; a subprocess each is enough once

    refused = adfd(*args)
    assert refused.returncode == 1
    assert "--resume" in refused.stderr and str(ckpt) in refused.stderr
    assert ckpt.exists() and not out.exists()

    resumed = adfd(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == ""
    assert "resuming after epoch" in resumed.stderr
    done_before = int(resumed.stderr.split("resuming after epoch")[1].split()[0])
    assert 1 <= done_before < epochs
    assert out.exists() and not ckpt.exists()
    logged = json.loads((tmp_path / "m.train.json").read_text())
    assert [r["epoch"] for r in logged["history"]] == list(range(1, epochs + 1))


# --------------------------------------------------------------------------- DistributedDataParallel


def _processes_with(marker: str) -> list[int]:
    """Ids of live processes whose environment holds ``marker`` (Linux /proc; [] elsewhere)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:  # gone, or not ours
            continue
    return [p for p in pids if p != os.getpid()]


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_two_processes_under_torchrun_train_with_ddp(feats, tmp_path):
    out = tmp_path / "ddp.safetensors"
    marker = f"ADFD_DDP_TEST={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1], "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "adfd_cli", "train", str(feats["train"]), "--val", str(feats["val"]), "-o", str(out), "--epochs", "2", *FAST]
    # torchrun puts each worker in a session of its own; on a timeout, SIGTERM lets torchrun stop
    # them, and anything still carrying this test's marker afterwards is killed.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        pytest.fail("torchrun did not finish in 240 s")
    finally:
        time.sleep(0.2)
        strays = _processes_with(marker)
        _kill_all(strays)
    assert proc.returncode == 0, stderr[-4000:]
    assert not strays, f"processes left behind: {strays}"
    assert out.exists() and not (tmp_path / "ddp.ckpt.safetensors").exists()

    from adfd_core.modelfile import load_model

    model, info = load_model(out)
    assert info.name == "cnn.v1" and info.training["processes"] == 2
    logged = json.loads((tmp_path / "ddp.train.json").read_text())
    assert logged["processes"] == 2 and logged["device"] == "cpu"
    assert [r["epoch"] for r in logged["history"]] == [1, 2]
    assert all(r["train_samples_per_s"] > 0 for r in logged["history"])
    epochs = [line for line in stderr.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2  # rank 0 reports; rank 1 stays quiet


def test_a_start_file_that_is_no_whisper_probe_or_fewer_blocks_than_asked_is_one_line_and_exit_1(feats, tmp_path):
    from model_factory import save_whisper, tiny_model, whisper_backend

    from adfd_core.bundle import bundle

    whisper = save_whisper(tmp_path / "whisper")
    start = bundle(whisper_backend(tmp_path / "b.safetensors", whisper, {}, "logreg.v1"), whisper, tmp_path / "start.safetensors")
    cnn = tiny_model(tmp_path / "cnn.safetensors")
    args = ["train", str(feats["train"]), "-m", "whisper-probe.v1", "-o", str(tmp_path / "m.safetensors"), "--device", "cpu"]
    for pretrained, k, reason in ((cnn, 0, "a cnn.v1 model; whisper-probe.v1 starts from a whisper-probe.v1 model file"),
                                  (start, 3, "finetune_blocks must be -1 (every weight), 0 (the head only) or up to 2")):
        done = adfd(*args, "--pretrained", str(pretrained), "--set", f"finetune_blocks={k}")
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and f"pretrained {pretrained}: " in done.stderr and reason in done.stderr
    assert not (tmp_path / "m.safetensors").exists()
