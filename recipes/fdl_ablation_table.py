"""Print the Markdown table of recipes/fdl_ablations.sh: each ablation's test EER and AUC, how far chance
alone could move them, and whether it differs from the full model by more than that.

    printf '%s\\n' "NAME|SETS|PAPER" ... | python recipes/fdl_ablation_table.py OUT_DIR [--resamples 2000]

Per row: the best epoch and its validation AUC (OUT_DIR/NAME.train.json); the test EER with a 95 %
bootstrap interval (bona fide and spoof recordings resampled apart, ``--resamples`` times) and the
binomial standard error sqrt(EER (1 - EER) / n_bonafide); the AUC; and the EER difference from the
"full" row with a paired 95 % bootstrap interval (the same resampled recordings score both systems).
A difference whose interval holds 0 is marked "noise".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from adfd_core import metrics
from adfd_core.scoretable import read_scores

BASELINE = "full"


def class_scores(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The score table's bona fide and spoof scores, each by recording id: {"bonafide": (ids, scores), "spoof": ...}."""
    table = read_scores(path)
    labels, scored = np.asarray(table.labels), ~np.isnan(table.scores)
    ids = np.asarray(table.ids)
    return {c: (ids[scored & (labels == c)], table.scores[scored & (labels == c)]) for c in ("bonafide", "spoof")}


def resampled_eers(scores: dict, draws: dict) -> np.ndarray:
    """(R,) EER of each bootstrap draw: draws[c] (R, n_c) indices into class c's recordings."""
    bona, spoof = scores["bonafide"][1], scores["spoof"][1]
    return np.array([metrics.eer(bona[b], spoof[s])[0] for b, s in zip(draws["bonafide"], draws["spoof"])])


def aligned(scores: dict, ids: dict) -> dict:
    """``scores`` reordered to the recording ids ``ids[c]`` of a reference table (every id must be there)."""
    out = {}
    for c, want in ids.items():
        have, values = scores[c]
        index = {k: i for i, k in enumerate(have)}
        out[c] = (want, values[[index[k] for k in want]])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = [line.rstrip("\n").split("|") for line in sys.stdin if line.strip()]
    done = {name: class_scores(args.out / f"{name}.tsv") for name, *_ in rows if (args.out / f"{name}.tsv").exists()}
    if BASELINE not in done:
        sys.exit(f"{args.out}/{BASELINE}.tsv is missing: the differences need the full model's scores")
    ref_ids = {c: done[BASELINE][c][0] for c in ("bonafide", "spoof")}
    rng = np.random.default_rng(args.seed)
    draws = {c: rng.integers(0, len(ref_ids[c]), (args.resamples, len(ref_ids[c]))) for c in ref_ids}
    base = resampled_eers(done[BASELINE], draws)
    n_bona, n_spoof = len(ref_ids["bonafide"]), len(ref_ids["spoof"])
    print(f"Test: {n_bona} bona fide and {n_spoof} spoof recordings; {args.resamples} bootstrap resamples.\n")
    print("| ablation | `--set` | paper | epochs (best) | val AUC | test EER % [95 % CI] | ± binomial | AUC | ΔEER vs full [95 % CI] |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, sets, paper in rows:
        named = " ".join(f"`{s}`" for s in sets.split()) or "–"
        if name not in done:
            print(f"| {name} | {named} | {paper} | not run | | | | | |")
            continue
        scores = aligned(done[name], ref_ids)
        bona, spoof = scores["bonafide"][1], scores["spoof"][1]
        eer = metrics.eer(bona, spoof)[0]
        boot = resampled_eers(scores, draws)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        log = json.loads((args.out / f"{name}.train.json").read_text())
        cells = [
            name, named, paper,
            f"{log['epochs_run']} ({log['best_epoch']})", f"{log['val_auc']:.3f}",
            f"{100 * eer:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]", f"{100 * np.sqrt(eer * (1 - eer) / n_bona):.1f}",
            f"{metrics.auc(bona, spoof):.3f}",
        ]
        if name == BASELINE:
            cells.append("–")
        else:
            diff = boot - base
            d_lo, d_hi = np.percentile(diff, [2.5, 97.5])
            verdict = "noise" if d_lo <= 0 <= d_hi else ("worse" if d_lo > 0 else "better")
            cells.append(f"{100 * (eer - metrics.eer(*(done[BASELINE][c][1] for c in ('bonafide', 'spoof')))[0]):+.1f} "
                         f"[{100 * d_lo:+.1f}, {100 * d_hi:+.1f}] {verdict}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
