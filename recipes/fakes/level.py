"""Bring generated audio to the shared sets' format: 16 kHz mono, -26 dBFS RMS, 16-bit FLAC."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SR = 16_000
TARGET_DBFS = -26.0
PEAK_LIMIT = 0.99


def to_16k(wave: np.ndarray, sr: int) -> np.ndarray:
    """Resample a mono float wave (samples,) to 16 kHz with soxr's high-quality filter."""
    wave = np.asarray(wave, dtype=np.float64)
    return wave if sr == SR else soxr.resample(wave, sr, SR, quality="HQ")


def normalize(wave: np.ndarray) -> np.ndarray:
    """Scale (samples,) to an RMS of -26 dBFS, less where that would push the peak past 0.99.

    Raises ValueError for silent or non-finite audio: nothing to normalize.
    """
    if wave.size == 0 or not np.all(np.isfinite(wave)):
        raise ValueError("empty or non-finite audio")
    rms = float(np.sqrt(np.mean(np.square(wave))))
    peak = float(np.max(np.abs(wave)))
    if rms < 1e-6:
        raise ValueError("silent audio")
    gain = min(10 ** (TARGET_DBFS / 20) / rms, PEAK_LIMIT / peak)
    return (wave * gain).astype(np.float32)


def write_flac(path: Path, wave: np.ndarray, sr: int) -> float:
    """Resample, normalize and write (samples,) as 16-bit FLAC atomically; returns seconds written.

    The file appears under its name only when complete (written beside it, then renamed), so an
    interrupted run never leaves a truncated clip that a rerun would take as done.
    """
    out = normalize(to_16k(wave, sr))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        sf.write(str(tmp), out, SR, format="FLAC", subtype="PCM_16")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(out) / SR
