"""Corpus -> feature file: decode each input once, cut it into segments per front-end, batch the
segments across files through the front-ends on the chosen device, and write the rows.

Several features come from one pass over the audio. Inputs that fail are recorded and reported;
the run goes on. Work is committed every second, so an interrupted run resumes where it stopped.

For training, ``augment_copies`` N adds N degraded copies of every utterance (``channel``: codecs,
band-limiting, noise, reverberation, gain and clipping, silence), of both classes: ``ID~augK`` for
K = 1..N, with the utterance's label, attack, speaker and group (its id when it has none, so that a
group-disjoint split keeps the copies with it) and the degradation in their ``augment`` metadata.
Each copy's degradation is drawn from (augment_seed, id, K) alone, so a rerun, a resumed run and any
number of jobs write the same rows. The copies are utterances like the others to every reader, so
such a file is for training: score and evaluate on a file without them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adfd_core.channel import ChannelAugment, Recipe, recipe
from adfd_core.corpus import Utterance
from adfd_core.outputs import storage_errors
from adfd_core.pipeline import FeaturePipeline, Observer, Silent, decode_path
from adfd_core.prefetch import DecodeAhead
from adfd_core.provenance import digest, provenance
from adfd_core.stdin_audio import STDIN, stdin_sha256

if TYPE_CHECKING:
    from adfd_core.frontends import Frontend
    from adfd_core.shards import Shard


@dataclass(frozen=True)
class FeaturizeOptions:
    """What to compute and how. segment_seconds overrides every segment front-end's default; params
    overrides other parameters per feature (e.g. {"whisper": {"model": "/models/whisper-small"}})."""

    features: tuple[str, ...]
    segment_seconds: float | None = None
    device: str = "auto"
    jobs: int = 1
    batch_size: int = 64
    force: bool = False
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    augment_copies: int = 0
    augment_seed: int = 0


@dataclass
class FeaturizeResult:
    """How a run went: where it wrote, how many utterances it added or found done, what failed."""

    output: Path
    written: int = 0
    skipped: int = 0
    up_to_date: bool = False
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (id, path, reason)


def featurize(
    utterances: Sequence[Utterance],
    output: Path,
    options: FeaturizeOptions,
    inputs: dict[str, Any] | None = None,
    command: list[str] | None = None,
    observer: Observer | None = None,
    shard: Shard | None = None,
) -> FeaturizeResult:
    """Featurize ``utterances`` into the HDF5 file ``output``; see the module docstring.

    inputs: how the corpus was named (source, protocol, ...), recorded in the file's provenance.
    shard: featurize only that shard of ``utterances`` (adfd_core.shards), into a file that records it.
    """
    from adfd_core.store import committed_ids

    observer = observer or Silent()
    everything = with_copies(utterances, options.augment_copies, options.augment_seed)[0] if shard else None
    utterances, recipes = with_copies(shard.select(utterances) if shard else utterances, options.augment_copies, options.augment_seed)
    # Decoding starts before torch is imported (about a second of CPU), with the utterances an
    # interrupted run left out; checked below once the writer has opened the file.
    done = committed_ids(output)
    early = not Path(output).exists()
    with _decode_ahead([u for u in utterances if u.id not in done], recipes, options.jobs) if early else nullcontext() as decoded:
        return _run(utterances, recipes, output, options, inputs, command, observer, done, decoded, (shard, everything))


def with_copies(utterances: Sequence[Utterance], copies: int, seed: int,
                chain: ChannelAugment = ChannelAugment()) -> tuple[list[Utterance], dict[str, Recipe]]:
    """Each utterance followed by its ``copies`` degraded copies (see the module docstring), and the
    degradation of each copy by its id."""
    out: list[Utterance] = []
    recipes: dict[str, Recipe] = {}
    for utt in utterances:
        out.append(utt)
        for k in range(1, copies + 1):
            drawn = recipe(chain, seed, utt.id, k)
            copy = replace(utt, id=f"{utt.id}~aug{k}", group=utt.id if utt.group in ("", "-") else utt.group,
                           meta={**utt.meta, "augment": str(drawn), "augment_of": utt.id})
            recipes[copy.id] = drawn
            out.append(copy)
    return out, recipes


def _decode_ahead(todo: Sequence[Utterance], recipes: Mapping[str, Recipe], jobs: int) -> DecodeAhead:
    """Decoding of ``todo``, the copies degraded, started now."""
    return DecodeAhead(todo, decode_path, jobs=jobs, degradation_of=lambda u: recipes.get(u.id))


def _run(utterances: Sequence[Utterance], recipes: Mapping[str, Recipe], output: Path, options: FeaturizeOptions,
         inputs: dict[str, Any] | None, command: list[str] | None, observer: Observer, done: set[str],
         decoded: DecodeAhead | None, sharded: tuple[Shard | None, list[Utterance] | None]) -> FeaturizeResult:
    from adfd_core.startup import heavy_imports
    from adfd_core.store import FeatureFile, FeatureWriter, partial_path

    with heavy_imports():
        from adfd_core.devices import resolve_device
        from adfd_core.frontends import build

    device = resolve_device(options.device)
    frontends = {
        name: build(name, segment_seconds=options.segment_seconds, **options.params.get(name, {})).to(device).eval()
        for name in options.features
    }
    specs = {name: _stored_spec(fe) for name, fe in frontends.items()}
    shard, everything = sharded
    identity = run_identity(everything or utterances, specs, options)
    record = provenance(
        command, inputs=inputs or {}, features=specs, segment_seconds=options.segment_seconds, device=str(device),
        augment=_augment(options) if options.augment_copies else None,
    )
    if shard is not None:
        record["shard"] = shard.record(identity)
        identity = shard.identity(identity)
    part = partial_path(output)
    with storage_errors(part):
        writer = FeatureWriter.open(output, specs, identity, record, force=options.force)
    if writer is None:
        with FeatureFile(output) as finished:
            failures = [(f["id"], f["path"], f["reason"]) for f in finished.failures()]
        return FeaturizeResult(output, skipped=len(utterances) - len(failures), up_to_date=True, failures=failures)
    with storage_errors(part):  # a full disk: the partial file stays, resumable up to its last commit
        try:
            writer.take_failures()
            todo = [u for u in utterances if u.id not in writer.done_ids]
            if writer.done_ids != done and decoded is not None:
                decoded.close()  # the partial file was started afresh (--force): decode everything
                decoded = None
            result = FeaturizeResult(output, skipped=len(utterances) - len(todo))
            observer.start(len(utterances), result.skipped)
            pipeline = FeaturePipeline(frontends, device, writer, options.batch_size, options.jobs, observer)
            with nullcontext(decoded) if decoded is not None else _decode_ahead(todo, recipes, options.jobs) as source:
                pipeline.run(todo, source)
            result.written, result.failures = pipeline.written, pipeline.failures
            writer.finish()
            return result
        finally:
            writer.close()


def run_identity(utterances: Sequence[Utterance], specs: Mapping[str, dict], options: FeaturizeOptions) -> str:
    """The digest of what decides a feature file's contents: the stored specs and every (copied) input."""
    made_from: dict[str, Any] = {"specs": specs, "inputs": sorted((u.id, str(u.path)) for u in utterances)}
    if options.augment_copies:
        made_from["augment"] = _augment(options)
    if any(u.path == STDIN for u in utterances):
        made_from["stdin_sha256"] = stdin_sha256()
    return digest(made_from)


def _augment(options: FeaturizeOptions) -> dict[str, Any]:
    return {"copies": options.augment_copies, "seed": options.augment_seed, "chain": ChannelAugment().describe()}


def stored_specs(options: FeaturizeOptions, device: str = "cpu") -> dict[str, dict]:
    """The specs a run with ``options`` stores, per feature name (each front-end built to learn its own)."""
    from adfd_core.frontends import build

    return {name: _stored_spec(build(name, segment_seconds=options.segment_seconds, **options.params.get(name, {})))
            for name in options.features}


def _stored_spec(fe: "Frontend") -> dict:
    """The front-end's spec plus the shape of one stored row ([] for whole-utterance features)."""
    return {**fe.spec.to_dict(), "row_shape": list(fe.output_shape()) if fe.segment_samples else []}
