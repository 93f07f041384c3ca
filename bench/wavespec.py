"""Benchmark: WaveSpec's throughput and peak memory at the full XLS-R 300M size: forward, forward+backward, a training epoch.

The model is WaveSpecConfig's defaults (4-s crops, Wav2Vec2 layers 8/16/24, every transformer layer
trained, the conv feature encoder frozen) with random weights of the full XLS-R 300M architecture
(``pretrained=None, encoder_config=xlsr_300m_encoder_config()``): nothing is downloaded. On one
fixed batch of random 4-s crops, per device and batch size:

- forward: eval mode under torch.inference_mode, softmax of the logits (what scoring does);
- forward+backward: train mode, ``training_loss`` (cross-entropy + single center loss) and
  backward; no optimizer step (Adam would add 8 bytes per trainable parameter, about 2.5 GB).
- epoch: ``adfd_core.training.train`` for one epoch on 2 x batch random 4-s clips (two steps),
  validated on 2 clips: the model, Adam's moments, the best epoch's copy of the weights, the
  checkpoint and the model file written, all counted. ``steps`` and ``warmup`` do not apply;
  samples/s includes validation and writing (1.3 GB each for the model file, 5 GB for the checkpoint).

bf16 autocast on CUDA, float32 on the CPU; warm-up steps excluded. Peak memory:
torch.cuda.max_memory_allocated on a GPU; on the CPU the peak resident set (ru_maxrss) of a fresh
process per measurement, imports, weights and CQT kernels included (``rss_before_mib`` is the
resident set once the model is built). A CPU measurement at a larger batch is first estimated
from the smallest batch's (model + per-sample growth, linear in the batch) and skipped when it
would not fit in the memory available (not for an epoch, whose weights and optimizer do not grow
with the batch: at batch 2 it peaks near 6 GB on the CPU).

    python bench/wavespec.py                               # the CPU, and CUDA when there is one; batches 8, 32
    python bench/wavespec.py --device cuda --warmup 3 --steps 20
    python bench/wavespec.py --batch 8 --set finetune_layers=0
    python bench/wavespec.py --device cpu --mode epoch --batch 2 --batch 8   # peak memory of training per batch size

Prints a Markdown table on stdout and one JSON line per measurement on stderr. Run by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from measure import MIB, peak_rss_mib, rss_mib, time_steps

MODES = ("forward", "forward+backward", "epoch")
DEFAULT_MODES = MODES[:2]  # an epoch writes GBs of files; ask for it with --mode epoch
_HEADROOM = 0.9  # share of MemAvailable a CPU run may be estimated to use


def _available_mib() -> float:
    """MemAvailable from /proc/meminfo."""
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) / 1024  # kB


def measure(device_name: str, mode: str, batch: int, steps: int, warmup: int, max_seconds: float, sets: dict) -> dict:
    """One measurement in this process: samples/s of ``mode`` and its peak memory."""
    import torch

    from adfd_core.models import config as configs
    from adfd_core.models.wavespec import WaveSpec, WaveSpecConfig, xlsr_300m_encoder_config

    device = torch.device(device_name)
    if mode == "epoch":
        return measure_epoch(device, batch, sets)
    torch.manual_seed(0)
    fields = {**sets, "pretrained": "none", "encoder_config": xlsr_300m_encoder_config()}
    model = WaveSpec(configs.make("wavespec.v1", WaveSpecConfig, fields, text=True)).to(device)
    x = (0.1 * torch.randn(batch, model.samples)).to(device)
    y = (torch.arange(batch) % 2).to(device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def forward() -> None:
        with torch.inference_mode(), amp:
            model(x).float().softmax(dim=1)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        with amp:
            loss, _ = model.training_loss({"x": x, "y": y})
        loss.backward()

    step = forward if mode == "forward" else forward_backward
    model.train(mode != "forward")
    rss_before = rss_mib()
    timed, seconds = time_steps(step, device, warmup, steps, max_seconds)
    row = {
        "device": device_name, "mode": mode, "batch": batch, "steps": timed, "warmup": warmup,
        "seconds": round(seconds, 2), "samples_per_s": round(timed * batch / seconds, 2),
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "amp": "bf16" if device.type == "cuda" else "off", "torch": torch.__version__, "sets": sets,
    }  # fmt: skip
    return {**row, **_peak_memory(device, rss_before)}


def _peak_memory(device, rss_before: float) -> dict:
    """The run's peak memory: CUDA's peak allocation on a GPU, else the process's peak RSS (MiB)."""
    import torch

    if device.type == "cuda":
        return {"peak_mib": round(torch.cuda.max_memory_allocated(device) / MIB), "peak_kind": "cuda_max_allocated",
                "gpu": torch.cuda.get_device_name(device)}
    return {"peak_mib": round(peak_rss_mib()), "peak_kind": "ru_maxrss", "rss_before_mib": round(rss_before),
            "threads": torch.get_num_threads()}


