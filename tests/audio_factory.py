"""Synthetic test audio: tones, noise, chirps, formant-like vowels, and codec copies.

Every test makes its own audio with these helpers; nothing here reads ../shared.
Signals are float32 numpy arrays of shape (samples,) or (samples, channels).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf


def tone(freq_hz: float = 440.0, seconds: float = 1.0, sr: int = 16_000, amp: float = 0.5) -> np.ndarray:
    """A sine tone, shape (samples,)."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def noise(seconds: float = 1.0, sr: int = 16_000, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    """White Gaussian noise, shape (samples,)."""
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal(int(round(seconds * sr)))).astype(np.float32)


def chirp(f0: float = 100.0, f1: float = 6000.0, seconds: float = 1.0, sr: int = 16_000, amp: float = 0.5) -> np.ndarray:
    """A linear sine sweep from f0 to f1 Hz, shape (samples,)."""
    t = np.arange(int(round(seconds * sr))) / sr
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (amp * np.sin(phase)).astype(np.float32)


def vowel(
    f0_hz: float = 120.0,
    formants_hz: tuple[float, ...] = (700.0, 1200.0, 2600.0),
    seconds: float = 1.0,
    sr: int = 16_000,
    amp: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """A formant-like voiced sound: a jittered pulse train through resonators, shape (samples,)."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    src = np.zeros(n)
    pos = 0.0
    while pos < n:
        src[int(pos)] = 1.0
        pos += sr / (f0_hz * (1.0 + 0.02 * rng.standard_normal()))
    out = src
    for fc in formants_hz:
        bw = 80.0 + 0.05 * fc
        r = np.exp(-np.pi * bw / sr)
        a = [1.0, -2 * r * np.cos(2 * np.pi * fc / sr), r * r]
        out = lfilter([1.0 - r], a, out)
    out = out / (np.max(np.abs(out)) + 1e-9)
    return (amp * out).astype(np.float32)


def write(path: Path, signal: np.ndarray, sr: int = 16_000, subtype: str | None = None) -> Path:
    """Write a signal with soundfile (format from the suffix); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(os.fsencode(path), signal, sr, subtype=subtype, format=path.suffix[1:].upper())  # bytes: any file name
    return path


def encode(path: Path, signal: np.ndarray, sr: int = 16_000, codec: str = "libmp3lame", bitrate: int = 64_000) -> Path:
    """Encode a mono float signal with PyAV into the container named by the path's suffix.

    codec: 'libmp3lame' (.mp3), 'aac' (.m4a), 'libopus' (.opus/.ogg).
    """
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sr if codec != "libopus" else 48_000)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        rate = stream.rate
        data = signal.astype(np.float32)
        if rate != sr:
            import soxr

            data = soxr.resample(data, sr, rate).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(data[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


# --- hostile files: what fuzzing found (issue 15) ---------------------------------------------------


def cut(path: Path, fraction: float = 0.5) -> Path:
    """Keep only the first ``fraction`` of the file's bytes; returns the path."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def wav_without_decoder(path: Path, extensible: bool = False) -> Path:
    """A WAV whose fmt chunk names a codec FFmpeg has no decoder for (libsndfile refuses it too):
    PCM with 3,592 bits per sample, or WAVE_FORMAT_EXTENSIBLE with an unknown sub-format."""
    import io
    import struct

    buffer = io.BytesIO()
    sf.write(buffer, tone(seconds=0.1), 16_000, format="WAVEX" if extensible else "WAV", subtype="PCM_24" if extensible else "PCM_16")
    data = bytearray(buffer.getvalue())
    at = 44 if extensible else 34  # the sub-format GUID's tag, or the bits-per-sample field
    data[at : at + 2] = struct.pack("<H", 0x1234 if extensible else 3592)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def pcm_s64_wav(path: Path, ints: np.ndarray, sr: int = 16_000) -> Path:
    """A mono WAV of 64-bit integer PCM (FFmpeg decodes it; libsndfile and PyAV's to_ndarray do not)."""
    import struct

    data = ints.astype("<i8").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, sr, sr * 8, 8, 64)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    return path


def m4a_with_bad_tags(path: Path, signal: np.ndarray, sr: int = 16_000) -> Path:
    """An AAC M4A whose title tag holds bytes that are not UTF-8."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    marker = b"TITLE-TO-BREAK"
    with av.open(str(path), "w") as container:
        container.metadata["title"] = marker.decode()
        stream = container.add_stream("aac", rate=sr, layout="mono")
        frame = av.AudioFrame.from_ndarray(signal.astype(np.float32)[None, :], format="flt", layout="mono")
        frame.sample_rate = sr
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    data = path.read_bytes()
    path.write_bytes(data.replace(marker, b"\xff\xfe" + marker[2:]))
    return path
