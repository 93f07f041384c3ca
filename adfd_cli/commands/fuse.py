"""`adfd fuse`: several systems' score tables -> one fused score table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adfd_cli import options
from adfd_cli.choices import one_of
from adfd_cli.console import err, warn

METHODS = ("mean", "logreg")


def fuse(
    inputs: Annotated[list[str], typer.Argument(help="Score tables of the systems to fuse; one of them may be '-' (stdin).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Fused score table to write; '-' is stdout.")] = "-",
    method: Annotated[
        str | None,
        typer.Option("--method", **one_of(METHODS), help="mean (of p_spoof) or logreg (trained, calibrated); default: logreg with --train "
                     "or --apply, else mean."),
    ] = None,
    train: Annotated[
        list[str] | None,
        typer.Option("--train", help="Labelled dev score table of each system, repeatable, in the order of the inputs (logreg)."),
    ] = None,
    save_weights: Annotated[Path | None, typer.Option("--save-weights", help="Write the trained logreg fusion to this JSON file.")] = None,
    apply: Annotated[Path | None, typer.Option("--apply", help="Fuse with a logreg fusion saved by --save-weights.")] = None,
    allow_missing: Annotated[
        bool, typer.Option("--allow-missing", help="Fuse only the recordings every table lists, dropping the rest.")
    ] = False,
    fmt: options.ScoreFormat = "tsv",
    inline_provenance: options.InlineProvenance = False,
) -> int:
    """Fuse score tables that list the same recordings.

    mean: the mean of the systems' spoof probabilities, as log-odds (the ensemble paper's fusion).
    logreg: a weighted sum of the systems' scores plus a bias, fitted on labelled dev tables so
    the output is a calibrated log-likelihood ratio; --save-weights keeps it for --apply later.
    """
    import numpy as np

    from adfd_core.fusion import LogRegFusion, mean_fusion, train_logreg
    from adfd_core.outputs import check_output
    from adfd_core.scoretable import INLINE_PROVENANCE, read_scores, write_scores

    method = method or ("logreg" if train or apply else "mean")
    _check_usage(inputs, method, train or [], apply, save_weights)
    if inline_provenance and fmt not in INLINE_PROVENANCE:
        raise typer.BadParameter(f"the {fmt} format carries no provenance inside (official scorers read it); "
                                 "with -o FILE it is in FILE.meta.json", param_hint="--provenance")
    for written in (output, save_weights):
        if written is not None:
            check_output(written, [*inputs, *(train or []), apply])
    tables = _aligned([read_scores(s) for s in inputs], allow_missing)
    if method == "mean":
        fused = mean_fusion(tables)
    elif train:
        fusion = train_logreg(_aligned([read_scores(s) for s in train], allow_missing))
        if save_weights is not None:
            fusion.save(save_weights)
        fused = fusion.apply(tables)
    else:
        fused = LogRegFusion.load(apply).apply(tables)
    write_scores(fused, output, fmt, inline_provenance)
    unscored = int(np.isnan(fused.scores).sum())
    if unscored:
        warn(f"{unscored} recordings have no fused score: some input had none (named in the error column)")
    where = "stdout" if output == "-" else output
    err.print(f"{where}: {len(fused)} recordings fused from {len(tables)} tables ({method})", markup=False)
    return 0


def _check_usage(inputs: list[str], method: str, train: list[str], apply: Path | None, save_weights: Path | None) -> None:
    """Usage errors: options that do not go together."""
    if method == "mean" and (train or apply or save_weights):
        raise typer.BadParameter("--train, --apply and --save-weights go with --method logreg", param_hint="--method")
    if method == "logreg" and bool(train) == (apply is not None):
        raise typer.BadParameter("logreg needs either --train (a dev table per input) or --apply WEIGHTS.json", param_hint="--train")
    if train and len(train) != len(inputs):
        raise typer.BadParameter(f"{len(inputs)} inputs but {len(train)} --train tables; give one per input, in the same order",
                                 param_hint="--train")
    if save_weights is not None and not train:
        raise typer.BadParameter("--save-weights saves what --train fits", param_hint="--save-weights")
    if [*inputs, *train].count("-") > 1:
        raise typer.BadParameter("only one table can come from stdin ('-')", param_hint="INPUTS")


def _aligned(tables: list, allow_missing: bool) -> list:
    """The tables aligned on their common ids, saying on stderr how many were dropped."""
    from adfd_core.fusion import align

    aligned, dropped = align(tables, allow_missing)
    if dropped:
        warn(f"{dropped} recordings not listed in every one of {', '.join(t.source for t in tables)} were dropped")
    return aligned
