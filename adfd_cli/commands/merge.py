"""`adfd merge`: shard outputs of `featurize --shard` or `score --shard` -> the single run's result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from adfd_cli import options
from adfd_cli.console import err


def merge(
    shards: Annotated[list[Path], typer.Argument(metavar="SHARD...", help="Every shard output of one run: feature files or score tables, any order.",
                                                  show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Where the result goes: a feature file, or a table ('-' = stdout).")] = "-",
    fmt: options.ScoreFormat = "tsv",
    inline_provenance: options.InlineProvenance = False,
    force: options.Force = False,
) -> int:
    """Join the shards of one featurize or score run into the file a single run writes.

    Refuses shards of different inputs, options or models, a shard given twice and a missing one.
    Exit code 3 when the run's inputs include some that failed (named on stderr).
    """
    from adfd_core.outputs import check_output
    from adfd_core.scoretable import INLINE_PROVENANCE, write_scores
    from adfd_core.shards import is_feature_file, merge_features, merge_scores
    from adfd_core.sidecar import check_replaceable

    kinds = {is_feature_file(p) for p in shards}
    if len(kinds) > 1:
        raise typer.BadParameter("give either feature files or score tables, not both", param_hint="SHARDS")
    check_output(output, shards)
    if kinds == {True}:
        if output == "-":
            raise typer.BadParameter("feature files merge into a file; give -o FILE", param_hint="--output")
        merged = merge_features(shards, Path(output), list(sys.argv), force=force)
        for _, path, reason in merged.failures:
            err.print(f"failed: {path}: {reason}", markup=False, soft_wrap=True)
        state = "already merged" if merged.up_to_date else "merged"
        err.print(f"{output}: {state}: {merged.utterances} utterances from {len(shards)} shards, {len(merged.failures)} failed")
        return 3 if merged.failures else 0
    if inline_provenance and fmt not in INLINE_PROVENANCE:
        raise typer.BadParameter(f"the {fmt} format carries no provenance inside; with -o FILE it is in FILE.meta.json",
                                 param_hint="--provenance")
    table = merge_scores(shards, list(sys.argv))
    check_replaceable(output, table.provenance["identity"], force)
    write_scores(table, output, fmt, inline_provenance)
    failed = sum(1 for e in table.extra.get("error", []) if e)
    err.print(f"{len(table)} recordings from {len(shards)} shards, {failed} failed")
    return 3 if failed else 0
