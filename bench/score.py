"""Benchmark: `adfd score` cold start on one 10-s file, and batch throughput as a multiple of real time.

(a) cold start: `adfd score FILE.wav` in a fresh process (imports, model loading, front-end
construction, decoding, scoring, writing the table), median of --runs runs after one untimed run
that warms the disk cache. Target: <= 3 s on a 2-core CPU machine.
(b) throughput: `adfd score --from-list -` over the first --files devset files; total audio
seconds / wall seconds of the whole process (cold start included), and the same with the median
cold start taken off (the rate once started).
Wall and CPU seconds (user + system, workers included) are both reported, with the load average:
on a shared machine CPU seconds are the steadier figure.

    python bench/score.py                                   # the bundled default model, CPU
    python bench/score.py -m model.safetensors [-m other.safetensors]
    python bench/score.py --untrained stft-lf               # an untrained full-size cnn.v1 on stft-lf
    python bench/score.py --untrained cqt --files 760 --jobs 2 --device cuda

The 10-s file is the first devset recordings joined and cut to 10 s (a synthetic voiced sound
without the devset). Needs ../shared/data/devset (or --corpus) for (b). Run by hand; not run by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import DEVSET, adfd_command, corpus_files

ADFD = adfd_command()
SR = 16_000
COLD_FILE_SECONDS = 10.0


def corpus_rows(corpus: Path | None, files: int) -> list[tuple[Path, float]]:
    """(path, duration in s) of the first ``files`` files of the corpus (default: the devset)."""
    import soundfile as sf

    return [(path, sf.info(str(path)).duration) for path in corpus_files(corpus, files)]


def ten_second_file(folder: Path, corpus: Path | None) -> Path:
    """A 16-kHz WAV of exactly COLD_FILE_SECONDS: the corpus's speech joined, else a synthetic voiced sound."""
    import numpy as np
    import soundfile as sf

    n = round(COLD_FILE_SECONDS * SR)
    if corpus is not None or DEVSET.exists():
        from adfd_core.audio import load

        parts, have = [], 0
        for path, _ in corpus_rows(corpus, 50):
            parts.append(load(path))
            have += len(parts[-1])
            if have >= n:
                break
        wave = np.concatenate(parts)[:n]
    else:
        t = np.arange(n) / SR
        f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
        phase = 2 * np.pi * np.cumsum(f0) / SR
        wave = sum(np.sin(k * phase) / k for k in range(1, 30)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
        wave = (0.3 * wave / np.abs(wave).max()).astype(np.float32)
    if len(wave) < n:
        wave = np.resize(wave, n)
    path = folder / "ten_seconds.wav"
    sf.write(str(path), wave, SR)
    return path


def untrained_models(folder: Path, frontends: list[str]) -> list[Path]:
    """Full-size cnn.v1 model files (paper config, random weights) on each front-end: timing stand-ins."""
    import torch

    from adfd_core.frontends import build
    from adfd_core.modelfile import ModelFile, save_model
    from adfd_core.models import registry

    paths = []
    for i, name in enumerate(frontends):
        fe = build(name)
        config = registry.make_config("cnn.v1", input_shape=tuple(fe.output_shape()))
        torch.manual_seed(i)
        info = ModelFile(name="cnn.v1", config=config, frontend=fe.spec.to_dict(), training={"note": "untrained, for bench"})
        paths.append(save_model(folder / f"untrained-cnn-{name}.safetensors", registry.build("cnn.v1", config), info))
    return paths


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], stdin: str | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of ``cmd`` in a fresh process; exits on failure (3, some inputs failed, is allowed).

    CPU seconds (user + system, the process and its workers) say more than wall time on a shared machine.
    """
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 3):
        sys.exit(f"{' '.join(cmd[2:5])} ... failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, _children_cpu() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", action="append", type=Path, help="model file, repeatable (default: the bundled model)")
    ap.add_argument("--untrained", action="append", metavar="FRONTEND",
                    help="time an untrained full-size cnn.v1 on this front-end instead (repeatable)")
    ap.add_argument("--runs", type=int, default=5, help="cold-start runs (median reported)")
    ap.add_argument("--corpus", type=Path, help="folder of audio, or a manifest.tsv (default: ../shared/data/devset)")
    ap.add_argument("--files", type=int, default=200, help="corpus files for the throughput run")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--skip-cold", action="store_true")
    ap.add_argument("--skip-batch", action="store_true")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = (args.model or []) + (untrained_models(tmp, args.untrained) if args.untrained else [])
        model_args = [a for m in models for a in ("-m", str(m))]
        label = [m.name for m in models] or ["bundled default"]
        cold = None
        if not args.skip_cold:
            wav = ten_second_file(tmp, args.corpus)
            cmd = [*ADFD, "score", str(wav), *model_args, "--device", args.device]
            timed(cmd)  # warms the disk cache; not counted
            runs = [timed(cmd) for _ in range(args.runs)]
            cold = statistics.median(wall for wall, _ in runs)
            row = {"bench": "cold_start", "file_s": COLD_FILE_SECONDS, "models": label, "device": args.device,
                   "median_s": round(cold, 3), "runs_s": [round(w, 3) for w, _ in runs],
                   "median_cpu_s": round(statistics.median(c for _, c in runs), 3), "load_avg": os.getloadavg()[0]}
            results.append(row)
            print(json.dumps(row), flush=True)
        if not args.skip_batch:
            rows = corpus_rows(args.corpus, args.files)
            audio_s = sum(d for _, d in rows)
            cmd = [*ADFD, "score", "--from-list", "-", *model_args, "--jobs", str(args.jobs), "--device", args.device,
                   "--batch-size", str(args.batch_size), "-o", str(tmp / "scores.tsv")]
            wall, cpu = timed(cmd, stdin="\n".join(str(p) for p, _ in rows))
            row = {"bench": "throughput", "files": len(rows), "audio_s": round(audio_s, 1), "wall_s": round(wall, 2),
                   "cpu_s": round(cpu, 2), "x_realtime": round(audio_s / wall, 1), "models": label, "device": args.device,
                   "jobs": args.jobs, "load_avg": os.getloadavg()[0]}
            if cold is not None and wall > cold:
                row["x_realtime_after_start"] = round(audio_s / (wall - cold), 1)
            results.append(row)
            print(json.dumps(row), flush=True)
    for r in results:
        if r["bench"] == "cold_start":
            print(f"cold start  {r['file_s']:.0f}-s file: median {r['median_s']:.2f} s of {len(r['runs_s'])} runs "
                  f"(min {min(r['runs_s']):.2f}, max {max(r['runs_s']):.2f}), {r['median_cpu_s']:.2f} s CPU; "
                  f"{', '.join(r['models'])}; {r['device']}; load {r['load_avg']:.1f}",
                  file=sys.stderr)
        else:
            after = f", {r['x_realtime_after_start']}x once started" if "x_realtime_after_start" in r else ""
            print(f"throughput  {r['files']} files, {r['audio_s']} s of audio in {r['wall_s']} s: "
                  f"{r['x_realtime']}x real time{after}; {r['cpu_s']} s CPU; jobs {r['jobs']}, {r['device']}; "
                  f"load {r['load_avg']:.1f}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
