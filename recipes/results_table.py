"""Print the Markdown tables of docs/results.md from the outputs of recipes/devset_results.sh.

    python recipes/results_table.py out/devset [--hold-out vits ...]

For each split and system: the best epoch's validation AUC, then test EER and AUC pooled, per
devset source (bona fide of that source against its spoofs) and, for the cross-family split,
bona fide against the held-out families only and against the families seen in training.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from adfd_core import metrics
from adfd_core.scoretable import read_scores

SYSTEMS = {
    "stft-cnn": "STFT-CNN", "cqt-cnn": "CQT-CNN", "wt-cnn": "WT-CNN", "stft-lf-cnn": "STFT&LF-CNN",
    "stft-mel-cnn": "STFT&Mel-CNN", "stft-gam-cnn": "STFT&Gam-CNN", "cqt-rnn": "RNN (CQT)", "cqt-crnn": "C-RNN (CQT)",
    "cqt-convnext": "ConvNeXt-Tiny (CQT, random init)", "ensemble": "mean of CQT-, STFT&LF-, STFT&Gam-CNN, ConvNeXt",
    "fdl": "FDL (fdl.v1, waveform)", "fdl-single": "FDL single stream (ablation)",
}
HOLD_OUT = ("vits", "glowtts-hifigan", "diffwave", "squeezewave", "griffinlim", "clarinet")


def _eer_auc(bona: np.ndarray, spoof: np.ndarray) -> str:
    if len(bona) == 0 or len(spoof) == 0:
        return "–"
    return f"{100 * metrics.eer(bona, spoof)[0]:.1f} / {metrics.auc(bona, spoof):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--hold-out", nargs="*", default=list(HOLD_OUT))
    args = ap.parse_args()
    results = args.work / "results"
    with open(args.work / "splits" / "group" / "test.tsv", newline="") as f:
        source = {row["id"]: row["source"] for row in csv.DictReader(f, delimiter="\t")}
    sources = sorted(set(source.values()))
    for split in ("group", "xfam"):
        head = ["system", "val AUC", "test EER % / AUC"] + [f"{s}" for s in sources]
        if split == "xfam":
            head += ["held-out families", "seen families"]
        print(f"\n### {split} split\n")
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for key, title in SYSTEMS.items():
            table_path = results / f"{split}-{key}.tsv"
            if not table_path.exists():
                continue
            t = read_scores(table_path)
            labels, attacks = np.array(t.labels), np.array(t.attacks)
            src = np.array([source[i] for i in t.ids])
            bona = labels == "bonafide"
            log = results / f"{split}-{key}.train.json"
            val = f"{json.loads(log.read_text())['val_auc']:.3f}" if log.exists() else "–"
            cells = [title, val, _eer_auc(t.scores[bona], t.scores[~bona])]
            for s in sources:
                cells.append(_eer_auc(t.scores[bona & (src == s)], t.scores[~bona & (src == s)]))
            if split == "xfam":
                held = np.isin(attacks, args.hold_out)
                cells += [_eer_auc(t.scores[bona], t.scores[held]), _eer_auc(t.scores[bona], t.scores[~bona & ~held])]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
