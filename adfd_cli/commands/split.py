"""`adfd split`: a corpus -> group-disjoint train/val/test manifests that `adfd featurize` reads."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from adfd_cli import options
from adfd_cli.choices import one_of
from adfd_cli.console import err
from adfd_core.option_values import GROUP_FIELDS


def split(
    input: Annotated[str, typer.Argument(help="Audio folder, manifest or protocol file (as for featurize).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for train.tsv, val.tsv and test.tsv.")] = Path("splits"),
    val: Annotated[float, typer.Option("--val", min=0.0, max=0.95, callback=options.finite, help="Share of utterances for validation.")] = 0.1,
    test: Annotated[float, typer.Option("--test", min=0.0, max=0.95, callback=options.finite, help="Share of utterances for test.")] = 0.2,
    by: Annotated[str, typer.Option("--by", **one_of(GROUP_FIELDS), help="Keep utterances that share this field on one side.")] = "group",
    hold_out: Annotated[
        list[str] | None,
        typer.Option("--hold-out", help="Attack (synthesizer family) seen only in test, repeatable: a cross-family split."),
    ] = None,
    protocol: options.Protocol = None,
    subset: options.Subset = "eval",
    seed: options.Seed = 0,
    force: options.Force = False,
) -> int:
    """Split a corpus into train, validation and test manifests with no group on two sides.

    A real clip and its resynthesized copies share a group, so they land on the same side. With
    --hold-out, those attacks are removed from train and val and kept in test. All three manifests
    are always written (one without utterances holds the header only). Manifests already in the folder
    with other contents are kept unless --force.
    """
    from adfd_core.corpus import read_corpus
    from adfd_core.outputs import check_output
    from adfd_core.splits import SPLITS, manifest_path, split_summary, split_utterances, write_splits

    check_output(output, [input, protocol], folder=True)
    for name in SPLITS:
        check_output(manifest_path(output, name), [input, protocol])
    utts = read_corpus(input, protocol=protocol, subset=subset, stdin=sys.stdin)
    splits = split_utterances(utts, val=val, test=test, by=by, seed=seed, hold_out=hold_out or ())
    for path in write_splits(splits, output, force):
        print(path)
    for name, counts in split_summary(splits).items():
        err.print(f"{name}: {sum(counts.values())} utterances ({', '.join(f'{n} {k}' for k, n in counts.items()) or 'none'})")
    return 0
