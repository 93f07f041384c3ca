"""Decoding through FFmpeg (PyAV) for what libsndfile cannot read: MP3, M4A/AAC, Opus, WMA, webm, ...

``adfd_core.audio`` imports this only for such a file: importing PyAV takes about 50 ms, which every
run over WAV or FLAC would otherwise pay.
"""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np

from adfd_core.audio import AudioError, AudioInfo, to_mono

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
    data = frame.to_ndarray()  # planar: (channels, samples); packed: (1, samples * channels)
    data = data.T if frame.format.is_planar else data.reshape(-1, frame.layout.nb_channels)
    return _pcm_to_float(data)


class PyAVSource:
    """A file FFmpeg opened, decoding its first audio stream."""

    def __init__(self, path: str, container: av.container.InputContainer):
        self._path, self._container = path, container
        self._stream = container.streams.audio[0]
        codec = self._stream.codec_context
        self.info = AudioInfo(path, "pyav", codec.sample_rate, codec.layout.nb_channels, _pyav_duration(container))

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        """(samples,) float32 mono blocks at the native rate, at least ``block_frames`` long but the last."""
        pending: list[np.ndarray] = []
        count = 0
        try:
            for frame in self._container.decode(self._stream):
                if frame.sample_rate != self.info.sample_rate:
                    change = f"{self.info.sample_rate} -> {frame.sample_rate} Hz"
                    raise AudioError(self._path, f"sample rate changes mid-stream ({change})")
                pending.append(to_mono(self._path, _frame_samples(frame)))
                count += frame.samples
                if count >= block_frames:
                    yield np.concatenate(pending)
                    pending, count = [], 0
        except (av.FFmpegError, OSError) as err:
            raise AudioError(self._path, f"corrupt audio data (FFmpeg: {err})") from None
        if pending:
            yield np.concatenate(pending)

    def close(self) -> None:
        self._container.close()


def _pyav_duration(container: av.container.InputContainer) -> float | None:
    """Duration in seconds from the audio stream or the container header; None when neither states it."""
    stream = container.streams.audio[0]
    if stream.duration is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def open_pyav(path: str) -> PyAVSource:
    """The file opened by FFmpeg; AudioError if it has no usable audio stream."""
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError):
        raise AudioError(path, UNDECODABLE) from None
    refusal = _pyav_refusal(container)
    if refusal:
        container.close()
        raise AudioError(path, refusal)
    return PyAVSource(path, container)


def _pyav_refusal(container: av.container.InputContainer) -> str | None:
    """Why FFmpeg's reading of the file is unusable (no audio stream, or one without rate or channels), or None."""
    if not container.streams.audio:
        return "no audio stream"
    codec = container.streams.audio[0].codec_context
    return UNDECODABLE if codec.sample_rate <= 0 or codec.layout.nb_channels <= 0 else None
