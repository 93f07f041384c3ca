"""Decoding inputs ahead of the consumer, in worker processes, in input order.

Kept free of torch so that spawned workers start in a fraction of a second. Files longer than
``max_load_seconds`` are not decoded here: the consumer streams them itself in bounded memory.
"""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from multiprocessing import get_context
from typing import TypeVar

import numpy as np

from adfd_core import audio

T = TypeVar("T")
MAX_LOAD_SECONDS = 600.0  # longer files are streamed block by block instead of loaded whole


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


def decoded_in_order(items: Iterable[T], path_of, jobs: int = 1, ahead: int = 4) -> Iterator[tuple[T, Decoded]]:
    """Yield (item, decode_file(path_of(item))) in input order, decoding up to ``jobs * ahead`` files ahead.

    jobs <= 1 decodes in this process; otherwise in ``jobs`` spawned worker processes.
    """
    if jobs <= 1:
        for item in items:
            yield item, decode_file(str(path_of(item)))
        return
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_ignore_sigint)
    try:
        it = iter(items)
        pending = deque((item, pool.submit(decode_file, str(path_of(item)))) for item in islice(it, jobs * ahead))
        while pending:
            item, future = pending.popleft()
            for nxt in islice(it, 1):
                pending.append((nxt, pool.submit(decode_file, str(path_of(nxt)))))
            yield item, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
