"""Decoding inputs ahead of the consumer, in worker processes, in input order.

Kept free of torch so that spawned workers start in a fraction of a second. Files longer than
``max_load_seconds`` are not decoded here: the consumer streams them itself in bounded memory.
"""

from __future__ import annotations

import signal
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


def decode_files(paths: list[str]) -> list[Decoded]:
    """decode_file over several paths: one worker task."""
    return [decode_file(p) for p in paths]


def decoded_in_order(items: Iterable[T], path_of, jobs: int = 1, ahead: int = 2) -> Iterator[tuple[T, Decoded]]:
    """Yield (item, decode_file(path_of(item))) in input order.

    jobs <= 1 decodes in this process; otherwise ``jobs`` spawned worker processes decode chunks of
    CHUNK_FILES files, at most ``jobs * ahead`` chunks ahead of the consumer (bounded memory: files
    over MAX_LOAD_SECONDS are never loaded whole).
    """
    if jobs <= 1:
        for item in items:
            yield item, decode_file(str(path_of(item)))
        return
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_ignore_sigint)
    it = iter(items)

    def submit() -> tuple[list[T], Future] | None:
        group = list(islice(it, CHUNK_FILES))
        return (group, pool.submit(decode_files, [str(path_of(i)) for i in group])) if group else None

    try:
        pending = deque(task for task in (submit() for _ in range(jobs * ahead)) if task)
        while pending:
            group, future = pending.popleft()
            task = submit()
            if task:
                pending.append(task)
            yield from zip(group, future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
