"""The decode -> segment -> front-end pipeline that `featurize` and `score` share.

Inputs are decoded ahead (in worker processes with jobs > 1), cut into each front-end's segments,
batched across files through the front-ends on the device, and handed to a sink utterance by
utterance; long files are streamed block by block in bounded memory. Inputs that fail are
reported to the sink and the observer, and the run goes on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from adfd_core import audio
from adfd_core.corpus import Utterance
from adfd_core.prefetch import Decoded, DecodeAhead
from adfd_core.stdin_audio import audio_path

if TYPE_CHECKING:
    import torch

    from adfd_core.frontends import Frontend
    from adfd_core.store import StoredUtterance

STREAM_BLOCK_SECONDS = 30.0  # block size when streaming a long file


class Observer(Protocol):
    """Progress hooks; the command line implements them with a progress bar on stderr."""

    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def failed(self, utt: Utterance, reason: str) -> None: ...
    def warned(self, utt: Utterance, reason: str) -> None: ...


class Silent:
    """An observer that shows nothing."""

    def start(self, total: int, already_done: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def failed(self, utt: Utterance, reason: str) -> None:
        pass

    def warned(self, utt: Utterance, reason: str) -> None:
        pass


class RowSink(Protocol):
    """Where the rows go (a feature file's writer, or the scorer): rows of one utterance per front-end
    name, then end_utterance; discard_utterance drops a half-done one; end_batch once every utterance
    of a batch has ended (the sink may write them out then)."""

    def add_rows(self, name: str, rows: np.ndarray) -> None: ...
    def end_utterance(self, stored: "StoredUtterance") -> None: ...
    def discard_utterance(self) -> None: ...
    def add_failure(self, utt_id: str, path: str, reason: str) -> None: ...
    def end_batch(self) -> None: ...


class _CpuThreads:
    """Torch's CPU threads lowered to the cores the decoding workers leave (at least one) while they
    decode, and given back once they are done: on 2 cores, 2 workers and 2 torch threads fight, and
    featurizing is about 20 % slower; once decoding has ended, the front-ends have every core."""

    def __init__(self, workers: int):
        import torch

        self._torch, self._before = torch, torch.get_num_threads()
        self._lowered = workers > 1
        if self._lowered:
            torch.set_num_threads(max(1, min(self._before, (os.cpu_count() or 1) - workers)))

    def restore(self) -> None:
        if self._lowered:
            self._torch.set_num_threads(self._before)
            self._lowered = False


def decode_path(utt: Utterance) -> Path:
    """Where an utterance's audio is: what DecodeAhead decodes (standard input's copy for "-")."""
    return audio_path(utt.path)


class FeaturePipeline:
    """Decodes utterances, runs every front-end over their segments in batches across files on the
    device, and hands the rows to a sink, ending a batch after each group of utterances."""

    def __init__(
        self,
        frontends: dict[str, "Frontend"],
        device: "torch.device",
        sink: RowSink,
        batch_size: int = 64,
        jobs: int = 1,
        observer: Observer | None = None,
    ):
        self.frontends, self.device, self.sink = frontends, device, sink
        self.batch_size, self.jobs, self.observer = batch_size, jobs, observer or Silent()
        self.longest = max((fe.segment_samples or 0) for fe in frontends.values())
        self.written = 0
        self.failures: list[tuple[str, str, str]] = []  # (id, path, reason)

    def run(self, todo: Sequence[Utterance], decoded: DecodeAhead | None = None) -> None:
        """Decode ahead (or take ``decoded``, a DecodeAhead of ``todo`` already started), gather loaded
        utterances into batches, stream long ones alone."""
        threads = _CpuThreads(self.jobs if self.device.type == "cpu" else 0)
        try:
            self._run(todo, decoded or DecodeAhead(todo, decode_path, jobs=self.jobs), threads)
        finally:
            threads.restore()

    def _run(self, todo: Sequence[Utterance], decoded: DecodeAhead, threads: _CpuThreads) -> None:
        batch: list[tuple[Utterance, Decoded]] = []
        pending_segments = 0
        for utt, dec in decoded:
            if decoded.finished:
                threads.restore()
            error = dec.error
            for reason in dec.warnings:
                self.observer.warned(utt, reason)
            if error is None and dec.must_stream:
                self._write_batch(batch)
                batch, pending_segments = [], 0
                with audio.collected_warnings() as found:  # streaming opens the file again: report what is new
                    error = self._stream_one(utt, dec)
                for reason in dict.fromkeys(w.reason for w in found if w.reason not in dec.warnings):
                    self.observer.warned(utt, reason)
            elif error is None:
                segments = audio.segment_count(len(dec.wave), self.longest) if self.longest else 1
                if batch and pending_segments + segments > self.batch_size:  # batches stay within batch_size
                    self._write_batch(batch)
                    batch, pending_segments = [], 0
                batch.append((utt, dec))
                pending_segments += segments
            if error is None:
                self.written += 1
            else:
                self.sink.add_failure(utt.id, str(utt.path), error)
                self.failures.append((utt.id, str(utt.path), error))
                self.observer.failed(utt, error)
            self.observer.advance()
        self._write_batch(batch)

    def _write_batch(self, batch: list[tuple[Utterance, Decoded]]) -> None:
        """Featurize loaded utterances together and hand them to the sink as one batch."""
        from adfd_core.store import StoredUtterance

        per_feature: dict[str, list[np.ndarray]] = {}
        for name, fe in self.frontends.items():
            if fe.segment_samples is None:
                per_feature[name] = [dec.wave for _, dec in batch]
            elif batch:
                segments, counts = audio.segment_batch([dec.wave for _, dec in batch], fe.segment_samples)
                per_feature[name] = np.split(self._apply(fe, segments), np.cumsum(counts)[:-1])
        for i, (utt, dec) in enumerate(batch):
            for name in self.frontends:
                self.sink.add_rows(name, per_feature[name][i])
            self.sink.end_utterance(StoredUtterance(utt, dec.content_hash, dec.duration_s))
        self.sink.end_batch()

    def _stream_one(self, utt: Utterance, dec: Decoded) -> str | None:
        """Featurize one long file block by block in bounded memory, as a batch of its own; or return why not."""
        from adfd_core.store import StoredUtterance

        size = self.batch_size
        segmenters = {n: audio.Segmenter(fe.segment_samples) for n, fe in self.frontends.items() if fe.segment_samples}
        pending: dict[str, list[np.ndarray]] = {n: [] for n in segmenters}
        n_samples = 0

        def drain(name: str, final: bool) -> None:
            while len(pending[name]) >= size or (final and pending[name]):
                take, pending[name] = pending[name][:size], pending[name][size:]
                self.sink.add_rows(name, self._apply(self.frontends[name], np.stack(take)))

        try:
            for block in audio.stream(decode_path(utt), block_seconds=STREAM_BLOCK_SECONDS):
                n_samples += len(block)
                for name in self.frontends:
                    if name in segmenters:
                        pending[name].extend(segmenters[name].push(block))
                        drain(name, final=False)
                    else:
                        self.sink.add_rows(name, block)
            for name, segmenter in segmenters.items():
                pending[name].extend(segmenter.finish())
                drain(name, final=True)
        except audio.AudioError as err:
            self.sink.discard_utterance()
            return err.reason
        self.sink.end_utterance(StoredUtterance(utt, dec.content_hash, n_samples / audio.TARGET_SR))
        self.sink.end_batch()
        return None

    def _apply(self, fe: "Frontend", segments: np.ndarray) -> np.ndarray:
        """Run a front-end over (n, samples) segments in batches on the device: (n, C, F, T) float32."""
        import torch

        size = self.batch_size
        outs = []
        with torch.inference_mode():
            for start in range(0, len(segments), size):
                x = torch.from_numpy(np.ascontiguousarray(segments[start : start + size])).to(self.device)
                outs.append(fe(x).float().cpu().numpy())
        return outs[0] if len(outs) == 1 else np.concatenate(outs)
