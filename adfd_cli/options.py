"""Option types shared by several commands, so each means the same everywhere."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated

import typer

from adfd_cli.choices import one_of
from adfd_core.devices import DEVICE_CHOICES
from adfd_core.option_values import FORMATS

SUBSETS = ("eval", "progress", "hidden_track", "all")  # the subsets of an ASVspoof 2021 key's trials


def finite(value: float | None) -> float | None:
    """Callback of a float option: refuse nan and inf, which the parser's min and max let through (nan)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def _device(value: str) -> str:
    """Callback of --device: a usage error for a device adfd does not run on, before anything loads."""
    if value not in DEVICE_CHOICES and not re.fullmatch(r"cuda:\d+", value):
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(DEVICE_CHOICES)} or cuda:N")
    return value


Device = Annotated[
    str,
    typer.Option("--device", callback=_device, metavar=f"[{'|'.join(DEVICE_CHOICES)}|cuda:N]",
                 help="Where tensors live: auto (CUDA when present), cpu, cuda or cuda:N."),
]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes for decoding audio.")]
Force = Annotated[bool, typer.Option("--force", help="Overwrite an existing output made from other inputs.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Segments per batch on the device.")]
Protocol = Annotated[
    Path | None,
    typer.Option(
        "--protocol",
        help="Corpus description: ASVspoof 2019 LA protocol, ASVspoof 2021 LA/DF key, In-the-Wild meta.csv, "
        "or a CSV/TSV manifest with a header. INPUT is then the audio folder.",
    ),
]
Subset = Annotated[str, typer.Option("--subset", **one_of(SUBSETS), help="ASVspoof 2021 keys: which subset of the trials to keep.")]
FromList = Annotated[
    str | None,
    typer.Option("--from-list", help="Read audio paths, one per line, from this file ('-' for stdin) instead of INPUT."),
]
InlineProvenance = Annotated[
    bool,
    typer.Option(
        "--provenance",
        help="Also put what made the table inside it: leading '#' lines (tsv) or a first {\"_meta\": ...} record "
        "(jsonl). Without it the table holds only its header and rows; a file written with -o has its provenance "
        "beside it either way, in FILE.meta.json.",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

EXIT_CODES_HELP = ("Exit codes: 0 success; 1 error; 2 usage error; 3 finished, but some inputs failed (named on stderr); "
                   "130 interrupted (Ctrl-C); 141 stdout closed by its reader (e.g. | head).")
Seed = Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same result on CPU.")]
ScoreFormat = Annotated[
    str,
    typer.Option(
        "--format",
        **one_of(FORMATS),
        help="Score table format: tsv (adfd's), jsonl, asvspoof2019 (ID ATTACK KEY SCORE), "
        "asvspoof2021 (ID SCORE) or asvspoof5 (TSV: filename, cm-score).",
    ),
]


def _shard(value: str | None) -> str | None:
    """Callback of --shard: K/N with 1 <= K <= N, or a usage error."""
    from adfd_core.shards import Shard, ShardError

    if value is not None:
        try:
            Shard.parse(value)
        except ShardError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


Shard = Annotated[
    str | None,
    typer.Option("--shard", metavar="K/N", callback=_shard,
                 help="Process only the K-th of N deterministic shards of the inputs (K = 1..N), e.g. one task of a "
                      "Slurm array; join the outputs with `adfd merge`."),
]
Ray = Annotated[
    bool,
    typer.Option("--ray", help="Run on a Ray cluster (pip install 'adfd[ray]'): the one at --ray-address, else a local Ray "
                               "instance. Shards are committed beside the output; a rerun redoes only unfinished ones."),
]
RayAddress = Annotated[
    str | None,
    typer.Option("--ray-address", metavar="HOST:PORT", help="With --ray: the cluster's address (default: $RAY_ADDRESS, "
                 "else a local Ray instance on this machine).", show_default=False),
]
RayShards = Annotated[
    int | None,
    typer.Option("--ray-shards", min=1, metavar="N", help="With --ray: cut the inputs into N shards (default: one per 200)."),
]


def cluster(shard: str | None, ray: bool, address: str | None, ray_shards: int | None):
    """The Ray cluster that --ray, --ray-address and --ray-shards name (None without --ray); usage errors for
    --shard with --ray and for the --ray-* options without it."""
    if shard is not None and ray:
        raise typer.BadParameter("--ray cuts the inputs into shards itself; give --shard or --ray, not both", param_hint="--shard")
    if not ray:
        if address is not None or ray_shards is not None:
            raise typer.BadParameter("only with --ray", param_hint="--ray-address" if address is not None else "--ray-shards")
        return None
    from adfd_core.distributed_ray import Cluster

    return Cluster(address, ray_shards)
