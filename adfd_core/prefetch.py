"""Decoding inputs ahead of the consumer, in worker processes, in input order.

Kept free of torch so that workers start in a fraction of a second. Files longer than
``max_load_seconds`` are not decoded here: the consumer streams them itself in bounded memory.
An item may come with a degradation (a ``channel.Recipe``), which the worker applies after decoding.
"""

from __future__ import annotations

import mmap
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context, resource_tracker
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from adfd_core import audio
from adfd_core.errors import AdfdError

T = TypeVar("T")
MAX_LOAD_SECONDS = 120.0  # longer files are streamed block by block instead of loaded whole
# A worker task takes up to CHUNK_FILES files, fewer once they reach CHUNK_DISK_BYTES on disk: 4-8 MB
# of audio decoded from 16-kHz WAV or FLAC, 64 MB at most (16-kbit/s Opus). Every finished task wakes
# three threads of the consumer, each taking the GIL from it while it imports torch: 8-file tasks
# (the devset's 95) made featurize 0.3 s slower than tasks of 20-32 files.
CHUNK_FILES = 32
CHUNK_DISK_BYTES = 2 << 20
# Decoded audio waiting for the consumer: 1.7 h at 16 kHz. While the consumer imports torch (1.5 s
# of CPU), workers decode; at 128 MB they stopped half-way through the 1.2-h devset and then took
# the cores the front-ends needed.
DECODE_BUFFER_BYTES = 384 << 20
WORKER_NICENESS = 5
PARENT_CHECK_SECONDS = 0.5  # how often a worker checks that its parent is alive
SHM_SPARE_BYTES = 16 << 20  # /dev/shm left free for others; fuller, waves travel through the pool's pipe


@dataclass(frozen=True)
class Decoded:
    """One input after decoding: exactly one of ``wave``, ``error`` is set unless the file must be streamed.

    wave: (samples,) float32 mono at 16 kHz, or None when ``error`` is set or the file is too long to load.
    warnings: the reasons of the AudioWarnings decoding gave (the file decoded but looks damaged).
    """

    wave: np.ndarray | None
    content_hash: str
    duration_s: float
    error: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def must_stream(self) -> bool:
        return self.wave is None and self.error is None


class Degradation(Protocol):
    """What a worker applies to a decoded wave (``channel.Recipe``): (N,) float32 -> (M,) float32."""

    def apply(self, wave: np.ndarray) -> np.ndarray: ...


def decode_file(path: str, max_load_seconds: float = MAX_LOAD_SECONDS, degradation: Degradation | None = None) -> Decoded:
    """Hash and decode one file, then apply ``degradation`` to it; an AudioError (or a degradation
    that fails) becomes ``Decoded.error``, its one-line reason, and AudioWarnings ``Decoded.warnings``.
    A file too long to load cannot be degraded."""
    with audio.collected_warnings() as found:
        decoded = _decode(path, max_load_seconds, degradation)
    return replace(decoded, warnings=tuple(dict.fromkeys(w.reason for w in found))) if found else decoded


def _decode(path: str, max_load_seconds: float, degradation: Degradation | None) -> Decoded:
    try:
        info, wave = audio.load_within(path, max_load_seconds)
        content_hash = audio.file_sha256(path)
        if wave is None and degradation is not None:
            return Decoded(None, "", 0.0, error=f"over {max_load_seconds:g} s: too long to load whole, so not degraded")
        if wave is None:
            return Decoded(None, content_hash, info.duration_s or 0.0)
        if degradation is not None:
            wave = degradation.apply(wave)
        return Decoded(wave, content_hash, len(wave) / audio.TARGET_SR)
    except audio.AudioError as err:
        return Decoded(None, "", 0.0, error=err.reason)
    except AdfdError as err:  # a degradation this FFmpeg cannot do
        return Decoded(None, "", 0.0, error=str(err))


def _start_worker() -> None:
    """Workers leave Ctrl-C to the parent, which shuts them down in order, run at a lower priority
    (the consumer's own work, starting torch and the front-ends, is what the run waits for, so
    decoding takes the CPU it leaves), and exit when the parent is killed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "nice"):
        os.nice(WORKER_NICENESS)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="adfd-parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent was killed would wait for tasks forever (it holds its task pipe open
    itself), and keep alive the resource tracker, which deletes the files it left in /dev/shm."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _start_method():
    """How to start workers: fork on Linux while torch is not loaded (instant, and nothing is
    re-imported: `featurize` starts decoding before it imports torch); otherwise spawn, since a
    process that has started torch's or OpenMP's threads cannot be forked safely."""
    if sys.platform == "linux" and "torch" not in sys.modules:
        return get_context("fork")
    return get_context("spawn")


@dataclass(frozen=True)
class _Chunk:
    """A worker task's result: the Decoded of each path with its wave moved, one after another, into
    a file in /dev/shm (``block``, None when the waves are still in ``decoded``), ``lengths`` giving
    each wave's sample count (0 for none)."""

    decoded: list[Decoded]
    block: str | None
    lengths: list[int]

    @property
    def nbytes(self) -> int:
        return 4 * sum(self.lengths)