def _clips(path, n: int, seed: int):
    """A feature file of ``n`` random 4-s waveforms (feature ``wave``), half of them bona fide."""
    import numpy as np

    from adfd_core.corpus import Utterance
    from adfd_core.store import FeatureWriter, StoredUtterance

    rng = np.random.default_rng(seed)
    spec = {"name": "wave", "version": 1, "params": {"sample_rate": 16_000, "segment_seconds": None}, "row_shape": []}
    writer = FeatureWriter.open(path, {"wave": spec}, identity=f"bench-{seed}", provenance={"bench": "wavespec"})
    for i in range(n):
        writer.add_rows("wave", (0.1 * rng.standard_normal(64_000)).astype(np.float32))
        label = "bonafide" if i % 2 else "spoof"
        utt = Utterance(id=f"c{seed}_{i}", path=Path(f"/bench/{i}.wav"), label=label, attack="-" if i % 2 else "A01")
        writer.end_utterance(StoredUtterance(utt, content_hash=f"{seed:032x}{i:032x}", duration_s=4.0))
    return writer.finish()


def measure_epoch(device, batch: int, sets: dict) -> dict:
    """One training epoch (two steps of ``batch``) through adfd's training loop: its time and peak memory."""
    import tempfile
    import time

    import torch

    from adfd_core.training import TrainOptions, train

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train_h5, val_h5 = _clips(folder / "train.h5", 2 * batch, 0), _clips(folder / "val.h5", 2, 1)
        options = TrainOptions(model="wavespec.v1", epochs=1, batch_size=batch, device=str(device),
                               overrides=tuple({**sets, "pretrained": "none"}.items()))  # fmt: skip
        rss_before, start = rss_mib(), time.perf_counter()
        train(train_h5, val_h5, folder / "wavespec.safetensors", options)
        seconds = time.perf_counter() - start
    row = {"device": str(device), "mode": "epoch", "batch": batch, "steps": 2, "warmup": 0, "seconds": round(seconds, 2),
           "samples_per_s": round(2 * batch / seconds, 2), "amp": "bf16" if device.type == "cuda" else "off",
           "torch": torch.__version__, "sets": sets}  # fmt: skip
    return {**row, **_peak_memory(device, rss_before)}


def run_fresh(args: argparse.Namespace, device: str, mode: str, batch: int) -> dict:
    """``measure`` in a new process (its own peak RSS); its JSON row, or a row saying why it failed."""
    job = json.dumps([device, mode, batch, args.steps, args.warmup, args.max_seconds, dict(args.set)])
    done = subprocess.run([sys.executable, __file__, "--worker", job], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return {"device": device, "mode": mode, "batch": batch, "skipped": f"failed: {tail[0][:200]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def estimate_mib(smallest: dict, batch: int) -> float:
    """A CPU peak at ``batch`` from a measured one: the built model plus a per-sample share, linear in the batch."""
    per_sample = (smallest["peak_mib"] - smallest["rss_before_mib"]) / smallest["batch"]
    return smallest["rss_before_mib"] + per_sample * batch


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    lines = ["| device | mode | batch | timed steps | samples/s | s/step | peak MiB | peak of |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        where = r.get("gpu") or (f"cpu, {r['threads']} threads" if "threads" in r else r["device"])
        if "skipped" in r:
            lines.append(f"| {where} | {r['mode']} | {r['batch']} | - | {r['skipped']} | - | - | - |")
            continue
        per_step = r["seconds"] / r["steps"]
        lines.append(f"| {where} | {r['mode']} | {r['batch']} | {r['steps']} | {r['samples_per_s']} | {per_step:.2f} | "
                     f"{r['peak_mib']} | {r['peak_kind']} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", action="append", help="cpu, cuda or cuda:N, repeatable (default: cpu, and cuda when available)")
    ap.add_argument("--batch", action="append", type=int, help="batch size, repeatable (default: 8 and 32)")
    ap.add_argument("--mode", action="append", choices=MODES, help="default: forward and forward+backward")
    ap.add_argument("--steps", type=int, default=2, help="most timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="stop timing after this long (at least one step)")
    ap.add_argument("--set", action="append", default=[], type=lambda s: tuple(s.split("=", 1)), metavar="KEY=VALUE",
                    help="WaveSpecConfig override, repeatable (pretrained and encoder_config are fixed)")  # fmt: skip
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        device, mode, batch, steps, warmup, max_seconds, sets = json.loads(args.worker)
        print(json.dumps(measure(device, mode, batch, steps, warmup, max_seconds, sets)))
        return
    devices = args.device
    if not devices:
        import torch

        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    rows = []
    for device in devices:
        for mode in args.mode or DEFAULT_MODES:
            smallest = None
            for batch in sorted(args.batch or [8, 32]):
                need = estimate_mib(smallest, batch) if device == "cpu" and smallest and mode != "epoch" else 0.0
                if need > _HEADROOM * _available_mib():
                    row = {"device": device, "mode": mode, "batch": batch,
                           "skipped": f"skipped: needs ~{need / 1024:.1f} GiB, {_available_mib() / 1024:.1f} GiB available"}  # fmt: skip
                else:
                    row = run_fresh(args, device, mode, batch)
                    smallest = smallest or (row if "skipped" not in row else None)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    print(table(rows))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
