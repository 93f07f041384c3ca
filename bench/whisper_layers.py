"""Benchmark: the `whisper` front-end's speed by encoder depth, and which layer separates sources it never saw.

    python bench/whisper_layers.py speed --model /work/models/whisper-base --layers 2 4 all
    python bench/whisper_layers.py layers --model /work/models/whisper-base --clips 400 --depth 6

speed: segments per second of the front-end alone (log-mel and encoder, cut after the layer; audio
decoded and cut beforehand) over the 2-s segments of --files trainset clips, batches of 64.
layers: featurizes --clips trainset clips (a seeded draw, about the same number from every source)
with layers 1..depth and mean+std pooling in one pass, then for each layer trains a logistic
regression (standardized rows, C=1) on the segments of some sources and scores the recordings of
the others (the mean of their segments' probabilities), over --folds folds of the sources.
Prints one line per layer: pooled AUC and EER over the held-out recordings of every fold.
Needs ../shared/data/trainset and scikit-learn. Run by hand; quoted in issue notes, not run in CI.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

import numpy as np
import torch

from adfd_core import audio, frontends, metrics

TRAINSET = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trainset"  # beside the checkout (/work/main)


def manifest(root: Path) -> list[dict[str, str]]:
    with open(root / "manifest.tsv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def draw(rows: list[dict[str, str]], n: int, seed: int) -> list[dict[str, str]]:
    """About n rows, the same number from every source where it has them (seeded)."""
    by_source: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    rng = random.Random(seed)
    per = max(1, n // len(by_source))
    picked = [r for group in by_source.values() for r in rng.sample(group, min(per, len(group)))]
    rest = [r for r in rows if r not in picked]
    picked += rng.sample(rest, max(0, n - len(picked)))
    return picked


def segments_of(root: Path, rows: list[dict[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """(n_segments, 32000) float32 segments and the index of the row each came from."""
    segs, owner = [], []
    for i, row in enumerate(rows):
        s = audio.segments(audio.load(root / row["path"]), 32_000)
        segs.append(s)
        owner += [i] * len(s)
    return np.concatenate(segs), np.array(owner)


def embed(model: str, layers: list[int] | None, pooling: str, x: np.ndarray, batch: int = 64) -> tuple[np.ndarray, float]:
    """Rows of the whisper front-end for segments x, and the seconds it took (network load excluded)."""
    fe = frontends.build("whisper", model=model, layers=layers, pooling=pooling).eval()
    fe.loaded()
    start = time.perf_counter()
    with torch.inference_mode():
        out = np.concatenate([fe(torch.from_numpy(x[i : i + batch])).numpy() for i in range(0, len(x), batch)])
    return out, time.perf_counter() - start


def speed(args: argparse.Namespace) -> None:
    rows = draw(manifest(args.root), args.files, args.seed)
    x, _ = segments_of(args.root, rows)
    for depth in args.layers:
        layers = None if depth == "all" else [int(depth)]
        _, seconds = embed(args.model, layers, "mean", x)
        print(f"{args.model} layers={depth}: {len(x)} segments in {seconds:.1f} s = {len(x) / seconds:.1f} segments/s")


def separability(args: argparse.Namespace) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rows = draw(manifest(args.root), args.clips, args.seed)
    x, owner = segments_of(args.root, rows)
    layers = list(range(1, args.depth + 1))
    emb, seconds = embed(args.model, layers, "mean+std", x)
    print(f"{len(rows)} clips, {len(x)} segments, {len(set(r['source'] for r in rows))} sources; featurized in {seconds:.0f} s")
    y_rec = np.array([1 if r["label"] == "bonafide" else 0 for r in rows])
    sources = sorted({r["source"] for r in rows})
    random.Random(args.seed).shuffle(sources)
    fold_of = {s: i % args.folds for i, s in enumerate(sources)}
    rec_fold = np.array([fold_of[r["source"]] for r in rows])
    for j, layer in enumerate(layers):
        scores = np.full(len(rows), np.nan)
        for fold in range(args.folds):
            train_seg = rec_fold[owner] != fold
            scaler = StandardScaler().fit(emb[train_seg, j])
            clf = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(emb[train_seg, j]), y_rec[owner[train_seg]])
            test_seg = ~train_seg
            p = clf.predict_proba(scaler.transform(emb[test_seg, j]))[:, 1]
            for rec in np.unique(owner[test_seg]):
                q = np.clip(float(p[owner[test_seg] == rec].mean()), 1e-9, 1 - 1e-9)  # float64: p is float32
                scores[rec] = np.log(q) - np.log1p(-q)
        bona, spoof = scores[y_rec == 1], scores[y_rec == 0]
        eer, _ = metrics.eer(bona, spoof)
        print(f"layer {layer}: AUC {metrics.auc(bona, spoof):.3f}  EER {100 * eer:.1f} %  (sources held out, {args.folds} folds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=TRAINSET, help="corpus folder with manifest.tsv (default: ../shared/data/trainset)")
    parser.add_argument("--model", required=True, help="a transformers Whisper folder")
    parser.add_argument("--seed", type=int, default=0)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--files", type=int, default=50)
    s.add_argument("--layers", nargs="+", default=["2", "4", "all"])
    s.set_defaults(run=speed)
    s = sub.add_parser("layers")
    s.add_argument("--clips", type=int, default=400)
    s.add_argument("--depth", type=int, default=6)
    s.add_argument("--folds", type=int, default=4)
    s.set_defaults(run=separability)
    args = parser.parse_args()
    if not (args.root / "manifest.tsv").is_file():
        parser.error(f"{args.root}: no manifest.tsv there; give --root, a folder with manifest.tsv and its audio")
    torch.manual_seed(args.seed)
    args.run(args)


if __name__ == "__main__":
    main()
