"""`adfd evaluate`: a score table -> EER (with a bootstrap interval), AUC, balanced accuracy, Cllr, DCF, t-DCF, per group."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from adfd_cli import options
from adfd_cli.console import warn


def evaluate(
    scores: Annotated[str, typer.Argument(help="Score table (adfd TSV, JSON lines or an ASVspoof score file); '-' reads stdin.")],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Labels: ASVspoof 2019 LA protocol, ASVspoof 2021 trial_metadata.txt, In-the-Wild "
                     "meta.csv or a CSV/TSV manifest; ids match by utterance name. Its other columns can be grouped by."),
    ] = None,
    subset: options.Subset = "eval",
    by: Annotated[
        str,
        typer.Option("--by", help="Break the metrics down by this column: attack, label, decision, an extra column of the "
                     "table or a column of --key (source, family, speaker, codec, ...)."),
    ] = "attack",
    threshold: Annotated[
        float,
        typer.Option("--threshold", help="Decision threshold for accuracy, F1 and the error rates: spoof where score < it."),
    ] = 0.0,
    ci: Annotated[
        bool, typer.Option("--ci", help="Add a bootstrap 95 % interval of each EER (recordings resampled within each class).")
    ] = False,
    ci_by: Annotated[
        str | None,
        typer.Option("--ci-by", help="With --ci, resample whole groups of this column (speaker, source, ...), not recordings."),
    ] = None,
    resamples: Annotated[int, typer.Option("--resamples", min=1, help="Bootstrap resamples for --ci.")] = 1000,
    seed: options.Seed = 0,
    asv_scores: Annotated[
        Path | None,
        typer.Option("--asv-scores", help="ASV score file (SPEAKER UTTERANCE target|nontarget|spoof SCORE lines): adds "
                     "min t-DCF as ASVspoof 2019 and 2021 LA define it."),
    ] = None,
    as_json: options.Json = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also write DET, ROC and score histograms to this PNG.")] = None,
    force: options.Force = False,
) -> int:
    """Compute detection metrics of labelled scores: pooled, then per group (attack by default).

    EER as the ASVspoof evaluation packages compute it; accuracy, balanced accuracy, the error rate of
    each class and F1 (spoof = positive class) decide spoof where score < --threshold; Cllr and minCllr
    in bits; minDCF and actDCF with the ASVspoof 5 costs (C_miss 1, C_fa 10, P_spoof 0.05). A group of
    one class (an attack) is measured against all recordings of the other class. Rows without a score
    or a label are left out, with a warning. On a terminal: tables; otherwise tab-separated rows (one
    per group, pooled first, rates as fractions) or, with --json, everything.
    """
    from adfd_core.errors import AdfdError
    from adfd_core.metrics import Bootstrap, class_scores, group_columns
    from adfd_core.metrics import evaluate as compute
    from adfd_core.outputs import check_output
    from adfd_core.provenance import provenance
    from adfd_core.scoretable import apply_key, evaluation_identity, read_scores
    from adfd_core.sidecar import check_replaceable, write_sidecar
    from adfd_core.tdcf import read_asv_scores

    if not math.isfinite(threshold):
        raise typer.BadParameter(f"must be a finite number, got {threshold}", param_hint="--threshold")
    if plot is not None:
        check_output(plot, [scores, key, asv_scores])
    table = read_scores(scores)
    if key is not None:
        table = apply_key(table, key, subset)
    elif all(label == "unknown" for label in table.labels):
        raise AdfdError(f"{table.source}: no labels; give the protocol or key that labels these recordings with --key")
    if ci_by is not None and not ci:
        raise typer.BadParameter("needs --ci", param_hint="--ci-by")
    columns = group_columns(table)
    for option, name in (("--by", by), ("--ci-by", ci_by)):
        if name is not None and name not in columns:
            raise typer.BadParameter(f"{table.source} has no column {name!r}; choose from {', '.join(columns)}"
                                     f"{'' if key is not None else ' (or give --key with more columns)'}", param_hint=option)
    asv = read_asv_scores(asv_scores) if asv_scores is not None else None
    bootstrap = Bootstrap(resamples=resamples, seed=seed, by=ci_by) if ci else None
    if plot is not None:
        identity = evaluation_identity(table, key, subset)
        check_replaceable(plot, identity, force)
    result = compute(table, threshold=threshold, by=by, bootstrap=bootstrap, asv=asv)
    if result["n_unscored"]:
        warn(f"{result['n_unscored']} rows without a score left out (see their error column)")
    if result["n_unlabelled"]:
        warn(f"{result['n_unlabelled']} rows without a label left out")
    if plot is not None:
        from adfd_core.plots import evaluation_title, plot_evaluation

        plot_evaluation(*class_scores(table), plot, title=evaluation_title(table, key), threshold=threshold)
        write_sidecar(plot, provenance(identity=identity, scores=table.source, scores_sha256=table.sha256,
                                       key=str(key) if key else None))
    if as_json:
        print(json.dumps(result, indent=2))
    elif sys.stdout.isatty():
        _print_tables(result)
    else:
        _print_tsv(result)
    return 0


def _columns(r: dict[str, Any]) -> list[str]:
    """The metric columns of the TSV rows, in order: those the pooled result has."""
    names = ["n_bonafide", "n_spoof", "eer", "eer_ci_low", "eer_ci_high", "eer_threshold", "auc", "accuracy",
             "balanced_accuracy", "bonafide_error", "spoof_error", "f1", "cllr", "min_cllr", "min_dcf", "act_dcf",
             "min_tdcf_2019", "min_tdcf_2021"]
    return [n for n in names if n in r or (n.startswith("eer_ci_") and "eer_ci" in r)]


def _cell(metrics: dict[str, Any], name: str) -> str:
    if name.startswith("eer_ci_"):
        value = metrics.get("eer_ci", [None, None])[0 if name.endswith("low") else 1]
    else:
        value = metrics.get(name)
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def _print_tsv(r: dict[str, Any]) -> None:
    """One header line and one row per group (pooled first): machine-readable, rates as fractions; group names
    with the score table's backslash escapes, so a tab or newline in one cannot break a row."""
    from adfd_core.escaping import escape

    columns = _columns(r)
    lines = ["\t".join([escape(r["by"]), "versus", *columns]), "\t".join(["pooled", "all", *(_cell(r, c) for c in columns)])]
    for name, g in r["groups"].items():
        lines.append("\t".join([escape(name), g["versus"] or "", *(_cell(g, c) for c in columns)]))
    print("\n".join(lines))


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f} %"


