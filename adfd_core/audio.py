"""Decode any audio file to mono float32 at 16 kHz, whole or block by block, and cut it into segments.

soundfile (libsndfile: WAV, FLAC, OGG Vorbis, AIFF, ...) is tried first; whatever it cannot open, and
MP3 and Opus, go to PyAV (FFmpeg: M4A/AAC, WMA, webm, ...). Channels are averaged, then soxr resamples.
Every problem with a file is an ``AudioError`` naming it, with a one-line reason; a file that decodes
but looks damaged (an Ogg stream cut short, less audio than its header states, libmpg123's notes) gives
an ``AudioWarning`` through Python's ``warnings``. Imports no torch.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
import soxr

from adfd_core.errors import AdfdError

if TYPE_CHECKING:
    from adfd_core.audio_ffmpeg import PyAVSource

TARGET_SR = 16_000  # Hz
RESAMPLE_QUALITY = "VHQ"  # soxr's very-high-quality preset
LOAD_BLOCK_FRAMES = 1 << 20  # native-rate frames decoded per step when loading a whole file
READ_SAMPLES = 1 << 22  # samples (frames x channels) libsndfile reads at once: 16 MB of float32 whatever the channel count
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000  # Hz; a header outside this range is corrupt (1-7 Hz made hours of audio)
# Native-rate frames a file may decode to per byte it holds: FLAC's densest frame (65,535 samples of digital
# silence in about 16 bytes) reaches 4,096; the densest real files measured (FLAC of silence) reach 340.
MAX_FRAMES_PER_BYTE = 4_096
SHORTFALL_TOLERANCE = (0.25, 0.02)  # s, fraction: decoded audio this much shorter than the header states is a cut stream
HASH_CHUNK_BYTES = 1 << 20  # bytes read per step when hashing
AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".mp4", ".wma",
     ".aif", ".aiff", ".au", ".caf", ".webm", ".mka", ".amr"}
)

# libsndfile opens these (format or subtype names) but FFmpeg decodes them better: its Opus decoder returns
# samples that depend on the read size, its MP3 decoder logs spurious errors and only estimates the length.
_LEFT_TO_FFMPEG = frozenset({"MP3", "OPUS"})
# Formats whose header states the audio data size: (magic, byte order, data chunk id).
_CHUNKED_HEADERS = {b"RIFF": ("<", b"data"), b"RIFX": (">", b"data"), b"FORM": (">", b"SSND")}
_UNKNOWN_CHUNK_SIZE = 0xFFFFFFFF  # streamed WAVs write this when the length was not known


class _FileAndReason:
    """A message naming a file and why, on one line: ``str(x) == f"{path}: {reason}"``; both kept as attributes."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(os.fsdecode(path), " ".join(reason.split()))
        self.path, self.reason = self.args

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class AudioWarning(_FileAndReason, UserWarning):
    """A file that decodes but looks damaged."""


def warn_damaged(path: str, reason: str) -> None:
    """Give an AudioWarning: ``path`` decodes but looks damaged, for ``reason``."""
    warnings.warn(AudioWarning(path, reason), stacklevel=2)


@contextmanager
def collected_warnings() -> Iterator[list[AudioWarning]]:
    """A list that holds, once the block ends (even by an exception), every AudioWarning given meanwhile,
    collected instead of shown; other warnings pass on as usual."""
    found: list[AudioWarning] = []
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AudioWarning)
            yield found
    finally:
        for w in caught:
            if isinstance(w.message, AudioWarning):
                found.append(w.message)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


