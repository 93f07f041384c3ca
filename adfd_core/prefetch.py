"""Decoding inputs ahead of the consumer, in worker processes, in input order.

Kept free of torch so that workers start in a fraction of a second. Files longer than
``max_load_seconds`` are not decoded here: the consumer streams them itself in bounded memory.
"""

from __future__ import annotations

import signal
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from multiprocessing import get_context
from typing import TypeVar

import numpy as np

from adfd_core import audio

T = TypeVar("T")
MAX_LOAD_SECONDS = 120.0  # longer files are streamed block by block instead of loaded whole
CHUNK_FILES = 8  # files per worker task: fewer, larger tasks amortize inter-process overhead


@dataclass(frozen=True)
class Decoded:
    """One input after decoding: exactly one of ``wave``, ``error`` is set unless the file must be streamed.

    wave: (samples,) float32 mono at 16 kHz, or None when ``error`` is set or the file is too long to load.
    """

    wave: np.ndarray | None
    content_hash: str
    duration_s: float
    error: str | None = None

    @property
    def must_stream(self) -> bool:
        return self.wave is None and self.error is None


def decode_file(path: str, max_load_seconds: float = MAX_LOAD_SECONDS) -> Decoded:
    """Hash and decode one file; an AudioError becomes ``Decoded.error`` (its one-line reason)."""
    try:
        info = audio.probe(path)
        content_hash = audio.file_sha256(path)
        if info.duration_s is None or info.duration_s > max_load_seconds:
            return Decoded(None, content_hash, info.duration_s or 0.0)
        wave = audio.load(path)
        return Decoded(wave, content_hash, len(wave) / audio.TARGET_SR)
    except audio.AudioError as err:
        return Decoded(None, "", 0.0, error=err.reason)


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which shuts them down in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_method():
    """How to start workers: fork on Linux while torch is not loaded (instant, and nothing is
    re-imported: `featurize` starts decoding before it imports torch); otherwise spawn, since a
    process that has started torch's or OpenMP's threads cannot be forked safely."""
    if sys.platform == "linux" and "torch" not in sys.modules:
        return get_context("fork")
    return get_context("spawn")


def decode_files(paths: list[str]) -> list[Decoded]:
    """decode_file over several paths: one worker task."""
    return [decode_file(p) for p in paths]


class DecodeAhead:
    """(item, decode_file(path_of(item))) for each item, in input order, decoded ahead of the consumer.

    jobs <= 1 decodes in the consumer's process as it iterates. Otherwise ``jobs`` worker
    processes start decoding chunks of CHUNK_FILES files as soon as this is made, so a caller can
    make it first and import torch while the first files decode; at most ``jobs * ahead`` chunks
    run ahead of the consumer (bounded memory: files over MAX_LOAD_SECONDS are never loaded
    whole). Iterate once; ``close`` (or leaving a ``with`` block) stops the workers.
    """

    def __init__(self, items: Iterable[T], path_of, jobs: int = 1, ahead: int = 2):
        self._items, self._path_of = iter(items), path_of
        self._pool: ProcessPoolExecutor | None = None
        self._pending: deque[tuple[list[T], Future]] = deque()
        if jobs > 1:
            self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_start_method(), initializer=_ignore_sigint)
            for _ in range(jobs * ahead):
                self._submit()

    def _submit(self) -> None:
        group = list(islice(self._items, CHUNK_FILES))
        if group:
            self._pending.append((group, self._pool.submit(decode_files, [str(self._path_of(i)) for i in group])))

    def __iter__(self) -> Iterator[tuple[T, Decoded]]:
        if self._pool is None:
            for item in self._items:
                yield item, decode_file(str(self._path_of(item)))
            return
        try:
            while self._pending:
                group, future = self._pending.popleft()
                self._submit()
                yield from zip(group, future.result())
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers, dropping what they have not finished."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._pending.clear()

    def __enter__(self) -> "DecodeAhead":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
