"""Decoding through FFmpeg (PyAV) for what libsndfile cannot read: MP3, M4A/AAC, Opus, WMA, webm, ...

``adfd_core.audio`` imports this only for such a file: importing PyAV takes about 50 ms, which every
run over WAV or FLAC would otherwise pay.
"""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np

from adfd_core.audio import SHORTFALL_TOLERANCE, AudioError, AudioInfo, check_plausible, to_mono, warn_damaged

UNDECODABLE = "not a decodable audio file (neither libsndfile nor FFmpeg can read it)"


def _pcm_to_float(samples: np.ndarray) -> np.ndarray:
    """Integer or float PCM of any depth -> float32 in [-1, 1] (unsigned integers are centred first)."""
    if samples.dtype.kind == "f":
        return samples.astype(np.float32, copy=False)
    full_scale = 2.0 ** (8 * samples.dtype.itemsize - 1)
    offset = full_scale if samples.dtype.kind == "u" else 0.0
    return ((samples - offset) / full_scale).astype(np.float32)


def _frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """A decoded PyAV frame, packed or planar, as (samples, channels) float32."""
    data = _s64_ndarray(frame) if frame.format.name in ("s64", "s64p") else frame.to_ndarray()
    # planar: (channels, samples); packed: (1, samples * channels)
    data = data.T if frame.format.is_planar else data.reshape(-1, frame.layout.nb_channels)
    return _pcm_to_float(data)


def _s64_ndarray(frame: av.AudioFrame) -> np.ndarray:
    """64-bit integer PCM, which PyAV's ``to_ndarray`` refuses, as to_ndarray would give it: (planes, values) int64."""
    per_plane = frame.samples * (1 if frame.format.is_planar else frame.layout.nb_channels)
    return np.stack([np.frombuffer(plane, dtype=np.int64, count=per_plane) for plane in frame.planes])


class PyAVSource:
    """A file FFmpeg opened, decoding its first audio stream."""

    def __init__(self, path: str, container: av.container.InputContainer):
        self._path, self._container = path, container
        self._stream = container.streams.audio[0]
        codec = self._stream.codec_context
        self.info = AudioInfo(path, "pyav", codec.sample_rate, codec.layout.nb_channels, _pyav_duration(container))
        self._stated_s = _stream_duration(self._stream)

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        """(samples,) float32 mono blocks at the native rate, at least ``block_frames`` long but the last."""
        pending: list[np.ndarray] = []
        count = decoded = 0
        try:
            for frame in self._container.decode(self._stream):
                if frame.sample_rate != self.info.sample_rate:
                    change = f"{self.info.sample_rate} -> {frame.sample_rate} Hz"
                    raise AudioError(self._path, f"sample rate changes mid-stream ({change})")
                pending.append(to_mono(self._path, _frame_samples(frame)))
                count += frame.samples
                decoded += frame.samples
                if count >= block_frames:
                    yield np.concatenate(pending)
                    pending, count = [], 0
        except (av.FFmpegError, OSError) as err:
            raise AudioError(self._path, f"corrupt audio data (FFmpeg: {err})") from None
        if pending:
            yield np.concatenate(pending)
        self._check_complete(decoded / self.info.sample_rate)

    def _check_complete(self, decoded_s: float) -> None:
        """An AudioWarning when the stream gave clearly less audio than its header states (a cut MP3)."""
        if self._stated_s is None or not decoded_s:
            return
        seconds, fraction = SHORTFALL_TOLERANCE
        if decoded_s < self._stated_s - max(seconds, fraction * self._stated_s):
            warn_damaged(self._path, f"the stream ended early: {decoded_s:.2f} s decoded of the {self._stated_s:.2f} s "
                                     "its header states (cut short?)")

    def close(self) -> None:
        self._container.close()


def _stream_duration(stream: av.audio.AudioStream) -> float | None:
    """The audio stream's duration in seconds as its header states it, or None."""
    return float(stream.duration * stream.time_base) if stream.duration is not None and stream.time_base else None


def _pyav_duration(container: av.container.InputContainer) -> float | None:
    """Duration in seconds from the audio stream or the container header; None when neither states it."""
    stated = _stream_duration(container.streams.audio[0])
    if stated is not None:
        return stated
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def open_pyav(path: str, size: int) -> PyAVSource:
    """The file (of ``size`` bytes) opened by FFmpeg; AudioError if it has no usable audio stream."""
    try:
        # Tags are not needed: undecodable bytes in them (a corrupt M4A) must not stop the audio being read.
        container = av.open(path, metadata_errors="replace")
    except (av.FFmpegError, OSError):
        raise AudioError(path, UNDECODABLE) from None
    try:
        refusal = _pyav_refusal(path, container, size)
    except AudioError:
        container.close()
        raise
    if refusal:
        container.close()
        raise AudioError(path, refusal)
    return PyAVSource(path, container)


def _pyav_refusal(path: str, container: av.container.InputContainer, size: int) -> str | None:
    """Why FFmpeg's reading of the file is unusable (no audio stream, no decoder for it, no rate or
    channels), or None; AudioError for an implausible rate or duration."""
    if not container.streams.audio:
        return "no audio stream"
    stream = container.streams.audio[0]
    codec = stream.codec_context
    if codec is None:  # FFmpeg found an audio stream but no decoder for its codec: a corrupt header, often
        return "FFmpeg has no decoder for its audio stream's codec (corrupt header?)"
    if codec.sample_rate <= 0 or codec.layout.nb_channels <= 0:
        return UNDECODABLE
    duration = _pyav_duration(container)
    frames = None if duration is None else round(duration * codec.sample_rate)
    check_plausible(path, codec.sample_rate, frames, size)
    return None
