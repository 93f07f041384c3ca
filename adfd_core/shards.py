"""Deterministic shards of a run's inputs, and merging the shards' outputs into the single-run result.

Shard K of N (K = 1..N) is the K-th contiguous block of the inputs in their listed order:
inputs[floor((K-1)n/N) : floor(Kn/N)], so concatenating the shards in order gives the single run's
order, and the same inputs and N always give the same shards on any machine. Augmented copies
(``featurize --augment-copies``) follow their original into its shard.

A shard's output records ``shard``: {index, count, of}, where ``of`` is a digest of everything that
decides the whole run's result (every input's id and path, the features or the models, and the
options that change rows). ``merge`` refuses outputs of different ``of``, a shard given twice, and a
missing one. A merged feature file carries the single run's identity, so featurize sees it as that
run's finished file; a merged score table holds the single run's rows, and its provenance says it
was merged and from what.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from adfd_core.errors import AdfdError
from adfd_core.provenance import digest

if TYPE_CHECKING:
    from adfd_core.scoretable import ScoreTable
    from adfd_core.store import FeatureFile, FeatureWriter

T = TypeVar("T")
CONTENT_COLUMN = "content_sha256"  # a score shard's extra column: each recording's audio digest, for inputs_sha256
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class ShardError(AdfdError):
    """Shard outputs that cannot be merged, or a shard option that makes no sense; names the file."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ShardError(f"shard {self.index}/{self.count}: K must be between 1 and N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` -> Shard(K, N)."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise ShardError(f"{text!r}: give the shard as K/N, e.g. 3/8 (the 3rd of 8)")
        return cls(int(match[1]), int(match[2]))

    def select(self, items: Sequence[T]) -> list[T]:
        """This shard's contiguous block of ``items``."""
        n = len(items)
        return list(items[n * (self.index - 1) // self.count : n * self.index // self.count])

    def record(self, of: str) -> dict[str, Any]:
        """What a shard's output records about it; ``of`` digests the whole run."""
        return {"index": self.index, "count": self.count, "of": of}

    def identity(self, of: str) -> str:
        """A feature file identity for this shard of the run ``of``."""
        return digest({"of": of, "shard": [self.index, self.count]})

    @property
    def name(self) -> str:
        """A file name stem that sorts in shard order: ``00003-of-00008``."""
        return f"{self.index:05d}-of-{self.count:05d}"


def _check_complete_set(records: Sequence[tuple[str, dict]]) -> None:
    """Refuse shard records (source name, record) of different runs or counts, a shard twice or one missing."""
    for name, record in records:
        if not isinstance(record, dict) or not {"index", "count", "of"} <= set(record):
            raise ShardError(f"{name}: is not a shard output (it was not made with --shard or --ray)")
    first_name, first = records[0]
    for name, record in records[1:]:
        if record["of"] != first["of"]:
            raise ShardError(f"{name}: is a shard of other inputs, options or models than {first_name}; "
                             "merge only the shards of one run")
        if record["count"] != first["count"]:
            raise ShardError(f"{name}: is shard {record['index']}/{record['count']}, but {first_name} is one of "
                             f"{first['count']}; merge only the shards of one run")
    seen: dict[int, str] = {}
    for name, record in records:
        if record["index"] in seen:
            raise ShardError(f"{name}: shard {record['index']}/{first['count']} is also given as {seen[record['index']]}")
        seen[record["index"]] = name
    missing = [k for k in range(1, first["count"] + 1) if k not in seen]
    if missing:
        shown = ", ".join(f"{k}/{first['count']}" for k in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ShardError(f"missing shard{'s' if len(missing) > 1 else ''} {shown}; merge needs all {first['count']}")


def is_feature_file(path: Path) -> bool:
    """Whether ``path`` starts as an HDF5 file does (a feature file), rather than text (a score table)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE
    except OSError as exc:
        raise ShardError(f"{path}: cannot read it ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------- feature files


@dataclass
class MergedFeatures:
    """A merged feature file: where, how many utterances, the inputs that failed (id, path, reason)."""

    output: Path
    utterances: int
    failures: list[tuple[str, str, str]]
    up_to_date: bool = False


def merge_features(paths: Sequence[Path], output: Path, command: list[str] | None = None,
                   force: bool = False) -> MergedFeatures:
    """Join the shard feature files ``paths`` (any order) into ``output``, the single run's file:
    the same utterances, rows and failures in the same order, and the single run's identity."""
    from adfd_core.outputs import storage_errors
    from adfd_core.store import FeatureFile, FeatureWriter, partial_path

    files = [FeatureFile(p) for p in paths]
    try:
        _check_complete_set([(str(f.path), f.provenance.get("shard")) for f in files])
        files.sort(key=lambda f: f.provenance["shard"]["index"])
        first = files[0]
        specs = {name: {**info.spec, "row_shape": list(info.row_shape)} for name, info in first.features.items()}
        of = first.provenance["shard"]["of"]
        record = {**{k: v for k, v in first.provenance.items() if k != "shard"},
                  "command": command if command is not None else first.provenance.get("command"),
                  "merged_from": [{"path": str(f.path), **f.provenance["shard"], "created_at": f.provenance.get("created_at")}
                                  for f in files]}
        with storage_errors(partial_path(output)):
            writer = FeatureWriter.open(output, specs, of, record, force=force)
            if writer is None:
                with FeatureFile(output) as done:
                    failed = [(x["id"], x["path"], x["reason"]) for x in done.failures()]
                    return MergedFeatures(output, done.n_utterances, failed, up_to_date=True)
            try:
                writer.take_failures()
                count, failures = 0, []
                for f in files:
                    count += _copy_utterances(f, writer)
                    for x in f.failures():
                        writer.add_failure(x["id"], x["path"], x["reason"])
                        failures.append((x["id"], x["path"], x["reason"]))
                    writer.commit()
                writer.finish()
            finally:
                writer.close()
        return MergedFeatures(output, count, failures)
    finally:
        for f in files:
            f.close()


def _copy_utterances(source: FeatureFile, writer: FeatureWriter) -> int:
    """Every utterance of ``source`` with its rows, appended to ``writer`` (its own resumed ones skipped)."""
    stored = source.utterances()
    for index, s in enumerate(stored):
        if s.utterance.id in writer.done_ids:
            continue
        for name in source.features:
            writer.add_rows(name, source.rows(name, index))
        writer.end_utterance(s)
        writer.end_batch()
    return len(stored)


# --------------------------------------------------------------------------- score tables


def score_run_identity(inputs: Sequence[tuple[str, str]], models: Sequence[str], settings: dict[str, Any]) -> str:
    """The ``of`` of a score run: every input's (id, path) in order, the models' sha256 in order, and the
    settings that change its rows (calibration, threshold, segments, where embedding networks are)."""
    return digest({"inputs": list(inputs), "models": list(models), "settings": settings})


def mark_score_shard(table: ScoreTable, content_hashes: Sequence[str], shard: Shard, of: str) -> ScoreTable:
    """``table`` as a shard output: its ``shard`` record in its provenance, each row's audio digest in CONTENT_COLUMN."""
    table.extra = {**table.extra, CONTENT_COLUMN: list(content_hashes)}
    table.provenance = {**table.provenance, "shard": shard.record(of)}
    return table


def merge_scores(paths: Sequence[Path | str], command: list[str] | None = None) -> ScoreTable:
    """Join shard score tables (any order) into the single run's table: its rows in its order, its
    identity, and inputs_sha256 over every recording as a single run computes it."""
    import numpy as np

    from adfd_core.provenance import provenance
    from adfd_core.scoretable import ScoreTable, read_scores

    tables = [read_scores(p) for p in paths]
    _check_complete_set([(t.source, t.provenance.get("shard")) for t in tables])
    tables.sort(key=lambda t: t.provenance["shard"]["index"])
    for t in tables:
        if CONTENT_COLUMN not in t.extra:
            raise ShardError(f"{t.source}: lacks its {CONTENT_COLUMN} column; was it written by score --shard?")
    # The extra columns a single run writes: error where any recording failed, then segments.
    names = [c for c in ("error", "segments") if any(c in t.extra for t in tables)]
    names = list(dict.fromkeys([*names, *(c for t in tables for c in t.extra if c != CONTENT_COLUMN)]))
    pairs = sorted((i, h) for t in tables for i, h in zip(t.ids, t.extra[CONTENT_COLUMN]))
    made = {k: v for k, v in tables[0].provenance.items() if k not in ("shard", "command", "created_at")}
    made = provenance(command, **{**made, "inputs_sha256": digest(pairs),
                                  "merged_from": [{"path": t.source, "sha256": t.sha256, **t.provenance["shard"]} for t in tables]})
    return ScoreTable(
        ids=[i for t in tables for i in t.ids], paths=[p for t in tables for p in t.paths],
        scores=np.concatenate([t.scores for t in tables]), p_spoof=np.concatenate([t.p_spoof for t in tables]),
        decisions=[d for t in tables for d in t.decisions], labels=[x for t in tables for x in t.labels],
        attacks=[a for t in tables for a in t.attacks],
        extra={c: [v for t in tables for v in t.extra.get(c, [""] * len(t))] for c in names}, provenance=made,
    )
