"""Waveform augmentation with pseudo-labels: codec compression, speed change and crops.

The feature-decomposition model's content stream learns to tell how a crop was compressed (one
of the 10 ``CODECS``) and sped up (one of the 16 ``SPEEDS``). ``compress`` really encodes with
FFmpeg (PyAV) into an in-memory container and decodes it back, time-aligned with the input;
``change_speed`` resamples with a Kaiser-windowed sinc. Waves are (samples,) float32 numpy arrays,
so this runs in DataLoader worker processes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np
import soxr

from adfd_core.audio import TARGET_SR
from adfd_core.errors import AdfdError

CODEC_BITRATES_KBPS = (16, 32, 64)
# codec -> (FFmpeg encoder, container whose demuxer drops the encoder's priming samples on decoding:
# an MP4 edit list, the LAME header of an MP3, the pre-skip of an Ogg Opus stream)
_ENCODERS = {"aac": ("aac", "mp4"), "opus": ("libopus", "ogg"), "mp3": ("libmp3lame", "mp3")}
_FLOAT_FORMATS = ("flt", "fltp")  # mono float32 input formats an encoder may take (same memory layout for one channel)


class AugmentError(AdfdError):
    """An augmentation this FFmpeg cannot do (a missing encoder), in one line."""


@dataclass(frozen=True)
class Compression:
    """One compression class: ``codec`` "none" (kbps 0) or one of aac, opus, mp3 at ``kbps`` kbit/s."""

    codec: str
    kbps: int

    @property
    def name(self) -> str:
        """"none", or e.g. "aac-16k"."""
        return self.codec if self.codec == "none" else f"{self.codec}-{self.kbps}k"

    def apply(self, wave: np.ndarray, sample_rate: int = TARGET_SR) -> np.ndarray:
        """(S,) float32 -> (S,) float32: ``wave`` itself for "none", else its compressed copy."""
        return wave if self.codec == "none" else compress(wave, self.codec, self.kbps, sample_rate)


CODECS = (Compression("none", 0), *(Compression(c, k) for c in _ENCODERS for k in CODEC_BITRATES_KBPS))
SPEEDS = tuple(float(f) for f in np.round(np.linspace(0.5, 2.0, 16), 10))  # speed factors: 0.5, 0.6, ..., 2.0
NATURAL_SPEED = SPEEDS.index(1.0)  # 5


def compress(wave: np.ndarray, codec: str, kbps: int, sample_rate: int = TARGET_SR) -> np.ndarray:
    """Encode ``wave`` (S,) with ``codec`` ("aac", "opus" or "mp3") at ``kbps`` kbit/s and decode it back.

    The result is (S,) float32 at ``sample_rate``, aligned with the input sample for sample: the
    encoder's priming is dropped and the tail padding cut (a short decode is zero-padded). A rate the
    encoder does not take (Opus: 8, 12, 16, 24, 48 kHz) is resampled to one it does, and back.
    """
    if codec not in _ENCODERS:
        raise ValueError(f"unknown codec {codec!r}; choose from {', '.join(_ENCODERS)}")
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1 or not len(wave):
        raise ValueError(f"compress takes a non-empty (samples,) wave, got shape {wave.shape}")
    encoder, container = _ENCODERS[codec]
    spec = _encoder(encoder, codec)
    rate = _encoder_rate(spec, sample_rate)
    native = wave if rate == sample_rate else soxr.resample(wave, sample_rate, rate).astype(np.float32)
    fmt = next(f.name for f in spec.audio_formats if f.name in _FLOAT_FORMATS)
    try:
        data = _encode(native, encoder, container, fmt, rate, kbps)
        decoded, decoded_rate = _decode(data)
    except av.FFmpegError as err:
        raise AugmentError(f"{codec} at {kbps} kbps, {rate} Hz: FFmpeg failed ({err})") from None
    if decoded_rate != sample_rate:
        decoded = soxr.resample(decoded, decoded_rate, sample_rate).astype(np.float32)
    out = np.zeros(len(wave), dtype=np.float32)
    n = min(len(wave), len(decoded))
    out[:n] = decoded[:n]
    return out


def change_speed(wave: np.ndarray, factor: float, sample_rate: int = TARGET_SR) -> np.ndarray:
    """(N,) float32 -> (ceil(N / factor),) float32 played ``factor`` times faster: duration / factor, pitch * factor.

    Resamples from round(sample_rate * factor) Hz to sample_rate Hz with torchaudio's Kaiser-windowed sinc.
    """
    import torch
    import torchaudio.functional as AF

    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    out = AF.resample(x, round(sample_rate * factor), sample_rate, resampling_method="sinc_interp_kaiser")
    return out.numpy()


def random_crop(wave: np.ndarray, crop_samples: int, rng: np.random.Generator) -> np.ndarray:
    """A (crop_samples,) window of (N,) ``wave`` at a uniformly drawn start; a short wave is tiled to fill it."""
    if len(wave) <= crop_samples:
        return _tiled(wave, crop_samples)
    start = int(rng.integers(len(wave) - crop_samples + 1))
    return wave[start : start + crop_samples]


def middle_crop(wave: np.ndarray, crop_samples: int) -> np.ndarray:
    """The middle (crop_samples,) window of (N,) ``wave``; a short wave is tiled to fill it."""
    if len(wave) <= crop_samples:
        return _tiled(wave, crop_samples)
    start = (len(wave) - crop_samples) // 2
    return wave[start : start + crop_samples]


class PseudoLabeledCrops:
    """Random crops with their compression and speed pseudo-labels, for training.

    A call draws, from ``rng`` in this order: a speed index (uniform over SPEEDS; NATURAL_SPEED, no
    draw, when ``speed`` is off), a source window long enough to give ``crop_samples`` at that speed
    (``random_crop``), then a compression index (uniform over CODECS; 0, no draw, when
    ``compression`` is off). The window is sped up, cut to ``crop_samples`` and compressed.
    """

    def __init__(self, crop_samples: int, compression: bool = True, speed: bool = True, sample_rate: int = TARGET_SR):
        if crop_samples <= 0:
            raise ValueError(f"crop_samples must be positive, got {crop_samples}")
        self.crop_samples, self.compression, self.speed, self.sample_rate = crop_samples, compression, speed, sample_rate

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
        """(N,) float32 wave -> ((crop_samples,) float32 crop, codec index into CODECS, speed index into SPEEDS)."""
        speed_index = int(rng.integers(len(SPEEDS))) if self.speed else NATURAL_SPEED
        factor = SPEEDS[speed_index]
        crop = random_crop(wave, self.source_samples(factor), rng)
        if speed_index != NATURAL_SPEED:
            crop = change_speed(crop, factor, self.sample_rate)[: self.crop_samples]
        codec_index = int(rng.integers(len(CODECS))) if self.compression else 0
        crop = CODECS[codec_index].apply(crop, self.sample_rate)
        return np.array(crop, dtype=np.float32), codec_index, speed_index

    def source_samples(self, factor: float) -> int:
        """Samples of source audio that ``change_speed`` turns into at least ``crop_samples``: about crop * factor."""
        source_rate = round(self.sample_rate * factor)
        return -(-self.crop_samples * source_rate // self.sample_rate)


def _tiled(wave: np.ndarray, n: int) -> np.ndarray:
    """(n,) ``wave`` repeated from its start (the padding of ``audio.iter_segments``) or cut."""
    if not len(wave):
        raise ValueError("cannot crop an empty wave")
    return np.resize(wave, n)


def _encoder(encoder: str, codec: str) -> av.codec.Codec:
    """FFmpeg's encoder called ``encoder``; AugmentError when this FFmpeg was built without it."""
    try:
        return av.codec.Codec(encoder, "w")
    except av.codec.codec.UnknownCodecError:
        raise AugmentError(
            f"{codec} compression needs FFmpeg's {encoder!r} encoder, which the FFmpeg inside PyAV lacks"
        ) from None