class AudioError(_FileAndReason, AdfdError):
    """Bad or unreadable audio."""


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file, without decoding it.

    backend: "soundfile" or "pyav"; sample_rate: native rate in Hz; duration_s: None when unknown.
    """

    path: str
    backend: str
    sample_rate: int
    channels: int
    duration_s: float | None


def probe(path: str | os.PathLike) -> AudioInfo:
    """Open the file and read its header only."""
    with _open(path) as source:
        return source.info


def load(path: str | os.PathLike, sr: int = TARGET_SR) -> np.ndarray:
    """Decode the whole file: (samples,) float32 mono at ``sr`` Hz."""
    _check_positive(sr=sr)
    with _open(path) as source:
        return _decode_all(source, sr)


def load_within(path: str | os.PathLike, max_seconds: float, sr: int = TARGET_SR) -> tuple[AudioInfo, np.ndarray | None]:
    """The header, and the whole file decoded as ``load`` decodes it, opening the file once; None
    instead of the audio when the header states a duration over ``max_seconds``, or none, or when
    decoding runs past twice ``max_seconds`` whatever the header said (stream it)."""
    _check_positive(sr=sr)
    with _open(path) as source:
        duration = source.info.duration_s
        if duration is None or duration > max_seconds:
            return source.info, None
        return source.info, _decode_all(source, sr, max_frames=round(2 * max_seconds * source.info.sample_rate))


def _decode_all(source: _SoundfileSource | PyAVSource, sr: int, max_frames: int | None = None) -> np.ndarray | None:
    """Every sample of an opened source: (samples,) float32 mono at ``sr`` Hz; None once more than
    ``max_frames`` native-rate frames have come (the rest is not decoded)."""
    blocks, count = [], 0
    for block in _mono_blocks(source, LOAD_BLOCK_FRAMES):
        blocks.append(block)
        count += len(block)
        if max_frames is not None and count > max_frames:
            return None
    wave = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)  # copying one block cost 15 % of decoding
    if source.info.sample_rate != sr:
        wave = soxr.resample(wave, source.info.sample_rate, sr, quality=RESAMPLE_QUALITY).astype(np.float32, copy=False)
    if not len(wave):
        raise _too_short(source.info, sr)
    return wave


def _too_short(info: AudioInfo, sr: int) -> AudioError:
    return AudioError(info.path, f"too short: less than one sample at {sr} Hz (native rate {info.sample_rate} Hz)")


def stream(path: str | os.PathLike, sr: int = TARGET_SR, block_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Decode block by block: consecutive (samples,) float32 mono blocks at ``sr`` Hz, about ``block_seconds`` long.

    Memory stays bounded by the block size; the blocks concatenated equal ``load(path, sr)``.
    """
    _check_positive(sr=sr, block_seconds=block_seconds)
    with _open(path) as source:
        native = source.info.sample_rate
        blocks = _mono_blocks(source, max(1, round(block_seconds * native)))
        if native == sr:
            yield from blocks
            return
        resampler = soxr.ResampleStream(native, sr, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        given = 0
        for block in blocks:
            out = resampler.resample_chunk(block)
            if len(out):
                given += len(out)
                yield out
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if not given + len(tail):
            raise _too_short(source.info, sr)
        if len(tail):
            yield tail


class Segmenter:
    """Cuts a stream of blocks into fixed-length segments by the rules of ``iter_segments``.

    Holds two segments' worth of samples plus the current block. ``push`` each block, then call ``finish`` once.
    """

    def __init__(self, segment_samples: int):
        _check_positive(segment_samples=segment_samples)
        self.segment_samples = segment_samples
        self._rest = np.zeros(0, dtype=np.float32)  # samples after the last full segment, fewer than one segment
        self._last: np.ndarray | None = None  # the last full segment given out
        self._total = 0

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        """Take a (samples,) block; return the full (segment_samples,) segments it completes."""
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 1:
            raise ValueError(f"blocks must be 1-D, got shape {block.shape}")
        self._total += len(block)
        n = self.segment_samples
        buffer = np.concatenate([self._rest, block])
        full = len(buffer) // n
        segments = [buffer[i * n : (i + 1) * n].copy() for i in range(full)]
        if segments:
            self._last = segments[-1].copy()
        self._rest = buffer[full * n :].copy()
        return segments

    def finish(self) -> list[np.ndarray]:
        """The closing segment: the signal tiled if shorter than a segment, else its last samples if a tail remains."""
        if self._total == 0:
            raise ValueError("cannot segment an empty signal")
        n = self.segment_samples
        if self._last is None:
            return [np.resize(self._rest, n)]
        if len(self._rest) == 0:
            return []
        return [np.concatenate([self._last[len(self._rest) :], self._rest])]


def iter_segments(blocks: Iterable[np.ndarray], segment_samples: int) -> Iterator[np.ndarray]:
    """Fixed-length (segment_samples,) float32 segments of the signal the (samples,) blocks make up, in order.

    A signal shorter than one segment gives one segment: the signal repeated to fill it. Otherwise
    non-overlapping segments from sample 0, then, if samples remain, one segment of the last
    ``segment_samples`` samples. Nothing is zero-padded; an empty signal is a ValueError.
    """
    segmenter = Segmenter(segment_samples)
    for block in blocks:
        yield from segmenter.push(block)
    yield from segmenter.finish()


def segments(wave: np.ndarray, segment_samples: int) -> np.ndarray:
    """Every segment of an in-memory (samples,) signal at once, cut as ``iter_segments`` cuts it:
    (n_segments, segment_samples) float32, without the copies a stream of blocks needs."""
    return segment_batch([wave], segment_samples)[0]


def segment_batch(waves: Sequence[np.ndarray], segment_samples: int) -> tuple[np.ndarray, list[int]]:
    """The segments of several (samples,) signals, cut as ``segments`` cuts each, in one array:
    (total segments, segment_samples) float32, and how many segments each signal gave."""
    waves = [np.asarray(w, dtype=np.float32) for w in waves]
    if any(len(w) == 0 for w in waves):
        raise ValueError("cannot segment an empty signal")
    spans = [segment_spans(len(w), segment_samples) for w in waves]
    out = np.empty((sum(len(s) for s in spans), segment_samples), dtype=np.float32)
    row = 0
    for wave, wave_spans in zip(waves, spans):
        if len(wave) < segment_samples:
            out[row] = np.resize(wave, segment_samples)  # short audio padded by repetition
            row += 1
            continue
        for a, b in wave_spans:
            out[row] = wave[a:b]
            row += 1
    return out, [len(s) for s in spans]


def segment_count(n_samples: int, segment_samples: int) -> int:
    """How many segments ``iter_segments`` gives for a signal of ``n_samples`` samples."""
    _check_positive(n_samples=n_samples, segment_samples=segment_samples)
    return -(-n_samples // segment_samples)


def segment_spans(n_samples: int, segment_samples: int) -> list[tuple[int, int]]:
    """(start, end) sample of each segment ``iter_segments`` gives; a short signal's one segment spans it all."""
    count = segment_count(n_samples, segment_samples)
    if n_samples <= segment_samples:
        return [(0, n_samples)]
    starts = [i * segment_samples for i in range(n_samples // segment_samples)]
    if count > len(starts):
        starts.append(n_samples - segment_samples)
    return [(s, s + segment_samples) for s in starts]


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the file's bytes, read in chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as err:
        raise _os_error(path, err) from None
    return digest.hexdigest()


def _check_positive(**values: float) -> None:
    """Raise ValueError for a non-positive argument (a caller's bug, not bad audio)."""
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def _os_error(path: str | os.PathLike, err: OSError) -> AudioError:
    """An AudioError saying why the OS would not let us read the file."""
    if isinstance(err, FileNotFoundError):
        return AudioError(path, "no such file")
    if isinstance(err, IsADirectoryError):
        return AudioError(path, "is a directory, not an audio file")
    if isinstance(err, PermissionError) and os.path.isdir(path):
        return AudioError(path, "a folder that cannot be read (permission denied): the audio in it is skipped")
    if isinstance(err, PermissionError):
        return AudioError(path, "not readable (permission denied)")
    return AudioError(path, f"cannot read the file ({err.strerror or err})")


_NOT_REGULAR = ((stat.S_ISDIR, "is a directory, not an audio file"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _check_readable(path: str) -> int:
    """The size in bytes of ``path``; AudioError unless it is a readable, non-empty regular file.
    Opened without blocking, so a named pipe is refused instead of waiting for a writer forever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise _os_error(path, err) from None
    try:
        mode, size = (st := os.fstat(fd)).st_mode, st.st_size
    finally:
        os.close(fd)
    if not stat.S_ISREG(mode):
        what = next((text for test, text in _NOT_REGULAR if test(mode)), "not a regular file")
        raise AudioError(path, what if stat.S_ISDIR(mode) else f"{what}, not a regular file: skipped")
    if not size:
        raise AudioError(path, "empty file (0 bytes)")
    return size


def to_mono(path: str, frames: np.ndarray) -> np.ndarray:
    """(samples, channels) float -> (samples,) float32 channel mean; AudioError on NaN or Inf."""
    if not np.isfinite(frames).all():
        raise AudioError(path, "contains NaN or Inf samples")
    return frames[:, 0] if frames.shape[1] == 1 else frames.mean(axis=1, dtype=np.float32)


def _declared_data_end(path: str) -> int | None:
    """Byte offset where a WAV's 'data' (or AIFF's 'SSND') chunk says the audio ends; None when unstated."""
    with open(path, "rb") as f:
        magic = f.read(12)[:4]
        if magic not in _CHUNKED_HEADERS:
            return None
        order, wanted = _CHUNKED_HEADERS[magic]
        pos = 12
        while len(header := f.read(8)) == 8:
            (size,) = struct.unpack(order + "I", header[4:])
            if header[:4] == wanted:
                return None if size == _UNKNOWN_CHUNK_SIZE else pos + 8 + size
            pos += 8 + size + (size & 1)  # chunks are padded to an even length
            f.seek(pos)
    return None


class _SoundfileSource:
    """A file libsndfile opened."""

    def __init__(self, path: str, handle: sf.SoundFile):
        self._path, self._handle = path, handle
        duration = handle.frames / handle.samplerate
        self.info = AudioInfo(path, "soundfile", handle.samplerate, handle.channels, duration)
        self._mpeg = handle.subtype.startswith("MPEG_LAYER")  # decoded by libmpg123, which prints to fd 2

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        """(samples,) float32 mono blocks at the native rate, ``block_frames`` long but the last.

        A read that comes up short of the declared length fails in libsndfile, so a cut FLAC is reported here.
        Reads take at most READ_SAMPLES samples, so memory stays bounded for any channel count.
        """
        per_read = max(1, min(block_frames, READ_SAMPLES // self.info.channels))
        pending: list[np.ndarray] = []
        count = 0
        while True:
            frames = self._read(per_read)
            if len(frames):
                pending.append(to_mono(self._path, frames))
                count += len(frames)
            if count >= block_frames or (pending and not len(frames)):
                block = pending[0] if len(pending) == 1 else np.concatenate(pending)
                yield block[:block_frames]
                pending, count = ([block[block_frames:]], count - block_frames) if count > block_frames else ([], 0)
            if not len(frames) and not pending:
                return

    def _read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` (frames, channels) float32; what libmpg123 prints meanwhile becomes a warning."""
        try:
            if not self._mpeg:
                return self._handle.read(frames, dtype="float32", always_2d=True)
            with _native_stderr(self._path):
                return self._handle.read(frames, dtype="float32", always_2d=True)
        except (sf.SoundFileError, OSError) as err:
            raise AudioError(self._path, f"truncated or corrupt audio data (libsndfile: {err})") from None

    def close(self) -> None:
        self._handle.close()


_capture: tuple[int, int] | None = None  # (process id, descriptor of its capture file)


def _capture_fd() -> int:
    """This process's file that catches fd 2, made once (a forked worker makes its own)."""
    global _capture
    if _capture is None or _capture[0] != os.getpid():
        with tempfile.TemporaryFile() as file:  # unlinked at once: it lives as long as the descriptor
            _capture = (os.getpid(), os.dup(file.fileno()))
    return _capture[1]


@contextmanager
def _native_stderr(path: str) -> Iterator[None]:
    """Catch what C libraries (libsndfile's libmpg123 above all) print to file descriptor 2 meanwhile and
    give it as one AudioWarning about ``path``, instead of raw lines on stderr that name no file."""
    sys.stderr.flush()
    capture, saved = _capture_fd(), os.dup(2)
    os.dup2(capture, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        size = os.lseek(capture, 0, os.SEEK_CUR)
        if size:  # a failed open printed too: the file may yet open with FFmpeg
            lines = [line.strip() for line in os.pread(capture, size, 0).decode(errors="replace").splitlines()]
            os.ftruncate(capture, 0)
            os.lseek(capture, 0, os.SEEK_SET)
            _warn_printed(path, [line for line in lines if line])


def _warn_printed(path: str, lines: list[str]) -> None:
    if lines:
        more = f" (and {len(lines) - 3} more lines)" if len(lines) > 3 else ""
        warn_damaged(path, f"its decoder printed: {' | '.join(lines[:3])}{more}")


def _open_soundfile(path: str, size: int) -> _SoundfileSource | None:
    """The file opened by libsndfile; None if it is left to FFmpeg; AudioError for a truncated or implausible header."""
    try:
        with _native_stderr(path):  # libsndfile hands anything that looks like MP3 to libmpg123, which prints
            handle = sf.SoundFile(os.fsencode(path))  # bytes: soundfile cannot encode a name that is not UTF-8
    except (sf.SoundFileError, OSError):
        return None
    if handle.format in _LEFT_TO_FFMPEG or handle.subtype in _LEFT_TO_FFMPEG:
        handle.close()
        return None
    try:
        _check_data_present(path, handle.format)
        check_plausible(path, handle.samplerate, handle.frames, size)
    except AudioError:
        handle.close()
        raise
    return _SoundfileSource(path, handle)


def check_plausible(path: str, sample_rate: int, frames: int | None, size: int) -> None:
    """AudioError for a sample rate outside MIN_SAMPLE_RATE-MAX_SAMPLE_RATE, or for more frames (stated by
    the header, or decoded so far) than a file of ``size`` bytes can hold."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(path, f"sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz (corrupt header?)")
    if frames is not None and frames > MAX_FRAMES_PER_BYTE * size:
        hours = frames / sample_rate / 3600
        raise AudioError(path, f"{hours:.1f} h of audio at {sample_rate} Hz is far more than its {size} bytes can hold (corrupt header?)")


def _check_data_present(path: str, sf_format: str) -> None:
    """AudioError if a WAV/AIFF header declares more audio data than the file holds (libsndfile reads it short)."""
    if sf_format not in {"WAV", "WAVEX", "AIFF"}:
        return
    try:
        end, size = _declared_data_end(path), os.path.getsize(path)
    except OSError as err:
        raise _os_error(path, err) from None
    if end is not None and end > size:
        raise AudioError(path, f"truncated: its header declares {end} bytes of audio data, but the file has {size}")


_OGG_PAGE_HEADER_BYTES = 27  # "OggS", version, flags, granule, serial, sequence, CRC, segment count
_OGG_END_OF_STREAM = 0x04  # flag of a stream's last page
_OGG_MAX_PAGE = _OGG_PAGE_HEADER_BYTES + 255 + 255 * 255  # bytes


def _ogg_cut_short(path: str, size: int) -> bool:
    """Whether the file is Ogg and ends without a whole end-of-stream page (cut short). Reads its last page only."""
    with open(path, "rb") as f:
        if f.read(4) != b"OggS":
            return False
        f.seek(max(0, size - _OGG_MAX_PAGE))
        tail = f.read()
    start = tail.rfind(b"OggS\x00")
    if start < 0 or len(tail) - start < _OGG_PAGE_HEADER_BYTES:
        return True
    flags, segments = tail[start + 5], tail[start + 26]
    lacing = tail[start + _OGG_PAGE_HEADER_BYTES : start + _OGG_PAGE_HEADER_BYTES + segments]
    page_end = start + _OGG_PAGE_HEADER_BYTES + segments + sum(lacing)
    return len(lacing) < segments or page_end > len(tail) or not flags & _OGG_END_OF_STREAM


@contextmanager
def _open(path: str | os.PathLike) -> Iterator[_SoundfileSource | PyAVSource]:
    """Open with libsndfile, else FFmpeg; close on exit."""
    name = os.fsdecode(path)
    size = _check_readable(name)
    source = _open_soundfile(name, size)
    if source is None:
        from adfd_core.audio_ffmpeg import open_pyav  # PyAV takes 50 ms to import; WAV and FLAC never need it

        source = open_pyav(name, size)
    try:
        if _ogg_cut_short(name, size):
            warn_damaged(name, "the stream ended early: the Ogg file ends without its end-of-stream page (cut short?)")
        yield source
    finally:
        source.close()


def _mono_blocks(source: _SoundfileSource | PyAVSource, block_frames: int) -> Iterator[np.ndarray]:
    """The source's native-rate mono blocks; AudioError at the end if there were no samples at all, and as
    soon as there are more than the file's size can hold."""
    total = 0
    size = os.path.getsize(source.info.path)
    for block in source.blocks(block_frames):
        total += len(block)
        check_plausible(source.info.path, source.info.sample_rate, total, size)
        yield block
    if total == 0:
        raise AudioError(source.info.path, "no audio: decodes to zero samples")