# Linux keeps /dev/shm in memory: a worker writes each task's waves to a file there with write(2) and
# the consumer maps it. For the devset's 276 MB, writing took 0.12 s against 0.22-0.55 s for filling
# shared mappings page by page; mapping instead of reading back saved the consumer 0.1 s of copying.
# Elsewhere the waves travel through the pool's pipe with the rest.
SHM_DIR = Path("/dev/shm")
_SHARE_WAVES = sys.platform == "linux" and SHM_DIR.is_dir()


def decode_files(paths: list[str], degradations: list[Degradation | None] | None = None) -> _Chunk:
    """Worker task: decode_file over several paths, each with its degradation. The waves are parked in
    /dev/shm for the consumer to take (``_take``): pickled through the pool's pipe, the audio cost more
    than decoding it, and the consumer's process had to receive it while busy starting up."""
    decoded = [decode_file(p, degradation=d) for p, d in zip(paths, degradations or [None] * len(paths))]
    lengths = [0 if d.wave is None else len(d.wave) for d in decoded]
    if not _SHARE_WAVES or not any(lengths) or not _shared_memory_room(4 * sum(lengths)):
        return _Chunk(decoded, None, lengths)
    block = _park([d.wave for d in decoded if d.wave is not None])
    if block is None:
        return _Chunk(decoded, None, lengths)
    return _Chunk([replace(d, wave=None) for d in decoded], block, lengths)


def _shared_memory_room(nbytes: int) -> bool:
    """Whether /dev/shm can take ``nbytes`` with room to spare: containers often get only 64 MB of it
    (Docker's default), and others use it too."""
    return shutil.disk_usage(SHM_DIR).free > 2 * nbytes + SHM_SPARE_BYTES


