"""Decoding ahead in worker processes: order, results, the read-ahead budget, and no shared memory left behind."""

from __future__ import annotations

import errno
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import audio_factory
from adfd_core import prefetch
from adfd_core.prefetch import DecodeAhead, decode_file

SHM = Path("/dev/shm")


@pytest.fixture(autouse=True)
def eight_file_tasks(monkeypatch):
    """Tasks of 8 files at most, so that the files below make 3 tasks."""
    monkeypatch.setattr(prefetch, "CHUNK_FILES", 8)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    """20 files (3 tasks: 12.flac fills one on disk): tones of different lengths, one text file named
    .wav, one long enough to stream."""
    root = tmp_path_factory.mktemp("prefetch")
    paths = [audio_factory.write(root / f"{i:02d}.flac", audio_factory.tone(200 + 20 * i, 0.3 + 0.05 * i)) for i in range(20)]
    (root / "05.wav").write_text("not audio")
    paths[5] = root / "05.wav"
    paths[12] = audio_factory.write(root / "12.flac", audio_factory.noise(prefetch.MAX_LOAD_SECONDS + 1, amp=0.1))
    return paths


def _blocks() -> set[str]:
    return {p.name for p in SHM.iterdir()} if SHM.is_dir() else set()


def _wait_until(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def _same(got, expected) -> None:
    assert (got.content_hash, got.duration_s, got.error, got.must_stream) == (
        expected.content_hash, expected.duration_s, expected.error, expected.must_stream)
    if expected.wave is None:
        assert got.wave is None
    else:
        np.testing.assert_array_equal(got.wave, expected.wave)


def test_task_groups_end_at_a_file_count_or_a_size_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(prefetch, "CHUNK_FILES", 4)
    monkeypatch.setattr(prefetch, "CHUNK_DISK_BYTES", 250)
    paths = []
    for i, size in enumerate([100, 100, 100, 10, 10, 10, 10, 10, 300]):
        paths.append(tmp_path / f"{i}.wav")
        paths[-1].write_bytes(b"x" * size)
    paths.append(tmp_path / "missing.wav")  # counts 0 bytes
    groups = list(prefetch.task_groups(iter(paths), lambda p: p))
    assert [[paths.index(p) for p in group] for group in groups] == [[0, 1, 2], [3, 4, 5, 6], [7, 8], [9]]


@pytest.mark.parametrize("jobs", [1, 2])
def test_items_come_back_in_order_decoded_as_decode_file_does(files, jobs):
    before = _blocks()
    got = list(DecodeAhead(files, lambda p: p, jobs=jobs))
    assert [item for item, _ in got] == files
    for path, dec in got:
        _same(dec, decode_file(str(path)))
    assert got[5][1].error and got[12][1].must_stream
    assert _blocks() - before == set()


@pytest.mark.parametrize("jobs", [1, 2])
def test_workers_degrade_the_items_that_come_with_a_degradation(files, jobs):
    from adfd_core.channel import ChannelAugment, recipe

    chain = ChannelAugment(kinds=("noise", "silence"))
    recipes = {files[i]: recipe(chain, 0, str(i), 1) for i in (0, 3, 5, 12)}
    got = dict(DecodeAhead(files, lambda p: p, jobs=jobs, degradation_of=recipes.get))
    for i in (0, 3):
        plain = decode_file(str(files[i]))
        np.testing.assert_array_equal(got[files[i]].wave, recipes[files[i]].apply(plain.wave))
        assert got[files[i]].content_hash == plain.content_hash  # the file's hash: what the audio came from
        assert got[files[i]].duration_s == len(got[files[i]].wave) / 16_000
    _same(got[files[1]], decode_file(str(files[1])))  # no degradation: as it was
    assert got[files[5]].error == decode_file(str(files[5])).error  # undecodable stays so
    assert "too long to load whole" in got[files[12]].error  # a file to stream cannot be degraded whole


@pytest.mark.skipif(not prefetch._SHARE_WAVES, reason="Linux's /dev/shm")
def test_a_worker_chunk_hands_its_waves_over_in_shared_memory_taken_once(files):
    paths = [str(p) for p in files[:8]]
    chunk = prefetch.decode_files(paths)  # what a worker returns
    assert chunk.block is not None and all(d.wave is None for d in chunk.decoded)
    assert (SHM / chunk.block).stat().st_size == chunk.nbytes
    taken = prefetch._take(chunk)
    assert not (SHM / chunk.block).exists()  # deleted once taken
    for got, path in zip(taken, paths):
        _same(got, decode_file(path))
    writable = taken[0].wave
    writable[:] = 0  # writable (a private mapping), and no wave overlaps another
    for got, path in zip(taken[1:], paths[1:]):
        _same(got, decode_file(path))


@pytest.mark.skipif(not prefetch._SHARE_WAVES, reason="Linux's /dev/shm")
def test_a_worker_chunk_that_fills_shared_memory_carries_its_waves(files, monkeypatch):
    def full(fd, buffers):
        raise OSError(errno.ENOSPC, "No space left on device")

    before = _blocks()
    monkeypatch.setattr(prefetch.os, "writev", full)
    paths = [str(p) for p in files[:8]]
    chunk = prefetch.decode_files(paths)
    assert chunk.block is None and _blocks() - before == set()
    for got, path in zip(prefetch._take(chunk), paths):
        _same(got, decode_file(path))


def test_a_worker_chunk_carries_its_waves_when_shared_memory_is_short(files, monkeypatch):
    monkeypatch.setattr(prefetch, "_shared_memory_room", lambda nbytes: False)
    paths = [str(p) for p in files[:8]]
    chunk = prefetch.decode_files(paths)
    assert chunk.block is None
    for got, path in zip(prefetch._take(chunk), paths):
        _same(got, decode_file(path))


def test_workers_read_ahead_up_to_the_buffer_and_no_further(files):
    ahead = DecodeAhead(files, lambda p: p, jobs=2)  # the default buffer holds all of these
    assert _wait_until(lambda: ahead.finished), "everything should be decoded before the consumer asks"
    assert len(list(ahead)) == len(files)

    held = DecodeAhead(files, lambda p: p, jobs=2, ahead=1, buffer_bytes=1)
    time.sleep(1.0)  # the workers stop once a decoded chunk waits for the consumer
    assert not held.finished
    assert len(list(held)) == len(files) and held.finished


def test_closing_part_way_unlinks_what_was_decoded_for_nobody(files):
    before = _blocks()
    ahead = DecodeAhead(files, lambda p: p, jobs=2)
    assert _wait_until(lambda: ahead.finished)
    taken = []
    for item, _ in ahead:
        taken.append(item)
        if len(taken) == 3:
            break
    ahead.close()
    assert taken == files[:3]
    assert _blocks() - before == set()


@pytest.mark.skipif(not prefetch._SHARE_WAVES, reason="Linux's /dev/shm")
def test_a_killed_consumer_leaves_no_workers_and_no_files_behind(files):
    before = _blocks()
    consumer = f"""
import time
from adfd_core.prefetch import DecodeAhead
ahead = DecodeAhead({[str(p) for p in files]!r}, lambda p: p, jobs=2)
while not ahead.finished:
    time.sleep(0.01)
print("decoded", flush=True)
time.sleep(120)
"""
    proc = subprocess.Popen([sys.executable, "-c", consumer], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "decoded"
        assert _blocks() - before, "the waves wait in /dev/shm for the consumer"
    finally:
        proc.kill()  # as kill -9: nothing of the consumer's runs
        proc.wait()
    # its workers notice, exit, and the resource tracker they shared deletes what they parked
    assert _wait_until(lambda: _blocks() - before == set(), seconds=15)
