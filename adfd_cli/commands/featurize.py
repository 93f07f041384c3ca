"""`adfd featurize`: audio corpus -> HDF5 feature file."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from adfd_cli import options
from adfd_cli.choices import one_of
from adfd_cli.console import BarObserver, err, failed, progress
from adfd_core.frontends.names import available
from adfd_core.frontends.params import MAX_SEGMENT_SECONDS


def featurize(
    input: Annotated[
        str | None,
        typer.Argument(help="Audio folder (read through its manifest.tsv when it holds one), manifest or protocol file; "
                       "with --protocol, the folder holding the audio; '-' is one recording on stdin."),
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Feature file to write (HDF5).")] = Path("feats.h5"),
    feature: Annotated[
        list[str] | None,
        typer.Option("--feature", "-f", **one_of(available()), help="Front-end, repeatable (see `adfd info --features`). Default: cqt."),
    ] = None,
    embedding: Annotated[
        list[str] | None,
        typer.Option(
            "--embedding",
            "-e",
            metavar="NAME[=MODEL]",
            help="Pre-trained embedding, repeatable: whisper, seamless, speechbrain or pyannote. MODEL is the "
            "network's folder or a Hugging Face repo id in the local cache (default: the paper's); "
            "--embedding NAME is the same as --feature NAME.",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="NAME.KEY=VALUE",
            help="A front-end parameter, repeatable, e.g. whisper.layers=2,4, whisper.layers=[3], whisper.pooling=mean+std or whisper.pooling=frames "
            "(see `adfd info --features`); VALUE is JSON, or a comma-separated list of integers, or else text.",
        ),
    ] = None,
    protocol: options.Protocol = None,
    subset: options.Subset = "eval",
    from_list: options.FromList = None,
    segment_seconds: Annotated[
        float | None,
        typer.Option("--segment-seconds", min=0.1, max=MAX_SEGMENT_SECONDS, callback=options.finite,
                     help="Segment length for every segment front-end (default: each one's own)."),
    ] = None,
    augment_copies: Annotated[
        int,
        typer.Option("--augment-copies", min=0, metavar="N",
                     help="For training files: add N degraded copies of every utterance (ID~augK, same label and group): "
                     "codecs, band-limiting, noise, reverberation, gain with clipping, silence changes."),
    ] = 0,
    augment_seed: Annotated[
        int, typer.Option("--augment-seed", help="Seed of the copies' degradations (each drawn from it, the id and K).")
    ] = 0,
    jobs: options.Jobs = 1,
    device: options.Device = "auto",
    batch_size: options.BatchSize = 64,
    force: options.Force = False,
    shard: options.Shard = None,
    ray: options.Ray = False,
    ray_address: options.RayAddress = None,
    ray_shards: options.RayShards = None,
) -> int:
    """Decode audio, compute features and write them to one HDF5 file.

    Several --feature and --embedding values are computed in one pass over the audio. A rerun of an
    interrupted command resumes it. Inputs that cannot be decoded are named on stderr and recorded in the file.
    --ray runs on a Ray cluster and --shard K/N does one shard; either way the result is the single run's file.
    """
    from adfd_core.catalog import frontends
    from adfd_core.corpus import read_corpus
    from adfd_core.featurize import FeaturizeOptions
    from adfd_core.featurize import featurize as run_featurize
    from adfd_core.outputs import check_output

    params = _embedding_params(embedding or [])
    names = tuple(dict.fromkeys([*(feature or ([] if params else ["cqt"])), *params]))
    defaults = {row["name"]: row["params"] for row in frontends()}
    for name, key, value in map(_frontend_param, param or []):
        if name not in names:
            raise typer.BadParameter(f"{name}.{key}: {name} is not computed; add -f {name} or -e {name}", param_hint="--param")
        if key not in defaults[name]:
            raise typer.BadParameter(f"{name} has no parameter {key!r}; its parameters: {', '.join(defaults[name])}",
                                     param_hint="--param")
        params[name] = {**params.get(name, {}), key: value}
    cluster = options.cluster(shard, ray, ray_address, ray_shards)
    if (input is None) == (from_list is None):
        raise typer.BadParameter("give exactly one of INPUT or --from-list", param_hint="INPUT")
    source = from_list if from_list is not None else input
    check_output(output, [source, protocol])
    utts = read_corpus(source, protocol=protocol, subset=subset, from_list=from_list is not None, stdin=sys.stdin)
    check_output(output, [u.path for u in utts])
    opts = FeaturizeOptions(names, segment_seconds, device, jobs, batch_size, force, params, augment_copies, augment_seed)
    inputs = {"source": source, "protocol": str(protocol) if protocol else None, "subset": subset, "utterances": len(utts)}
    with progress() as bar:
        observer = BarObserver(bar, "featurize")
        if cluster is not None:
            from adfd_core.distributed_ray import featurize_on_ray

            result = featurize_on_ray(utts, output, opts, cluster, inputs=inputs, command=list(sys.argv), observer=observer)
        else:
            from adfd_core.shards import Shard

            result = run_featurize(utts, output, opts, inputs=inputs, observer=observer, shard=Shard.parse(shard) if shard else None)
    if result.up_to_date:
        err.print(f"{output}: already complete for these inputs and features; nothing to do")
        for _, path, reason in result.failures:
            failed(path, reason)
    else:
        err.print(f"{output}: {result.written} utterances featurized, {result.skipped} already there, {len(result.failures)} failed")
    return 3 if result.failures else 0


def _frontend_param(text: str) -> tuple[str, str, Any]:
    """NAME.KEY=VALUE -> (NAME, KEY, VALUE): JSON, a comma-separated list of integers, or else the text itself."""
    target, sep, raw = text.partition("=")
    name, dot, key = target.partition(".")
    if not (sep and dot and name and key):
        raise typer.BadParameter(f"{text!r}: give NAME.KEY=VALUE, e.g. whisper.layers=2,4", param_hint="--param")
    if re.fullmatch(r"\d+(,\d+)+", raw.strip()):
        return name, key, [int(k) for k in raw.split(",")]
    try:
        return name, key, json.loads(raw)
    except json.JSONDecodeError:
        return name, key, raw


def _embedding_params(values: list[str]) -> dict[str, dict[str, Any]]:
    """--embedding NAME[=MODEL] values -> {NAME: {"model": MODEL}} ({} for the default network); a MODEL that
    is an existing folder is made absolute, so `adfd score` finds it from anywhere."""
    from adfd_core.frontends.names import EMBEDDINGS

    params: dict[str, dict[str, Any]] = {}
    for value in values:
        name, _, model = value.partition("=")
        if name not in EMBEDDINGS:
            raise typer.BadParameter(f"unknown embedding {name!r}; choose from {', '.join(EMBEDDINGS)}", param_hint="--embedding")
        if not model and "=" in value:
            raise typer.BadParameter(f"{value!r}: give the model after '=' (a folder or a Hugging Face repo id)", param_hint="--embedding")
        if model and Path(model).expanduser().exists():
            model = str(Path(model).expanduser().resolve())
        given = {"model": model} if model else {}
        if name in params and params[name] != given:
            raise typer.BadParameter(f"{name!r} given twice with different models; a feature file holds one of each", param_hint="--embedding")
        params[name] = given
    return params