def _park(waves: list[np.ndarray]) -> str | None:
    """Write the waves one after another to a new file in /dev/shm: its name, or None (and no file)
    when /dev/shm cannot take them. Registered with the run's resource tracker, which deletes it if
    the run is killed before the consumer takes it."""
    name = f"adfd-{os.getpid()}-{secrets.token_hex(8)}"
    try:
        fd = os.open(SHM_DIR / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:  # not writable here
        return None
    resource_tracker.register(f"/{name}", "shared_memory")
    try:
        complete = os.writev(fd, waves) == sum(w.nbytes for w in waves)
    except OSError:  # full
        complete = False
    finally:
        os.close(fd)
    if not complete:
        _remove(name)
        return None
    return name


def _remove(name: str) -> None:
    os.unlink(SHM_DIR / name)
    resource_tracker.unregister(f"/{name}", "shared_memory")


def _take(chunk: _Chunk) -> list[Decoded]:
    """The consumer's side of decode_files: the waves, mapped from the chunk's file, which is deleted
    at once (its memory goes when the last wave does). The mapping is private: the waves are
    writable, and a page is copied only when written."""
    if chunk.block is None:
        return chunk.decoded
    path = SHM_DIR / chunk.block
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size != chunk.nbytes:
            raise OSError(f"{path}: {size} bytes of decoded audio where {chunk.nbytes} were written")
        mapped = mmap.mmap(fd, size, access=mmap.ACCESS_COPY)
    finally:
        os.close(fd)
        _remove(chunk.block)
    samples = np.frombuffer(mapped, dtype=np.float32)
    waves = np.split(samples, np.cumsum(chunk.lengths)[:-1])  # one per decoded, empty for none
    return [replace(d, wave=wave) if n else d for d, n, wave in zip(chunk.decoded, chunk.lengths, waves)]


def _discard(future: Future) -> None:
    """Delete the file of a finished task that the consumer will not take."""
    if future.done() and not future.cancelled() and future.exception() is None and future.result().block:
        _remove(future.result().block)


def task_groups(items: Iterable[T], path_of) -> Iterator[list[T]]:
    """``items`` in order, grouped into worker tasks: CHUNK_FILES each, or fewer whose files reach
    CHUNK_DISK_BYTES (a file that cannot be read counts 0: its worker reports it)."""
    group: list[T] = []
    disk_bytes = 0
    for item in items:
        group.append(item)
        try:
            disk_bytes += os.path.getsize(path_of(item))
        except OSError:
            pass
        if len(group) == CHUNK_FILES or disk_bytes >= CHUNK_DISK_BYTES:
            yield group
            group, disk_bytes = [], 0
    if group:
        yield group


class DecodeAhead:
    """(item, decode_file(path_of(item), degradation=degradation_of(item))) for each item, in input
    order, decoded ahead of the consumer (``degradation_of`` None: no item is degraded).

    jobs <= 1 decodes in the consumer's process as it iterates. Otherwise ``jobs`` worker
    processes start decoding groups of files (``task_groups``) as soon as this is made, so a caller can
    make it first and import torch while files decode. A feeder thread keeps ``jobs * ahead``
    chunks running while the decoded audio waiting for the consumer stays under ``buffer_bytes``:
    the workers use the time the consumer spends starting up, and memory stays bounded (files
    over MAX_LOAD_SECONDS are never loaded whole). Iterate once; ``close`` (or leaving a ``with``
    block) stops the workers.
    """

    def __init__(self, items: Iterable[T], path_of, jobs: int = 1, ahead: int = 2,
                 buffer_bytes: int = DECODE_BUFFER_BYTES, degradation_of=None):
        self._items, self._path_of = iter(items), path_of
        self._degradation_of = degradation_of or (lambda item: None)
        self._groups = task_groups(self._items, path_of)  # with workers, items are taken group by group
        self._pool: ProcessPoolExecutor | None = None
        self._pending: deque[tuple[list[T], Future]] = deque()  # submitted chunks, in input order
        self._changed = threading.Condition()
        self._running = 0  # chunks submitted and not finished
        self._waiting_bytes = 0  # decoded audio finished and not yet taken by the consumer
        self._max_running, self._buffer_bytes = jobs * ahead, buffer_bytes
        self._exhausted = self._closed = False
        if jobs > 1:
            if _SHARE_WAVES:  # workers share this process's resource tracker, which unlinks the blocks of a killed run
                resource_tracker.ensure_running()
            self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_start_method(), initializer=_start_worker)
            with self._changed:
                for _ in range(jobs):  # the first submissions start the workers from this thread: fork is safe here
                    self._submit()
            self._feeder = threading.Thread(target=self._feed, name="adfd-decode-feeder", daemon=True)
            self._feeder.start()

    @property
    def finished(self) -> bool:
        """Every item is decoded: the workers have nothing more to do."""
        with self._changed:
            return self._pool is None or (self._exhausted and self._running == 0)

    def _submit(self) -> None:
        """Submit the next chunk, or mark the items exhausted (the caller holds ``_changed``)."""
        group = next(self._groups, None)
        if group is None:
            self._exhausted = True
        else:
            future = self._pool.submit(decode_files, [str(self._path_of(i)) for i in group],
                                       [self._degradation_of(i) for i in group])
            self._running += 1
            self._pending.append((group, future))
            future.add_done_callback(self._chunk_done)
        self._changed.notify_all()

    def _room(self) -> bool:
        return self._closed or (self._running < self._max_running and self._waiting_bytes < self._buffer_bytes)

    def _feed(self) -> None:
        """Feeder thread: submit chunks while there is room, until the items or the run end."""
        with self._changed:
            while not (self._exhausted or self._closed):
                self._changed.wait_for(self._room)
                if not self._closed:
                    self._submit()

    def _chunk_done(self, future: Future) -> None:
        with self._changed:
            self._running -= 1
            if not future.cancelled() and future.exception() is None:
                self._waiting_bytes += future.result().nbytes
            self._changed.notify_all()

    def __iter__(self) -> Iterator[tuple[T, Decoded]]:
        if self._pool is None:
            for item in self._items:
                yield item, decode_file(str(self._path_of(item)), degradation=self._degradation_of(item))
            return
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: self._pending or self._exhausted or self._closed)
                    if not self._pending:
                        return
                    group, future = self._pending.popleft()
                chunk = future.result()
                with self._changed:
                    self._waiting_bytes -= chunk.nbytes
                    self._changed.notify_all()
                yield from zip(group, _take(chunk))
        finally:
            self.close()

    def close(self) -> None:
        """Stop the feeder and the workers, dropping (and unlinking) what the consumer has not taken."""
        if self._pool is None:
            return
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._feeder.join()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
        for _, future in self._pending:
            _discard(future)
        self._pending.clear()

    def __enter__(self) -> "DecodeAhead":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