def _encoder_rate(spec: av.codec.Codec, sample_rate: int) -> int:
    """``sample_rate`` if the encoder takes it, else the lowest rate it takes above it (else its highest)."""
    rates = spec.audio_rates
    if not rates or sample_rate in rates:
        return sample_rate
    above = [r for r in rates if r > sample_rate]
    return min(above) if above else max(rates)


def _encode(wave: np.ndarray, encoder: str, container: str, fmt: str, rate: int, kbps: int) -> bytes:
    """(S,) float32 at ``rate`` Hz -> the bytes of a ``container`` file holding it encoded by ``encoder``."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(encoder, rate=rate)
        stream.bit_rate = kbps * 1000
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(wave[None, :], format=fmt, layout="mono")
        frame.sample_rate = rate
        frame.pts = 0  # the muxer records the priming as negative time, which the demuxer skips
        for packet in (*stream.encode(frame), *stream.encode(None)):
            out.mux(packet)
    return buffer.getvalue()


def _decode(data: bytes) -> tuple[np.ndarray, int]:
    """A one-stream mono container's bytes -> ((samples,) float32, sample rate in Hz)."""
    with av.open(io.BytesIO(data), "r") as source:
        stream = source.streams.audio[0]
        frames = [_float_samples(frame.to_ndarray().reshape(-1)) for frame in source.decode(stream)]
        return np.concatenate(frames), stream.codec_context.sample_rate


def _float_samples(samples: np.ndarray) -> np.ndarray:
    """Decoded mono samples, float or signed integer PCM, as float32 in [-1, 1]."""
    if samples.dtype.kind == "f":
        return samples.astype(np.float32, copy=False)
    return (samples / -float(np.iinfo(samples.dtype).min)).astype(np.float32)
