"""Option types shared by several commands, so each means the same everywhere."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated

import typer

from adfd_core.devices import DEVICE_CHOICES


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
    typer.Option("--device", callback=_device, help="Where tensors live: auto (CUDA when present), cpu, cuda or cuda:N."),
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
Subset = Annotated[str, typer.Option("--subset", help="ASVspoof 2021 keys: which subset to keep (eval, progress, hidden_track, all).")]
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

EXIT_CODES_HELP = "Exit codes: 0 success; 1 error; 2 usage error; 3 finished, but some inputs failed (named on stderr)."
Seed = Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same result on CPU.")]
ScoreFormat = Annotated[
    str,
    typer.Option(
        "--format",
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


def _ray_address(value: str | None) -> str | None:
    """Callback of --ray: refuse an ADDRESS that is an input path (``--ray INPUT`` took INPUT as the address)."""
    if value not in (None, RAY_LOCAL) and Path(value).exists():
        raise typer.BadParameter(f"took {value!r}, a path, as the cluster's ADDRESS; write --ray before another option, "
                                 "or --ray=ADDRESS")
    return value


RAY_LOCAL = "local"  # --ray without an ADDRESS: a local Ray instance
Shard = Annotated[
    str | None,
    typer.Option("--shard", metavar="K/N", callback=_shard,
                 help="Process only the K-th of N deterministic shards of the inputs (K = 1..N), e.g. one task of a "
                      "Slurm array; join the outputs with `adfd merge`."),
]
Ray = Annotated[
    str | None,
    typer.Option("--ray", metavar="[ADDRESS]", is_flag=False, flag_value=RAY_LOCAL, callback=_ray_address,
                 help="Run on a Ray cluster (pip install 'adfd[ray]'): the one at ADDRESS (host:port), or without it a "
                      "local Ray instance. Shards are committed beside the output; a rerun redoes only unfinished ones."),
]
RayShards = Annotated[
    int | None,
    typer.Option("--ray-shards", min=1, metavar="N", help="With --ray: cut the inputs into N shards (default: one per 200)."),
]


def cluster(shard: str | None, ray: str | None, ray_shards: int | None):
    """The Ray cluster that --ray and --ray-shards name (None without --ray); a usage error for --shard with --ray."""
    if shard is not None and ray is not None:
        raise typer.BadParameter("--ray cuts the inputs into shards itself; give --shard or --ray, not both", param_hint="--shard")
    if ray is None:
        if ray_shards is not None:
            raise typer.BadParameter("only with --ray", param_hint="--ray-shards")
        return None
    from adfd_core.distributed_ray import Cluster

    return Cluster(None if ray == RAY_LOCAL else ray, ray_shards)
