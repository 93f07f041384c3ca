"""What writing a model or a checkpoint and an optimizer step cost in memory beyond the model itself: the
full WaveSpec (320 M parameters) peaked at 22 GB in one epoch when each of them held extra copies.

Each measurement runs in a fresh process and compares its peak resident set (ru_maxrss) before and
after the step, with tensors of 256 MB, so a copy of them shows clearly above the allocator's noise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adfd_core.outputs import OutputError

MB = 1 << 20
SIZE_MB = 256  # the tensors written or stepped
SLACK_MB = 64  # what a step may hold beyond what it needs


def _growth_mb(body: str, tmp_path: Path) -> float:
    """Peak resident set growth (MB) of ``body`` run after the setup it defines as ``setup()``."""
    script = textwrap.dedent(
        """
        import json, resource, sys, torch
        sys.path.insert(0, {tests!r})
        torch.set_num_threads(1)
        def peak():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        """
    ).format(tests=str(Path(__file__).parents[1])) + textwrap.dedent(body) + textwrap.dedent(
        """
        args = setup()
        before = peak()
        run(*args)
        print(json.dumps(peak() - before))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB: Linux")
def test_a_checkpoint_is_written_without_copying_its_tensors(tmp_path):
    growth = _growth_mb(
        f"""
        from pathlib import Path
        from adfd_core.checkpoint import load_checkpoint, save_checkpoint
        def setup():
            w = torch.ones({SIZE_MB * MB // 8}) ; m = torch.ones({SIZE_MB * MB // 8})
            return ({{"model": {{"w": w}}, "optimizer": {{"state": {{0: {{"exp_avg": m}}}}}}, "epoch": 1}},)
        def run(state):
            save_checkpoint(Path("c.safetensors"), state)
        """,
        tmp_path,
    )
    assert growth < SLACK_MB, f"writing {SIZE_MB} MB of tensors grew the process by {growth:.0f} MB"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB: Linux")
def test_a_model_file_is_written_without_copying_its_weights(tmp_path):
    growth = _growth_mb(
        """
        from adfd_core.modelfile import ModelFile, save_model
        from adfd_core.models import registry
        def setup():
            config = registry.make_config("cnn.v1", {"channels": "4,4,128", "dense": "8192"})  # 67 M parameters: 256 MB
            model = registry.build("cnn.v1", config)
            return model, ModelFile("cnn.v1", config, {"name": "stft-lf"}, training={})
        def run(model, info):
            save_model("m.safetensors", model, info)
        """,
        tmp_path,
    )
    assert growth < SLACK_MB, f"writing a 256-MB model grew the process by {growth:.0f} MB"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB: Linux")
def test_an_adam_step_holds_only_its_two_moments(tmp_path):
    growth = _growth_mb(
        f"""
        from adfd_core.training import adam
        def setup():
            params = [torch.nn.Parameter(torch.ones({SIZE_MB * MB // 4 // 8})) for _ in range(8)]
            for p in params:
                p.grad = torch.ones_like(p)
            return (adam(params, 1e-3, 0.01, torch.device("cpu")),)
        def run(optimizer):
            optimizer.step()
            optimizer.step()
        """,
        tmp_path,
    )
    assert growth < 2 * SIZE_MB + SLACK_MB, f"Adam on {SIZE_MB} MB of weights grew the process by {growth:.0f} MB"


def test_tied_tensors_are_written_once_each_and_read_back(tmp_path):
    import torch
    from safetensors.torch import load_file

    from adfd_core.safetensors_io import storable, write_atomically

    w = torch.arange(6.0)
    ready = storable({"a": w, "b": w, "c": w[2:4]})
    assert ready["a"].data_ptr() == w.data_ptr()  # the first is not copied
    assert len({t.untyped_storage().data_ptr() for t in ready.values()}) == 3
    back = load_file(write_atomically(tmp_path / "t.safetensors", {"a": w, "b": w, "c": w[2:4]}, {"k": "v"}))
    assert torch.equal(back["b"], w) and torch.equal(back["c"], w[2:4])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and SIGXFSZ: Linux")
def test_a_write_past_the_file_size_limit_is_one_output_error_and_leaves_nothing(tmp_path):
    script = textwrap.dedent(
        """
        import resource, signal, sys, torch
        from pathlib import Path
        from adfd_core.outputs import OutputError
        from adfd_core.safetensors_io import write_atomically
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            write_atomically(Path("big.safetensors"), {"w": torch.ones(1_000_000)}, {})
        except OutputError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("big.safetensors: cannot write:") and OutputError.__name__ not in done.stdout
    assert list(tmp_path.iterdir()) == []
