"""Benchmark: `adfd featurize` against a straightforward per-file librosa pipeline.

Both sides run in a fresh process (cold start included: imports, librosa's CQT compilation,
adfd's kernel construction; adfd as the installed `adfd` command), over the same files, computing the same 3x64x64 features
(2-s segments, window 1024, hop 512, 64 bands (63 for librosa's CQT, which refuses the top bin at
16 kHz), log, DCT along time, deltas), and writing
them to HDF5. Reports segments per second for each and adfd's speed-up.

    python bench/featurize.py                                  # the devset (760 files, 1.2 h), CPU
    python bench/featurize.py --repeat 4                       # 4.8 h: cold start amortized
    python bench/featurize.py --corpus DIR --feature cqt --device cuda

Needs ../shared/data/devset (or --corpus). Run by hand; quoted in issue notes, not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import adfd_command, corpus_files

# The per-file librosa pipeline, run as its own process so its cold start counts too.
LIBROSA_SCRIPT = r'''
import sys, time
import h5py, librosa, numpy as np, scipy.fft

feature, out, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
SR, WIN, HOP, BANDS, SEG = 16000, 1024, 512, 64, 32000

def linear_filterbank():
    freqs = np.linspace(0, SR / 2, WIN // 2 + 1)
    edges = np.linspace(0, SR / 2, BANDS + 2)
    fb = np.zeros((BANDS, len(freqs)))
    for b in range(BANDS):
        lo, c, hi = edges[b], edges[b + 1], edges[b + 2]
        fb[b] = np.maximum(0, np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)))
    return fb / np.maximum(fb.sum(axis=1, keepdims=True), 1e-12)

FB = linear_filterbank()

def segments(y):
    if len(y) <= SEG:
        return [np.resize(y, SEG)]
    segs = [y[i:i + SEG] for i in range(0, len(y) - SEG + 1, SEG)]
    if len(y) % SEG:
        segs.append(y[-SEG:])
    return segs

def spectrogram(seg):
    seg = np.pad(seg, (0, (-len(seg)) % HOP))
    if feature == "cqt":
        # librosa refuses the 64th bin at 16 kHz: it computes 63
        power = np.abs(librosa.cqt(seg, sr=SR, hop_length=HOP, fmin=32.70, n_bins=63, bins_per_octave=8)) ** 2
    else:
        power = FB @ (np.abs(librosa.stft(seg, n_fft=WIN, hop_length=HOP)) ** 2)
    static = scipy.fft.dct(np.log(np.maximum(power, 1e-10)), type=2, norm="ortho", axis=-1)
    return np.stack([static, librosa.feature.delta(static, order=1), librosa.feature.delta(static, order=2)])

n = 0
with h5py.File(out, "w") as h5:
    ds = None
    for path in paths:
        y, _ = librosa.load(path, sr=SR, mono=True)
        feats = np.stack([spectrogram(s) for s in segments(y)]).astype(np.float32)
        if ds is None:
            ds = h5.create_dataset("data", shape=(0, *feats.shape[1:]), maxshape=(None, *feats.shape[1:]), dtype=np.float32)
        ds.resize(n + len(feats), axis=0)
        ds[n:] = feats
        n += len(feats)
print(n)
'''


def list_files(corpus: Path | None, files: int, repeat: int, tmp: Path) -> list[str]:
    """The first ``files`` audio paths of the corpus (default: the devset), each linked ``repeat`` times
    under ``tmp`` so that a bigger corpus shows throughput once cold start is amortized."""
    paths = corpus_files(corpus, files)
    if repeat == 1:
        return [str(p) for p in paths]
    linked = []
    for r in range(repeat):
        for i, p in enumerate(paths):
            link = tmp / "corpus" / f"copy{r}" / f"{i:06d}{p.suffix}"
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(p.resolve())
            linked.append(str(link))
    return linked


def timed(cmd: list[str], stdin: str | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 3):
        sys.exit(f"{cmd[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, help="folder of audio, or a manifest.tsv (default: ../shared/data/devset)")
    ap.add_argument("--files", type=int, default=760, help="how many files (default: all 760 of the devset)")
    ap.add_argument("--repeat", type=int, default=1, help="use each file this many times (a bigger corpus)")
    ap.add_argument("--feature", action="append", choices=["stft-lf", "cqt"], help="default: both")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-librosa", action="store_true", help="time adfd only (e.g. on a GPU machine)")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = list_files(args.corpus, args.files, args.repeat, Path(tmp))
        for feature in args.feature or ["stft-lf", "cqt"]:
            out = Path(tmp) / f"adfd-{feature}.h5"
            adfd_cmd = [*adfd_command(), "featurize", "--from-list", "-", "-o", str(out), "-f", feature,
                        "--jobs", str(args.jobs), "--device", args.device]
            adfd_s, _ = timed(adfd_cmd, stdin="\n".join(paths))
            import h5py

            with h5py.File(out, "r") as h5:
                segments = int(h5["features"][feature].attrs["n_rows"])
            row = {"feature": feature, "files": len(paths), "segments": segments, "adfd_s": round(adfd_s, 2),
                   "adfd_seg_per_s": round(segments / adfd_s, 1), "device": args.device, "jobs": args.jobs}
            if not args.skip_librosa:
                lib_s, lib_out = timed([sys.executable, "-c", LIBROSA_SCRIPT, feature, str(Path(tmp) / "lib.h5"), *paths])
                assert int(lib_out) == segments, f"librosa made {lib_out.strip()} segments, adfd {segments}"
                row.update(librosa_s=round(lib_s, 2), librosa_seg_per_s=round(segments / lib_s, 1),
                           speedup=round(lib_s / adfd_s, 2))
            results.append(row)
            print(json.dumps(row), flush=True)
    print(f"{'feature':8} {'segments':>8} {'adfd seg/s':>11} {'librosa seg/s':>14} {'speed-up':>9}", file=sys.stderr)
    for r in results:
        print(f"{r['feature']:8} {r['segments']:>8} {r['adfd_seg_per_s']:>11} {r.get('librosa_seg_per_s', '-'):>14} "
              f"{r.get('speedup', '-'):>9}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
