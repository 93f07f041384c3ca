"""`adfd evaluate`: a score table -> EER, AUC, accuracy, F1, Cllr, minCllr, minDCF, per attack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from adfd_cli import options
from adfd_cli.console import warn


def evaluate(
    scores: Annotated[str, typer.Argument(help="Score table (adfd TSV, JSON lines or an ASVspoof score file); '-' reads stdin.")],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Labels: ASVspoof 2019 LA protocol, ASVspoof 2021 trial_metadata.txt, In-the-Wild "
                     "meta.csv or a CSV/TSV manifest; ids match by utterance name."),
    ] = None,
    subset: options.Subset = "eval",
    as_json: options.Json = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also write DET, ROC and score histograms to this PNG.")] = None,
) -> int:
    """Compute detection metrics of labelled scores: pooled, then per attack.

    EER as the ASVspoof evaluation packages compute it; accuracy and F1 (spoof = positive class)
    decide spoof where score < 0; Cllr and minCllr in bits; minDCF and actDCF with the ASVspoof 5
    costs (C_miss 1, C_fa 10, P_spoof 0.05). Rows without a score or a label are left out, with a warning.
    """
    from adfd_core.errors import AdfdError
    from adfd_core.metrics import class_scores
    from adfd_core.metrics import evaluate as compute
    from adfd_core.outputs import check_output
    from adfd_core.scoretable import apply_key, read_scores

    if plot is not None:
        check_output(plot, [scores, key])
    table = read_scores(scores)
    if key is not None:
        table = apply_key(table, key, subset)
    elif all(label == "unknown" for label in table.labels):
        raise AdfdError(f"{table.source}: no labels; give the protocol or key that labels these recordings with --key")
    result = compute(table)
    if result["n_unscored"]:
        warn(f"{result['n_unscored']} rows without a score left out (see their error column)")
    if result["n_unlabelled"]:
        warn(f"{result['n_unlabelled']} rows without a label left out")
    if plot is not None:
        from adfd_core.plots import plot_evaluation

        plot_evaluation(*class_scores(table), plot, title=table.source)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        _print_tables(result)
    return 0


def _print_tables(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    metrics = Table("metric", "value", title="metrics", title_justify="left")
    rows = [
        ("bona fide / spoof", f"{r['n_bonafide']} / {r['n_spoof']}"),
        ("EER", f"{100 * r['eer']:.3f} %"),
        ("EER threshold", f"{r['eer_threshold']:.4g}"),
        ("AUC", f"{r['auc']:.5f}"),
        (f"accuracy (score < {r['threshold']:g}: spoof)", f"{100 * r['accuracy']:.2f} %"),
        ("F1 (spoof positive)", f"{r['f1']:.4f}"),
        ("Cllr", f"{r['cllr']:.4f} bits"),
        ("minCllr", f"{r['min_cllr']:.4f} bits"),
        ("minDCF (ASVspoof 5 costs)", f"{r['min_dcf']:.4f}"),
        ("actDCF (ASVspoof 5 costs)", f"{r['act_dcf']:.4f}"),
    ]
    for name, value in rows:
        metrics.add_row(name, value)
    attacks = Table("attack", "spoof", "EER", "AUC", title="bona fide vs each attack", title_justify="left")
    for attack, a in r["by_attack"].items():
        attacks.add_row(attack, str(a["n_spoof"]), f"{100 * a['eer']:.3f} %", f"{a['auc']:.5f}")
    out = Console(highlight=False, soft_wrap=True, markup=False)
    out.print(metrics)
    out.print(attacks)
