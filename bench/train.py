"""Benchmark: training and inference throughput of the models `adfd train` builds.

For each model case and device: samples per second of a training step (forward, the model's
training loss, backward, Adam step: what adfd_core.training does per batch, bf16 autocast on CUDA)
and of an inference batch (eval mode, softmax), on one fixed batch of random 3x64x64 rows, or of
waveform crops with random labels for a waveform model (no data loading, no augmentation),
warm-up steps excluded; and the peak memory: torch.cuda.max_memory_allocated on a GPU, the
process's peak resident set (ru_maxrss, imports included; ``rss_before_mib`` is the resident set
once torch and the model are loaded) on the CPU. Each measurement runs in a fresh process so
that the CPU peaks do not mix. Also the model's parameters and the floating-point operations of
one step per sample (``gflops_per_sample``: torch.utils.flop_counter.FlopCounterMode over one more
step after the timed ones, a multiply-add counted as 2 FLOPs; a train step counts forward and backward
of the training loss, an inference step the forward pass; papers often quote multiply-adds, half of it).

Models come from adfd_core.models.registry (make_config/build, wrapped in Standardized) as
training builds them. Default cases: cnn.v1; convnext_tiny.v1 (resizes 64x64 rows to 224x224);
convnext_tiny.v1:input_size=none (native 64x64).

    python bench/train.py                                  # the CPU, and CUDA when there is one
    python bench/train.py --device cuda --steps 50
    python bench/train.py --case cnn.v1 --case resnet18.v1:input_size=112 --steps 5 --warmup 1
    python bench/train.py --case fdl.v1:synthesizers=a,b,c,d --batch-size 32   # 3-s waveform crops
    python bench/train.py --case whisper-probe.v1:pretrained=adfd_core/default_model/whisper-probe.safetensors,finetune_blocks=1

Prints one JSON line per measurement on stdout and a table on stderr. Run by hand; quoted in
issue notes, not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from measure import MIB, peak_rss_mib, rss_mib, time_steps

DEFAULT_CASES = ["cnn.v1", "convnext_tiny.v1", "convnext_tiny.v1:input_size=none"]


def parse_case(case: str) -> tuple[str, dict[str, str]]:
    """``name[:key=value,...]`` -> (registered name, config overrides as --set strings); a piece without
    "=" continues the previous value (``fdl.v1:synthesizers=a,b,c,width=32``)."""
    name, _, rest = case.partition(":")
    pairs: list[list[str]] = []
    for item in filter(None, rest.split(",")):
        if "=" in item:
            pairs.append(item.split("=", 1))
        elif pairs:
            pairs[-1][1] += "," + item
        else:
            raise SystemExit(f"bad case {case!r}: expected name:key=value,...")
    return name, dict(pairs)


def _model_and_batch(name: str, overrides: dict[str, str], batch_size: int):
    """The model as training builds it, and one random training batch: 3x64x64 rows for a segment
    model (with their statistics set); for a waveform model, crops of its input length with every
    label it asks for (random synthesizer, codec and speed classes)."""
    import torch

    from adfd_core.models import registry

    e = registry.entry(name)
    if e.input_kind == "wave":
        model = registry.build(name, registry.make_config(name, overrides))
        config = model.config  # completed by the model (whisper-probe.v1's from its start file)
        n_synth = len(getattr(config, "synthesizers", ())) + 1
        batch = {"x": 0.1 * torch.randn(batch_size, round(config.crop_seconds * 16_000)), "y": torch.randint(0, 2, (batch_size,))}
        ranges = {"synth": n_synth, "codec": 10, "speed": 16}
        batch.update({f: torch.randint(0, ranges[f], (batch_size,)) for f in getattr(model, "batch_fields", ())})
        return model, batch
    shape = (3, 64, 64)
    model = registry.build(name, registry.make_config(name, overrides, input_shape=shape))
    x = torch.randn(batch_size, *shape)
    model.set_input_statistics(x.mean(dim=0), x.std(dim=0))
    return model, {"x": x, "y": torch.randint(0, 2, (batch_size,))}


def measure(case: str, device_name: str, mode: str, batch_size: int, steps: int, warmup: int, max_seconds: float) -> dict:
    """One measurement in this process: samples/s of ``mode`` ("train" or "infer") and its peak memory."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from adfd_core.training import _autocast, _Objective  # the precision and loss training uses

    name, overrides = parse_case(case)
    device = torch.device(device_name)
    torch.manual_seed(0)
    model, batch = _model_and_batch(name, overrides, batch_size)
    model.to(device)
    batch = {k: v.to(device) for k, v in batch.items()}
    x = batch["x"]
    objective = _Objective(model)  # the loss training optimizes: the model's own, or cross-entropy
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def train_step() -> None:
        with _autocast(device, True):
            loss, _ = objective(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer_step() -> None:
        with torch.inference_mode(), _autocast(device, True):
            model(x).float().softmax(dim=1)

    step = train_step if mode == "train" else infer_step
    model.train(mode == "train")
    rss_before = rss_mib()
    timed, seconds = time_steps(step, device, warmup, steps, max_seconds)
    with FlopCounterMode(display=False) as flops:
        step()
    row = {
        "case": case, "model": name, "overrides": overrides, "device": device_name, "mode": mode,
        "batch_size": batch_size, "steps": timed, "warmup": warmup, "seconds": round(seconds, 3),
        "samples_per_s": round(timed * batch_size / seconds, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "gflops_per_sample": round(flops.get_total_flops() / batch_size / 1e9, 3),
        "amp": "bf16" if device.type == "cuda" else "off", "torch": torch.__version__,
    }
    if device.type == "cuda":
        row.update(peak_mib=round(torch.cuda.max_memory_allocated(device) / MIB, 1), peak_kind="cuda_max_allocated",
                   gpu=torch.cuda.get_device_name(device))
    else:
        row.update(peak_mib=round(peak_rss_mib(), 1), peak_kind="ru_maxrss", rss_before_mib=round(rss_before, 1),
                   threads=torch.get_num_threads())
    return row


def run_fresh(args: argparse.Namespace, case: str, device: str, mode: str) -> dict:
    """``measure`` in a new process (its own peak RSS); the JSON it prints."""
    cmd = [sys.executable, __file__, "--worker", json.dumps([case, device, mode]), "--batch-size", str(args.batch_size),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--max-seconds", str(args.max_seconds)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{case} on {device} ({mode}) failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", action="append", help="model[:key=value,...], repeatable (default: %s)" % ", ".join(DEFAULT_CASES))
    ap.add_argument("--device", action="append", help="cpu, cuda or cuda:N, repeatable (default: cpu, and cuda when available)")
    ap.add_argument("--mode", action="append", choices=["train", "infer"], help="default: both")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20, help="most timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="stop timing after this long (at least one step)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        case, device, mode = json.loads(args.worker)
        print(json.dumps(measure(case, device, mode, args.batch_size, args.steps, args.warmup, args.max_seconds)))
        return
    devices = args.device
    if not devices:
        import torch

        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    results = []
    for device in devices:
        for case in args.case or DEFAULT_CASES:
            for mode in args.mode or ["train", "infer"]:
                row = run_fresh(args, case, device, mode)
                results.append(row)
                print(json.dumps(row), flush=True)
    print(f"{'case':34} {'device':6} {'mode':5} {'steps':>5} {'samples/s':>10} {'peak MiB':>9} {'peak of':>18} "
          f"{'M params':>8} {'GFLOPs/sample':>13}", file=sys.stderr)
    for r in results:
        print(f"{r['case']:34} {r['device']:6} {r['mode']:5} {r['steps']:>5} {r['samples_per_s']:>10} {r['peak_mib']:>9} "
              f"{r['peak_kind']:>18} {r['parameters'] / 1e6:>8.2f} {r['gflops_per_sample']:>13}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
