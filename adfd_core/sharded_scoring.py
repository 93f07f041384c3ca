"""Scoring one shard of a run's recordings into a shard score table (see adfd_core.shards): what
`adfd score --shard K/N` runs, and each Ray task of `adfd score --ray`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from adfd_core.corpus import Utterance
from adfd_core.pipeline import Observer
from adfd_core.shards import Shard, mark_score_shard, score_run_identity


@dataclass(frozen=True)
class ScoreJob:
    """How to score: model files (None: the bundled default, calibrated), where embedding networks
    are, the table's options, and the device work."""

    models: tuple[Path, ...] | None = None
    networks: Mapping[str, str] = field(default_factory=dict)
    segments: bool = False
    threshold: float | None = None
    device: str = "auto"
    batch_size: int = 64
    jobs: int = 1


def score_shard(utterances: Sequence[Utterance], job: ScoreJob, shard: Shard, output: Path,
                command: list[str] | None = None, observer: Observer | None = None) -> list[tuple[str, str, str]]:
    """Score shard ``shard`` of ``utterances`` and write its shard table (TSV) to ``output``; return the
    recordings that failed (id, path, reason). Ctrl-C writes nothing: a shard table is whole or absent."""
    from adfd_core.devices import resolve_device
    from adfd_core.scoretable import write_scores
    from adfd_core.scoring import (ScoringInterrupted, default_calibration, default_model_paths, load_models, score_audio,
                                   table_identity, to_table)

    device = resolve_device(job.device)
    models = load_models(list(job.models or default_model_paths()), device, dict(job.networks))
    calibration = None if job.models else default_calibration()
    settings = {"calibration": calibration.describe() if calibration else None, "threshold": job.threshold,
                "segments": job.segments, "networks": dict(job.networks)}
    of = score_run_identity([(u.id, str(u.path)) for u in utterances], [m.sha256 for m in models], settings)
    try:
        results = score_audio(shard.select(utterances), models, device, job.batch_size, job.jobs, observer)
    except ScoringInterrupted:
        raise KeyboardInterrupt from None
    table = to_table(results, models, segments=job.segments, command=command, calibration=calibration, threshold=job.threshold,
                     identity=table_identity(models, utterances))  # the whole run's, which the merged table keeps
    # Provenance inside the table as well as beside it: the merge needs it even where a sidecar was left behind.
    write_scores(mark_score_shard(table, [r.content_hash for r in results], shard, of), output, "tsv", inline_provenance=True)
    return [(r.utt.id, str(r.utt.path), r.error) for r in results if r.error]
