"""Training across processes as across nodes: torchrun with a c10d rendezvous endpoint (what
``--nnodes N --rdzv-endpoint HOST:PORT`` uses on a cluster), two CPU processes over gloo, gives the
weights of one process trained with the same global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from adfd_core.store import FeatureFile
from feature_factory import random_features

from .helpers import adfd
from .test_train_cli import _kill_all, _processes_with

# Dropout off: each process draws its own dropout masks (seeded by rank), which one process cannot match.
TINY = ["--set", "channels=4,8,8", "--set", "dense=16", "--set", "dropout=0", "--lr", "3e-3", "--device", "cpu",
        "--epochs", "1", "--seed", "5"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _even_rows(folder: Path) -> Path:
    """A training file with an even number of rows: each of two processes then takes exactly half."""
    for seed in range(1, 20):
        path = random_features(folder / f"train{seed}.h5", 40, seed=seed)
        with FeatureFile(path) as ff:
            if ff.features["toy"].n_rows % 2 == 0:
                return path
    raise AssertionError("no seed gave an even number of rows")


@pytest.mark.slow
def test_two_torchrun_processes_match_one_process_with_the_same_global_batch(tmp_path):
    from adfd_core.modelfile import load_model

    train = _even_rows(tmp_path)
    val = random_features(tmp_path / "val.h5", 20, seed=99)
    single = tmp_path / "one.safetensors"
    done = adfd("train", str(train), "--val", str(val), "-o", str(single), "--batch-size", "16", *TINY,
                env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr

    ddp = tmp_path / "two.safetensors"
    marker = f"ADFD_RDZV_TEST={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1], "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "--rdzv-id", "adfd-test",
           "-m", "adfd_cli", "train", str(train), "--val", str(val), "-o", str(ddp), "--batch-size", "8", *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail("torchrun did not finish in 240 s")
    finally:
        time.sleep(0.2)
        _kill_all(_processes_with(marker))
    assert proc.returncode == 0, stderr[-4000:]

    one, info_one = load_model(single)
    two, info_two = load_model(ddp)
    assert info_two.training["processes"] == 2 and info_one.training["processes"] == 1
    a, b = one.state_dict(), two.state_dict()
    assert a.keys() == b.keys()
    moved = max(float((a[k] - b[k]).abs().max()) for k in a)
    # Equal up to the order of float additions (gloo's all-reduce against one sum over 16 rows):
    # measured on CPU, 1.5e-8 after one epoch (five Adam steps); the bound leaves room for other BLAS builds.
    print(f"largest weight difference, 2 processes against 1: {moved:.3g}")
    assert moved < 1e-5, f"weights differ by up to {moved}"
