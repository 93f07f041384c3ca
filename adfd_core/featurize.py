"""Corpus -> feature file: decode each input once, cut it into segments per front-end, batch the
segments across files through the front-ends on the chosen device, and write the rows.

Several features come from one pass over the audio. Inputs that fail are recorded and reported;
the run goes on. Work is committed batch by batch, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from adfd_core import audio
from adfd_core.corpus import Utterance
from adfd_core.prefetch import Decoded, decoded_in_order
from adfd_core.provenance import digest, provenance

if TYPE_CHECKING:
    import torch

    from adfd_core.frontends import Frontend
    from adfd_core.store import FeatureWriter

STREAM_BLOCK_SECONDS = 30.0  # block size when streaming a long file


class Observer(Protocol):
    """Progress hooks; the command line implements them with a progress bar on stderr."""

    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def failed(self, utt: Utterance, reason: str) -> None: ...


class _Silent:
    def start(self, total: int, already_done: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def failed(self, utt: Utterance, reason: str) -> None:
        pass


@dataclass(frozen=True)
class FeaturizeOptions:
    """What to compute and how. segment_seconds overrides every segment front-end's default."""

    features: tuple[str, ...]
    segment_seconds: float | None = None
    device: str = "auto"
    jobs: int = 1
    batch_size: int = 64
    force: bool = False


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
) -> FeaturizeResult:
    """Featurize ``utterances`` into the HDF5 file ``output``; see the module docstring.

    inputs: how the corpus was named (source, protocol, ...), recorded in the file's provenance.
    """
    from adfd_core.devices import resolve_device
    from adfd_core.frontends import build
    from adfd_core.store import FeatureFile, FeatureWriter

    observer = observer or _Silent()
    device = resolve_device(options.device)
    frontends = {name: build(name, segment_seconds=options.segment_seconds).to(device).eval() for name in options.features}
    specs = {name: _stored_spec(fe) for name, fe in frontends.items()}
    identity = digest({"specs": specs, "inputs": sorted((u.id, str(u.path)) for u in utterances)})
    record = provenance(
        command, inputs=inputs or {}, features=specs, segment_seconds=options.segment_seconds, device=str(device)
    )
    writer = FeatureWriter.open(output, specs, identity, record, force=options.force)
    if writer is None:
        with FeatureFile(output) as done:
            failures = [(f["id"], f["path"], f["reason"]) for f in done.failures()]
        return FeaturizeResult(output, skipped=len(utterances) - len(failures), up_to_date=True, failures=failures)
    try:
        writer.take_failures()
        todo = [u for u in utterances if u.id not in writer.done_ids]
        result = FeaturizeResult(output, skipped=len(utterances) - len(todo))
        observer.start(len(utterances), result.skipped)
        _Pipeline(frontends, device, writer, options, observer, result).run(todo)
        writer.finish()
        return result
    finally:
        writer.close()


def _stored_spec(fe: "Frontend") -> dict:
    """The front-end's spec plus the shape of one stored row ([] for whole-utterance features)."""
    return {**fe.spec.to_dict(), "row_shape": list(fe.output_shape()) if fe.segment_samples else []}


class _Pipeline:
    """One run's state: front-ends on their device, the writer, and the tally."""

    def __init__(
        self,
        frontends: dict[str, "Frontend"],
        device: "torch.device",
        writer: "FeatureWriter",
        options: FeaturizeOptions,
        observer: Observer,
        result: FeaturizeResult,
    ):
        self.frontends, self.device, self.writer = frontends, device, writer
        self.options, self.observer, self.result = options, observer, result
        self.longest = max((fe.segment_samples or 0) for fe in frontends.values())

    def run(self, todo: list[Utterance]) -> None:
        """Decode ahead, gather loaded utterances into batches, stream long ones alone."""
        batch: list[tuple[Utterance, Decoded]] = []
        pending_segments = 0
        for utt, dec in decoded_in_order(todo, lambda u: u.path, jobs=self.options.jobs):
            error = dec.error
            if error is None and dec.must_stream:
                self._write_batch(batch)
                batch, pending_segments = [], 0
                error = self._stream_one(utt, dec)
            elif error is None:
                batch.append((utt, dec))
                pending_segments += audio.segment_count(len(dec.wave), self.longest) if self.longest else 1
                if pending_segments >= self.options.batch_size:
                    self._write_batch(batch)
                    batch, pending_segments = [], 0
            if error is None:
                self.result.written += 1
            else:
                self.writer.add_failure(utt.id, str(utt.path), error)
                self.result.failures.append((utt.id, str(utt.path), error))
                self.observer.failed(utt, error)
            self.observer.advance()
        self._write_batch(batch)

    def _write_batch(self, batch: list[tuple[Utterance, Decoded]]) -> None:
        """Featurize loaded utterances together and commit them."""
        from adfd_core.store import StoredUtterance

        per_feature: dict[str, list[np.ndarray]] = {}
        for name, fe in self.frontends.items():
            if fe.segment_samples is None:
                per_feature[name] = [dec.wave for _, dec in batch]
            elif batch:
                segments = [np.stack(list(audio.iter_segments([dec.wave], fe.segment_samples))) for _, dec in batch]
                bounds = np.cumsum([len(s) for s in segments])[:-1]
                per_feature[name] = np.split(self._apply(fe, np.concatenate(segments)), bounds)
        for i, (utt, dec) in enumerate(batch):
            for name in self.frontends:
                self.writer.add_rows(name, per_feature[name][i])
            self.writer.end_utterance(StoredUtterance(utt, dec.content_hash, dec.duration_s))
        self.writer.commit()

    def _stream_one(self, utt: Utterance, dec: Decoded) -> str | None:
        """Featurize one long file block by block in bounded memory; commit it whole, or return why not."""
        from adfd_core.store import StoredUtterance

        size = self.options.batch_size
        segmenters = {n: audio.Segmenter(fe.segment_samples) for n, fe in self.frontends.items() if fe.segment_samples}
        pending: dict[str, list[np.ndarray]] = {n: [] for n in segmenters}
        n_samples = 0

        def drain(name: str, final: bool) -> None:
            while len(pending[name]) >= size or (final and pending[name]):
                take, pending[name] = pending[name][:size], pending[name][size:]
                self.writer.add_rows(name, self._apply(self.frontends[name], np.stack(take)))

        try:
            for block in audio.stream(utt.path, block_seconds=STREAM_BLOCK_SECONDS):
                n_samples += len(block)
                for name in self.frontends:
                    if name in segmenters:
                        pending[name].extend(segmenters[name].push(block))
                        drain(name, final=False)
                    else:
                        self.writer.add_rows(name, block)
            for name, segmenter in segmenters.items():
                pending[name].extend(segmenter.finish())
                drain(name, final=True)
        except audio.AudioError as err:
            self.writer.discard_utterance()
            return err.reason
        self.writer.end_utterance(StoredUtterance(utt, dec.content_hash, n_samples / audio.TARGET_SR))
        self.writer.commit()
        return None

    def _apply(self, fe: "Frontend", segments: np.ndarray) -> np.ndarray:
        """Run a front-end over (n, samples) segments in batches on the device: (n, C, F, T) float32."""
        import torch

        size = self.options.batch_size
        outs = []
        with torch.inference_mode():
            for start in range(0, len(segments), size):
                x = torch.from_numpy(np.ascontiguousarray(segments[start : start + size])).to(self.device)
                outs.append(fe(x).float().cpu().numpy())
        return np.concatenate(outs)
