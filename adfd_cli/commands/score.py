"""`adfd score`: recordings (or a feature file) -> one score row per recording."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from adfd_cli import options
from adfd_cli.console import BarObserver, err, progress
from adfd_cli.interrupts import Interrupted


def score(
    inputs: Annotated[
        list[str] | None, typer.Argument(help="Audio files, folders, manifests or protocol files; '-' is audio on stdin.",
                                   show_default=False)
    ] = None,
    model: Annotated[
        list[Path] | None,
        typer.Option("--model", "-m", help="Model file, repeatable: probabilities are averaged. Default: the bundled model."),
    ] = None,
    features: Annotated[
        Path | None, typer.Option("--features", help="Score the recordings of this feature file from its stored rows.")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="Where the table goes ('-' = stdout).")] = "-",
    fmt: options.ScoreFormat = "tsv",
    inline_provenance: options.InlineProvenance = False,
    segments: Annotated[
        bool, typer.Option("--segments", help="Add each recording's timeline: start-end:p_spoof for every segment.")
    ] = False,
    from_list: options.FromList = None,
    protocol: options.Protocol = None,
    subset: options.Subset = "eval",
    jobs: options.Jobs = 1,
    device: options.Device = "auto",
    batch_size: options.BatchSize = 64,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Decide spoof where score < THRESHOLD (default: the bundled model's operating point, "
                     "else 0, even odds).", show_default=False),
    ] = None,
    embedding_model: Annotated[
        list[str] | None,
        typer.Option("--embedding-model", metavar="NAME=MODEL",
                     help="Where an embedding model's network is now (folder or Hugging Face repo id), e.g. "
                          "whisper=/models/whisper-base; its weights must be those it was trained with. Repeatable."),
    ] = None,
    force: options.Force = False,
    shard: options.Shard = None,
    ray: options.Ray = False,
    ray_address: options.RayAddress = None,
    ray_shards: options.RayShards = None,
) -> int:
    """Score recordings: higher score = more bona fide; p_spoof is the probability of spoof.

    The bundled default model gives calibrated log-likelihood ratios and decides at its stated
    operating point. With -m: a recording's probability is the mean over its segments, several
    models are averaged, and the score is its log-odds.
    Recordings that cannot be read are named on stderr and in the output, and the exit code is 3.
    INPUT '-' is audio on stdin (sox in.mp3 -t wav - | adfd score -). A file named twice is scored once;
    files whose names differ only in their suffix get ids with it (a.wav, a.mp3).
    --ray scores on a Ray cluster, --shard K/N one shard (for `adfd merge`); either gives the single run's rows.
    """
    from adfd_core.corpus import read_inputs
    from adfd_core.outputs import check_output
    from adfd_core.scoretable import INLINE_PROVENANCE, ScoreTable, write_scores
    from adfd_core.sidecar import check_replaceable
    from adfd_core.startup import heavy_imports

    with heavy_imports():
        from adfd_core.devices import resolve_device
        from adfd_core.scoring import (ScoringInterrupted, default_calibration, default_model_paths, load_models, score_audio,
                                       score_features, table_identity, to_table)

    if features is None and not inputs and from_list is None:
        raise typer.BadParameter("give recordings to score (INPUT ..., --from-list or --features)", param_hint="INPUT")
    if features is not None and (inputs or from_list is not None):
        raise typer.BadParameter("--features scores a feature file; give no INPUT or --from-list with it", param_hint="--features")
    if inline_provenance and fmt not in INLINE_PROVENANCE:
        raise typer.BadParameter(f"the {fmt} format carries no provenance inside (official scorers read it); "
                                 "with -o FILE it is in FILE.meta.json", param_hint="--provenance")
    if threshold is not None and not math.isfinite(threshold):
        raise typer.BadParameter(f"must be a finite number, got {threshold}", param_hint="--threshold")
    networks = _networks(embedding_model or [])
    cluster = options.cluster(shard, ray, ray_address, ray_shards)
    if shard is not None or cluster is not None:
        from adfd_core.sharded_scoring import ScoreJob

        job = ScoreJob(tuple(model) if model else None, networks, segments, threshold, device, batch_size, jobs)
        return _score_distributed(inputs or [], from_list, protocol, subset, job, output, fmt, shard, cluster, features,
                                  inline_provenance, force)
    torch_device = resolve_device(device)
    model_paths = model or default_model_paths()
    check_output(output, [*model_paths, features, from_list, protocol, *(inputs or [])])
    models = load_models(model_paths, torch_device, networks)
    calibration = None if model else default_calibration()
    utts = [] if features is not None else read_inputs(inputs or [], path_list=from_list, protocol=protocol, subset=subset,
                                                          stdin=sys.stdin)
    check_output(output, [u.path for u in utts])
    identity = table_identity(models, utts, features)
    check_replaceable(output, identity, force)

    def table_of(scored: list) -> ScoreTable:
        return to_table(scored, models, segments=segments, command=list(sys.argv), calibration=calibration,
                        threshold=threshold, identity=identity)

    try:
        if features is not None:
            with progress() as bar:
                results = score_features(features, models, torch_device, batch_size, observer=BarObserver(bar, "score"))
        else:
            with progress() as bar:
                results = score_audio(utts, models, torch_device, batch_size, jobs, observer=BarObserver(bar, "score"))
    except ScoringInterrupted as stop:
        if not stop.results:
            raise Interrupted("no recording was finished; nothing was written") from None
        write_scores(table_of(stop.results), output, fmt, inline_provenance)
        where = "stdout" if output == "-" else output
        raise Interrupted(f"the {len(stop.results)} of {stop.total} recordings finished before it are in {where}") from None
    write_scores(table_of(results), output, fmt, inline_provenance)
    failed = [r for r in results if r.error]
    if failed:
        err.print(f"{len(results) - len(failed)} recordings scored, {len(failed)} failed")
    return 3 if failed else 0


def _score_distributed(inputs: list[str], from_list: str | None, protocol: Path | None, subset: str, job, output: str,
                       fmt: str, shard: str | None, cluster, features: Path | None, inline_provenance: bool, force: bool) -> int:
    """`score --shard` (one shard table) or `score --ray` (the whole table, from shard tables beside the output)."""
    from adfd_core.corpus import read_inputs
    from adfd_core.outputs import check_output
    from adfd_core.scoretable import write_scores
    from adfd_core.sidecar import check_replaceable

    if features is not None:
        raise typer.BadParameter("--shard and --ray score audio; score a feature file in one process", param_hint="--features")
    if shard is not None and fmt != "tsv":
        raise typer.BadParameter("a shard table is adfd TSV, for `adfd merge`; choose the format when merging", param_hint="--format")
    if cluster is not None and output == "-":
        raise typer.BadParameter("--ray commits shard tables beside the output; give the table a file name", param_hint="--output")
    check_output(output, [*(job.models or []), from_list, protocol, *inputs])
    utts = read_inputs(inputs, path_list=from_list, protocol=protocol, subset=subset, stdin=sys.stdin)
    check_output(output, [u.path for u in utts])
    with progress() as bar:
        observer = BarObserver(bar, "score")
        if shard is not None:
            from adfd_core.sharded_scoring import score_shard
            from adfd_core.shards import Shard

            failed = len(score_shard(utts, job, Shard.parse(shard), output, list(sys.argv), observer))
            scored = len(Shard.parse(shard).select(utts)) - failed
        else:
            from adfd_core.distributed_ray import finish, score_on_ray

            table = score_on_ray(utts, job, Path(output), cluster, list(sys.argv), observer)
            check_replaceable(output, table.provenance["identity"], force)
            write_scores(table, output, fmt, inline_provenance)
            finish(Path(output))
            failed = sum(1 for e in table.extra.get("error", []) if e)
            scored = len(table) - failed
    if failed:
        err.print(f"{scored} recordings scored, {failed} failed")
    return 3 if failed else 0


def _networks(values: list[str]) -> dict[str, str]:
    """--embedding-model NAME=MODEL values -> {NAME: MODEL}; an existing folder is made absolute."""
    from adfd_core.frontends.names import EMBEDDINGS

    networks = {}
    for value in values:
        name, eq, where = value.partition("=")
        if name not in EMBEDDINGS or not eq or not where:
            raise typer.BadParameter(f"expected NAME=MODEL with NAME one of {', '.join(EMBEDDINGS)}, got {value!r}",
                                     param_hint="--embedding-model")
        networks[name] = str(Path(where).expanduser().resolve()) if Path(where).expanduser().exists() else where
    return networks
