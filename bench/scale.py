"""Benchmark: featurize and score in one process against the same work on a local Ray cluster
(`--ray`: the overhead Ray costs on one node), and from the measured per-clip costs an estimate of
the wall time and cost of one million 4-s clips on N GPU nodes.

    python bench/scale.py                              # 120 generated 4-s clips, cqt, the bundled model
    python bench/scale.py --clips 400 --shards 8 --nodes 1 4 16 --gpu-hour-usd 3.0

Every run is a fresh `adfd` process, its start (imports, and with --ray the start of a local Ray
instance) included, on CPU. Each side gets the same cores: one process decodes with --jobs CORES, and
Ray runs one task per core. Run by hand; its output is quoted in the README, not run in CI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from measure import adfd_command

SR = 16_000


def make_clips(folder: Path, n: int, seconds: float) -> None:
    """``n`` clips: vowel-like harmonics (bonafide/) and noisy chirps (spoof/)."""
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * SR)) / SR
    for i in range(n):
        if i % 2:
            f0 = 100 + 5 * (i % 30)
            y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
            path = folder / "bonafide" / f"b{i:06d}.wav"
        else:
            y = np.sin(2 * np.pi * (200 + 2000 * t / seconds) * t) + 0.05 * rng.standard_normal(len(t))
            path = folder / "spoof" / "tts" / f"s{i:06d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.3 * y / np.abs(y).max()).astype(np.float32), SR)


def timed(args: list[str]) -> float:
    """Seconds one `adfd` command takes; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run([*adfd_command(), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"adfd {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--feature", default="cqt")
    parser.add_argument("--shards", type=int, default=4, help="--ray-shards of the Ray runs")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--gpu-hour-usd", type=float, default=2.5, help="price of one GPU node-hour (assumed)")
    parser.add_argument("--cores-per-node", type=int, default=16, help="CPU cores of each GPU node (assumed)")
    parser.add_argument("--gpu-speedup", type=float, default=30.0,
                        help="front-end and model work: one GPU against one CPU core (assumed; not measured here)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_clips(root / "clips", args.clips, args.seconds)
        make_clips(root / "one", 1, args.seconds)
        clips, single = str(root / "clips"), str(root / "one")
        common = ["--device", "cpu"]
        one_feat = timed(["featurize", clips, "-o", str(root / "one.h5"), "-f", args.feature, "-j", str(cores), *common])
        ray_feat = timed(["featurize", clips, "-o", str(root / "ray.h5"), "-f", args.feature, "--ray",
                          "--ray-shards", str(args.shards), *common])
        decode = timed(["featurize", clips, "-o", str(root / "wave.h5"), "-f", "wave", "-j", str(cores), *common])
        one_score = timed(["score", clips, "-o", str(root / "one.tsv"), "-j", str(cores), *common])
        ray_score = timed(["score", clips, "-o", str(root / "ray.tsv"), "--ray", "--ray-shards", str(args.shards), *common])
        # Each command's fixed cost (imports, building the front-end or loading the model) is its time on one clip.
        start = {"decode": timed(["featurize", single, "-o", str(root / "1w.h5"), "-f", "wave", *common]),
                 "featurize": timed(["featurize", single, "-o", str(root / "1.h5"), "-f", args.feature, *common]),
                 "score": timed(["score", single, "-o", str(root / "1.tsv"), *common])}
    n = args.clips
    print(f"## adfd on one node: one process against a local Ray cluster ({cores} cores, CPU, {n} clips of {args.seconds:g} s)\n")
    print("| work | one process: s (clips/s) | --ray, local instance: s (clips/s) | Ray's cost |")
    print("|---|---|---|---|")
    for name, one, ray in ((f"featurize -f {args.feature}", one_feat, ray_feat), ("score (bundled model)", one_score, ray_score)):
        print(f"| {name} | {one:.1f} ({n / one:.1f}) | {ray:.1f} ({n / ray:.1f}) | {ray - one:+.1f} s |")
    # Per-clip CPU-core seconds, each command's fixed cost taken out.
    per = {k: max(v - start[k], 1e-9) * cores / (n - 1) for k, v in
           (("decode", decode), ("featurize", one_feat), ("score", one_score))}
    print("\nPer clip, in CPU-core seconds (each command's time on one clip taken out: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in start.items()) + f"): decode {per['decode']:.3f}, "
          f"featurize {per['featurize']:.3f}, score {per['score']:.3f}.\n")
    print(f"## Estimate: one million {args.seconds:g}-s clips on N GPU nodes\n")
    print(f"Assumed: {args.cores_per_node} CPU cores per node decode (measured cost above, scales with cores); the "
          f"front-end and model run on the node's GPU {args.gpu_speedup:g}x faster than one CPU core (not measured: no GPU "
          f"here); the slower of the two bounds a node; a node-hour costs ${args.gpu_hour_usd:g}; shards balance and "
          "Ray's start (tens of seconds) is left out.\n")
    print("| N nodes | featurize: minutes | featurize: USD | score: minutes | score: USD |")
    print("|---|---|---|---|---|")
    million = 1_000_000
    for nodes in args.nodes:
        cells = []
        for work in ("featurize", "score"):
            decode_s = million * per["decode"] / (args.cores_per_node * nodes)
            device_s = million * max(per[work] - per["decode"], 0.0) / args.gpu_speedup / nodes
            hours = max(decode_s, device_s) / 3600
            cells += [f"{hours * 60:.1f}", f"{hours * nodes * args.gpu_hour_usd:.2f}"]
        print(f"| {nodes} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