def _eer(m: dict[str, Any]) -> str:
    text = _percent(m["eer"])
    return f"{text} [{100 * m['eer_ci'][0]:.2f}, {100 * m['eer_ci'][1]:.2f}]" if "eer_ci" in m else text


def _print_tables(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    metrics = Table("metric", "value", title="metrics (pooled)", title_justify="left")
    rows = [
        ("bona fide / spoof", f"{r['n_bonafide']} / {r['n_spoof']}"),
        ("EER" + (" [95 % CI]" if "eer_ci" in r else ""), _eer(r)),
        ("EER threshold", f"{r['eer_threshold']:.4g}"),
        ("AUC", f"{r['auc']:.5f}"),
        (f"accuracy (score < {r['threshold']:g}: spoof)", _percent(r["accuracy"])),
        ("balanced accuracy", _percent(r["balanced_accuracy"])),
        ("bona fide called spoof", _percent(r["bonafide_error"])),
        ("spoof called bona fide", _percent(r["spoof_error"])),
        ("F1 (spoof positive)", f"{r['f1']:.4f}"),
        ("Cllr", f"{r['cllr']:.4f} bits"),
        ("minCllr", f"{r['min_cllr']:.4f} bits"),
        ("minDCF (ASVspoof 5 costs)", f"{r['min_dcf']:.4f}"),
        ("actDCF (ASVspoof 5 costs)", f"{r['act_dcf']:.4f}"),
    ]
    if "asv" in r:
        rows += [("min t-DCF (ASVspoof 2019)", f"{r['min_tdcf_2019']:.4f}"),
                 ("min t-DCF (ASVspoof 2021 LA)", f"{r['min_tdcf_2021']:.4f}"), ("ASV EER", _percent(r["asv"]["eer"]))]
    for name, value in rows:
        metrics.add_row(name, value)
    out = Console(highlight=False, soft_wrap=True, markup=False)
    out.print(metrics)
    if "ci" in r:
        out.print(f"EER intervals: {r['ci']['resamples']} bootstrap resamples of {r['ci']['resampled']}, seed {r['ci']['seed']}")
    tdcf = ["min t-DCF 2019", "min t-DCF 2021"] if "asv" in r else []
    groups = Table(r["by"], "versus", "bona fide", "spoof", "EER", "AUC", "balanced acc.", "minDCF", *tdcf,
                   title=f"by {r['by']}", title_justify="left")
    for name, g in r["groups"].items():
        cells = [f"{g[k]:.4f}" for k in ("min_tdcf_2019", "min_tdcf_2021") if tdcf]
        groups.add_row(name, g["versus"], str(g["n_bonafide"]), str(g["n_spoof"]), _eer(g), f"{g['auc']:.5f}",
                       _percent(g["balanced_accuracy"]), f"{g['min_dcf']:.4f}", *cells)
    out.print(groups)
