"""Leave-one-source-out evaluation: for each source, train on all the others and score it.

    python recipes/loso.py manifest OUT/manifest.tsv devset=../shared/data/devset/manifest.tsv \\
        trainset=../shared/data/trainset/manifest.tsv gen=/work/gen/manifest.tsv
    adfd featurize OUT/manifest.tsv -o OUT/all.h5 -f cqt -e whisper=/models/whisper-base ...
    python recipes/loso.py join OUT/all.h5 OUT/shared.h5 OUT/gen.h5 [--drop SOURCE]   (parts, or a subset)
    python recipes/loso.py run OUT/all.h5 -f whisper -m logreg.v1 -o OUT/whisper-lr.tsv
    python recipes/loso.py run OUT/all.h5 -f cqt -m cnn.v1 --set channels=16,32,64 --folds 6 -o OUT/cqt-cnn.tsv
    python recipes/loso.py report OUT/manifest.tsv OUT/cqt-cnn.tsv OUT/whisper-lr.tsv [--fuse] [--target-fa 0.05]
    python recipes/loso.py calibrate OUT/manifest.tsv OUT/whisper-lr.tsv --member whisper.safetensors -o calibration.json

``manifest`` joins manifests of the shared sets' shape (path label family system source group ...)
into one with absolute paths, unique ids (SET:relative/path) and the set's name in a ``set`` column.
``run`` trains one system per source with ``adfd train --exclude source=S`` (which also drops the
same-label renderings of S's groups from training: see adfd_core/exclusion.py), scores S's original
recordings (never the augmented copies ``ID~augK``), and writes the out-of-fold score table.
``--folds K`` holds out K groups of sources in turn instead, for systems too slow to train once
per source; every source is still scored by a model that never saw it. ``--pretrained`` passes
initial weights to every training; a ``{fold}`` in it becomes the fold's name (its held-out sources
joined by +, the name of its files under OUTPUT.folds/), so that fine-tuning starts, for each fold,
from a model that never saw its sources: fine-tuning the default model itself, whose head saw every
source, would score each source with a model that had. ``--keep-models`` keeps each fold's model
file there (to bundle a back-end per fold as such a start):

    python recipes/loso.py run OUT/aug.h5 -f whisper -m layerweight.v1 ... --keep-models -o OUT/lw.tsv
    for m in OUT/lw.folds/*.safetensors; do adfd bundle "$m" --whisper W -o "OUT/starts/$(basename "$m")"; done
    python recipes/loso.py run OUT/wave.h5 -f wave -m whisper-probe.v1 --pretrained 'OUT/starts/{fold}.safetensors' \
        --set finetune_blocks=1 --epochs 3 --lr 1e-4 --batch-size 16 -o OUT/tuned.tsv
``report`` prints, per system and for their calibrated fusion, the pooled EER, the EER per source
(sources with both classes), and the false-alarm and miss rates at the decision threshold. The
threshold and the fusion are themselves chosen leave-one-source-out: for each source, a logistic-
regression calibration (llr = w . scores + b) and the threshold that calls ``--target-fa`` of bona
fide speech spoof are fitted on the other sources' out-of-fold scores, then applied to it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from adfd_core import metrics

AUGMENTED = "~aug"  # ids of featurize --augment-copies rows: ID~augK


# --------------------------------------------------------------------------- manifest


def build_manifest(out: Path, sets: list[tuple[str, Path]]) -> None:
    """One manifest of every row of ``sets`` (name, manifest path): absolute paths, ids SET:path."""
    columns = ["id", "path", "label", "family", "system", "source", "group", "speaker", "language", "set"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, columns, delimiter="\t", extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for name, manifest in sets:
            with open(manifest, newline="", encoding="utf-8") as m:
                for row in csv.DictReader(m, delimiter="\t"):
                    w.writerow({"speaker": "-", "language": "und", **row, "id": f"{name}:{row['path']}",
                                "path": str((manifest.parent / row["path"]).resolve()), "set": name})


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """id -> row of a manifest that ``build_manifest`` wrote."""
    with open(path, newline="", encoding="utf-8") as f:
        return {row["id"]: row for row in csv.DictReader(f, delimiter="\t")}


def join(output: Path, inputs: list[Path], drop: list[str] = ()) -> None:
    """One feature file holding every utterance of ``inputs`` (made with the same front-end specs), in
    order, but those of the sources in ``drop``: a corpus featurized in parts (the shared sets, then
    generated fakes) trains as one, and a subset of sources needs no second featurize."""
    from adfd_core.audio import file_sha256
    from adfd_core.provenance import digest
    from adfd_core.store import FeatureFile, FeatureWriter

    files = [FeatureFile(p) for p in inputs]
    try:
        specs = {name: f.spec for name, f in files[0].features.items()}
        for ff in files[1:]:
            if {name: f.spec for name, f in ff.features.items()} != specs:
                sys.exit(f"loso: {ff.path}: made with other front-ends than {files[0].path}; cannot join them")
        made_from = [{"path": str(p), "sha256": file_sha256(p)} for p in inputs]
        identity = digest({"inputs": made_from, "drop": sorted(drop)})
        augments = [ff.provenance.get("augment") for ff in files if ff.provenance.get("augment")]
        provenance = {"joined": made_from, "drop": list(drop), "augment": augments[0] if augments else None}
        writer = FeatureWriter.open(output, specs, identity=identity, provenance=provenance, force=True)
        for ff in files:
            for index, stored in enumerate(ff.utterances()):
                if stored.utterance.meta.get("source") in drop:
                    continue
                for name in specs:
                    writer.add_rows(name, ff.rows(name, index))
                writer.end_utterance(stored)
            writer.end_batch()
        writer.finish()
    finally:
        for ff in files:
            ff.close()


# --------------------------------------------------------------------------- run


def fold_sources(sources: dict[str, int], folds: int) -> list[list[str]]:
    """The sources (name -> recordings) dealt into ``folds`` groups of similar size, largest first;
    folds=0 gives one group per source (leave-one-source-out proper)."""
    if folds <= 0 or folds >= len(sources):
        return [[s] for s in sorted(sources)]
    groups: list[list[str]] = [[] for _ in range(folds)]
    sizes = [0] * folds
    for name in sorted(sources, key=lambda s: (-sources[s], s)):
        k = sizes.index(min(sizes))
        groups[k].append(name)
        sizes[k] += sources[name]
    return [sorted(g) for g in groups]


def fold_overrides(overrides: list[tuple[str, str]], pretrained: str | None, fold: str) -> tuple[tuple[str, str], ...]:
    """The --set pairs of one fold's training: ``overrides`` and, given, ``pretrained`` with ``{fold}`` as the fold's name."""
    return (*overrides, *([("pretrained", pretrained.replace("{fold}", fold))] if pretrained else []))


def run(features: Path, output: Path, model: str, feature: str | None, overrides: list[tuple[str, str]],
        epochs: int, patience: int, batch_size: int, lr: float, weight_decay: float, seed: int, folds: int,
        balance_by: str | None = None, pretrained: str | None = None, keep_models: bool = False) -> None:
    """Out-of-fold scores of one system: one training per fold of held-out sources, each scoring them."""
    import torch

    from adfd_core.scoretable import write_scores
    from adfd_core.scoring import load_models, score_features, to_table
    from adfd_core.store import FeatureFile
    from adfd_core.training import TrainOptions, train

    with FeatureFile(features) as ff:
        utts = [s.utterance for s in ff.utterances()]
    source_of = {u.id: u.meta.get("source", "-") for u in utts}
    counts: dict[str, int] = defaultdict(int)
    for u in utts:
        if AUGMENTED not in u.id:
            counts[source_of[u.id]] += 1
    parts = output.with_suffix(".folds")
    parts.mkdir(parents=True, exist_ok=True)
    done = []
    for held_out in fold_sources(counts, folds):
        fold = "+".join(held_out)
        part = parts / f"{fold}.tsv"
        if not part.exists():
            model_path = part.with_suffix(".safetensors")
            opts = TrainOptions(model, feature, epochs, batch_size, lr, weight_decay, patience=patience, seed=seed, device="cpu",
                                overrides=fold_overrides(overrides, pretrained, fold), exclude=tuple(("source", s) for s in held_out),
                                balance_by=balance_by)
            train(features, None, model_path, opts, force=True, command=sys.argv)
            models = load_models([model_path], torch.device("cpu"))
            results = score_features(features, models, torch.device("cpu"))
            held = [r for r in results if source_of.get(r.utt.id) in held_out and AUGMENTED not in r.utt.id]
            write_scores(to_table(held, models), part)
            for leftover in () if keep_models else (model_path, model_path.with_suffix(".train.json")):
                leftover.unlink(missing_ok=True)
        done.append(part)
        print(f"loso: {', '.join(held_out)} done", file=sys.stderr)
    _concatenate(done, output)


def _concatenate(parts: list[Path], output: Path) -> None:
    """One score table from the per-source tables (the first one's header, and its provenance beside it)."""
    from adfd_core.scoretable import read_provenance, write_provenance

    lines: list[str] = []
    for i, part in enumerate(parts):
        for line in part.read_text(encoding="utf-8").splitlines():
            is_header = line.startswith("#") or line.startswith("id\t")  # "#": tables of earlier adfd versions
            if i == 0 or not is_header:
                lines.append(line)
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_provenance(output, read_provenance(parts[0])[0])


# --------------------------------------------------------------------------- report


def nested(x: np.ndarray, is_bona: np.ndarray, src: np.ndarray, target_fa: float) -> tuple[np.ndarray, np.ndarray]:
    """(llr, threshold per row): each source calibrated and thresholded on the other sources only."""
    from adfd_core.calibration import fit

    llr, thr = np.empty(len(x)), np.empty(len(x))
    for s in np.unique(src):
        rest = src != s
        cal = fit(x[rest], is_bona[rest], target_fa)
        llr[~rest], thr[~rest] = cal.llr(x[~rest]), cal.threshold
    return llr, thr


def _aligned(manifest: Path, tables: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(x (n, M) out-of-fold scores of the M tables, is_bona (n,), source (n,), names) over the ids every table scored."""
    from adfd_core.scoretable import read_scores

    rows = read_manifest(manifest)
    read = [read_scores(t) for t in tables]
    ids = sorted(set.intersection(set(rows), *(set(t.ids) for t in read)))  # the manifest says which rows count
    columns = []
    for t in read:
        index = {i: k for k, i in enumerate(t.ids)}
        columns.append(np.array([t.scores[index[i]] for i in ids]))
    x = np.column_stack(columns)
    usable = np.isfinite(x).all(axis=1)
    ids = [i for i, ok in zip(ids, usable) if ok]
    is_bona = np.array([rows[i]["label"] == "bonafide" for i in ids])
    src = np.array([rows[i]["source"] for i in ids])
    return x[usable], is_bona, src, [t.stem for t in tables]


def summaries(x_all: np.ndarray, is_bona: np.ndarray, src: np.ndarray, names: list[str], fuse: bool,
              target_fa: float) -> dict:
    """name -> the leave-one-source-out figures of each system (columns of x_all) and, with ``fuse``, of their fusion."""
    columns = {name: x_all[:, [k]] for k, name in enumerate(names)}
    if fuse and len(names) > 1:
        columns["fusion"] = x_all
    results = {}
    for name, x in columns.items():
        llr, thr = nested(x, is_bona, src, target_fa)
        results[name] = _summary(llr, thr, is_bona, src, raw=x[:, 0] if x.shape[1] == 1 else None)
    return results


def report(manifest: Path, tables: list[Path], fuse: bool, target_fa: float, out_json: Path | None) -> dict:
    """Print the Markdown table of every system (and their fusion) on the leave-one-source-out protocol."""
    results = summaries(*_aligned(manifest, tables), fuse, target_fa)
    _print(results, target_fa)
    if out_json:
        out_json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return results


def calibrate(manifest: Path, tables: list[Path], members: list[str], target_fa: float, output: Path) -> None:
    """The shipped calibration: fitted on every out-of-fold score of the members' tables (one per
    member, in the members' order), with the leave-one-source-out figures of the same recipe."""
    from adfd_core.calibration import fit

    x, is_bona, src, names = _aligned(manifest, tables)
    results = summaries(x, is_bona, src, names, fuse=True, target_fa=target_fa)
    shipped = results["fusion" if len(tables) > 1 else names[0]]
    measured = {"protocol": "leave-one-source-out", "recordings": len(x), "sources": len(set(src)),
                **{k: v for k, v in shipped.items() if k != "sources"},
                "per_source": shipped["sources"]}
    fit(x, is_bona, target_fa, members=tuple(members), measured=measured).save(output)


def _summary(llr: np.ndarray, thr: np.ndarray, is_bona: np.ndarray, src: np.ndarray, raw: np.ndarray | None) -> dict:
    """Pooled and per-source figures of one system's leave-one-source-out LLRs."""
    pooled_eer = 100 * metrics.eer(llr[is_bona], llr[~is_bona])[0]
    fa, miss = metrics.error_rates(llr[is_bona], llr[~is_bona], np.concatenate([thr[is_bona], thr[~is_bona]]))
    out = {"pooled_eer": pooled_eer, "pooled_auc": metrics.auc(llr[is_bona], llr[~is_bona]),
           "false_alarm": 100 * fa, "miss": 100 * miss, "n_bonafide": int(is_bona.sum()), "n_spoof": int((~is_bona).sum()),
           "sources": {}}
    if raw is not None:
        out["pooled_eer_uncalibrated"] = 100 * metrics.eer(raw[is_bona], raw[~is_bona])[0]
    for s, g in metrics.by_group(llr, is_bona, src, thr, against_all=False).items():
        percent = {key: None if g[rate] is None else 100 * g[rate]
                   for key, rate in (("false_alarm", "bonafide_error"), ("miss", "spoof_error"))}
        out["sources"][s] = {"n_bonafide": g["n_bonafide"], "n_spoof": g["n_spoof"],
                             "eer": 100 * g["eer"] if "eer" in g else None, **percent}
    return out


def _print(results: dict, target_fa: float) -> None:
    names = list(results)
    print(f"| system | pooled EER % | AUC | false alarms % at the threshold ({100 * target_fa:.0f} % target) | misses % | worst source EER % |")
    print("|---|---|---|---|---|---|")
    for name in names:
        r = results[name]
        eers = {s: v["eer"] for s, v in r["sources"].items() if v["eer"] is not None}
        worst = max(eers, key=eers.get)
        print(f"| {name} | {r['pooled_eer']:.1f} | {r['pooled_auc']:.3f} | {r['false_alarm']:.1f} | {r['miss']:.1f} | "
              f"{eers[worst]:.1f} ({worst}) |")
    print()
    print("| source | bona fide | spoof | " + " | ".join(f"{n}: EER % (FA % / miss %)" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    first = results[names[0]]["sources"]
    for s in first:
        cells = []
        for n in names:
            v = results[n]["sources"][s]
            eer = "–" if v["eer"] is None else f"{v['eer']:.1f}"
            fa = "–" if v["false_alarm"] is None else f"{v['false_alarm']:.0f}"
            miss = "–" if v["miss"] is None else f"{v['miss']:.0f}"
            cells.append(f"{eer} ({fa} / {miss})")
        print(f"| {s} | {first[s]['n_bonafide']} | {first[s]['n_spoof']} | " + " | ".join(cells) + " |")


# --------------------------------------------------------------------------- command line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    m = sub.add_parser("manifest", help="join manifests into one")
    m.add_argument("output", type=Path)
    m.add_argument("sets", nargs="+", help="NAME=MANIFEST")
    j = sub.add_parser("join", help="one feature file of several made with the same front-ends")
    j.add_argument("output", type=Path)
    j.add_argument("inputs", type=Path, nargs="+")
    j.add_argument("--drop", action="append", default=[], help="leave out this source's utterances (repeatable)")
    r = sub.add_parser("run", help="out-of-fold scores of one system")
    r.add_argument("features", type=Path)
    r.add_argument("-o", "--output", type=Path, required=True)
    r.add_argument("-m", "--model", default="cnn.v1")
    r.add_argument("-f", "--feature")
    r.add_argument("--set", action="append", default=[], dest="overrides")
    r.add_argument("--epochs", type=int, default=20)
    r.add_argument("--patience", type=int, default=4)
    r.add_argument("--batch-size", type=int, default=64)
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--weight-decay", type=float, default=0.0)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--folds", type=int, default=0, help="hold out sources K groups at a time (default 0: one source per fold)")
    r.add_argument("--balance-by", help="train --balance-by FIELD (e.g. source: every source weighs the same in its class)")
    r.add_argument("--pretrained", help="train --pretrained PATH; {fold} in it becomes the fold's name (its held-out sources joined by +)")
    r.add_argument("--keep-models", action="store_true", help="keep each fold's model file and training log in OUTPUT.folds/")
    p = sub.add_parser("report", help="tables of out-of-fold score tables")
    p.add_argument("manifest", type=Path)
    p.add_argument("tables", type=Path, nargs="+")
    p.add_argument("--fuse", action="store_true")
    p.add_argument("--target-fa", type=float, default=0.05)
    p.add_argument("--json", type=Path)
    c = sub.add_parser("calibrate", help="fit the shipped calibration on out-of-fold score tables")
    c.add_argument("manifest", type=Path)
    c.add_argument("tables", type=Path, nargs="+", help="one out-of-fold table per member, in the members' order")
    c.add_argument("--member", action="append", required=True, help="member model file name, in order (repeatable)")
    c.add_argument("--target-fa", type=float, default=0.05)
    c.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args()
    if args.step == "manifest":
        build_manifest(args.output, [(s.partition("=")[0], Path(s.partition("=")[2])) for s in args.sets])
    elif args.step == "join":
        join(args.output, args.inputs, args.drop)
    elif args.step == "run":
        overrides = [tuple(o.split("=", 1)) for o in args.overrides]
        run(args.features, args.output, args.model, args.feature, overrides, args.epochs, args.patience, args.batch_size,
            args.lr, args.weight_decay, args.seed, args.folds, args.balance_by, args.pretrained, args.keep_models)
    elif args.step == "report":
        report(args.manifest, args.tables, args.fuse, args.target_fa, args.json)
    else:
        calibrate(args.manifest, args.tables, args.member, args.target_fa, args.output)


if __name__ == "__main__":
    main()
