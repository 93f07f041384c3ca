"""Filterbanks evaluated at any vector of bin centre frequencies.

One definition serves the STFT's 513 linear bins and the finer, log-spaced CQT and wavelet bins.
Weights apply to power. Each band is a weighted mean of bin powers: its shape times each bin's
width in Hz (the local bin spacing, so log-spaced grids approximate the same integral as linear
ones), normalized to sum to 1. A band that catches no bin (its triangle falls between two bins)
takes the bin nearest its centre.

- ``mel``: triangles with edges equally spaced on the Slaney mel scale (librosa.filters.mel, htk=False)
- ``lf``: triangles with edges equally spaced in Hz
- ``gam``: |H(f)|^2 of 4th-order gammatone filters (Slaney's four-biquad design, Apple TR #35,
  as gammatone.filters.make_erb_filters) at ERB-spaced centre frequencies (as
  gammatone.filters.erb_space). Written here with numpy: importing the gammatone package pulls
  in scipy.signal, about a second of every cold start.
- ``box``: equal-width rectangles [fmin + b*w, fmin + (b+1)*w), w = (fmax - fmin) / n_bands
"""

from __future__ import annotations

import numpy as np

FILTERBANKS = ("mel", "lf", "gam", "box")

# Slaney's mel scale: linear below 1 kHz, logarithmic above.
MEL_LINEAR_HZ_PER_MEL = 200.0 / 3.0
MEL_BREAK_HZ = 1000.0
MEL_BREAK = MEL_BREAK_HZ / MEL_LINEAR_HZ_PER_MEL  # 15 mel
MEL_LOG_STEP = np.log(6.4) / 27.0  # ln(Hz ratio) per mel above the break


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Hz -> Slaney mel."""
    hz = np.asarray(hz, dtype=np.float64)
    above = MEL_BREAK + np.log(np.maximum(hz, MEL_BREAK_HZ) / MEL_BREAK_HZ) / MEL_LOG_STEP
    return np.where(hz >= MEL_BREAK_HZ, above, hz / MEL_LINEAR_HZ_PER_MEL)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Slaney mel -> Hz."""
    mel = np.asarray(mel, dtype=np.float64)
    above = MEL_BREAK_HZ * np.exp(MEL_LOG_STEP * (np.maximum(mel, MEL_BREAK) - MEL_BREAK))
    return np.where(mel >= MEL_BREAK, above, mel * MEL_LINEAR_HZ_PER_MEL)


def _triangles(edges: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangles rising from edges[b] to 1 at edges[b+1], falling to 0 at edges[b+2]: (n_bands, n_bins), centres."""
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lo) / (mid - lo)
    falling = (hi - freqs) / (hi - mid)
    return np.maximum(0.0, np.minimum(rising, falling)), edges[1:-1]


EAR_Q, MIN_BW = 9.26449, 24.7  # Glasberg and Moore's ERB parameters: ERB(f) = f / EAR_Q + MIN_BW, Hz


def gammatone_centres(n_bands: int, fmin: float, fmax: float) -> np.ndarray:
    """ERB-spaced centre frequencies in Hz, ascending: fmin first, the top one just below fmax."""
    fraction = np.arange(1, n_bands + 1) / n_bands  # 1 -> fmin; 0 would be fmax
    top = fmax + EAR_Q * MIN_BW
    return np.sort(-EAR_Q * MIN_BW + np.exp(fraction * (np.log(fmin + EAR_Q * MIN_BW) - np.log(top))) * top)


def gammatone_power(centres: np.ndarray, freqs: np.ndarray, sample_rate: int) -> np.ndarray:
    """|H(f)|^2 of each gammatone filter (peak ~1 at its centre): (n_bands, n_bins).

    H(z) = prod_i (A0 + A1i z^-1) / (1 + B1 z^-1 + B2 z^-2) / gain for i = 1..4: Slaney's cascade of
    four biquads sharing their poles (their A2 is 0), with the gain that makes |H| 1 at the centre.
    """
    t = 1.0 / sample_rate
    cf = np.asarray(centres, dtype=np.float64)[:, None]
    bw = 1.019 * 2 * np.pi * (cf / EAR_Q + MIN_BW)  # rad/s
    arg = 2 * np.pi * cf * t
    decay = np.exp(-bw * t)
    b1, b2 = -2 * np.cos(arg) * decay, np.exp(-2 * bw * t)
    roots = (np.sqrt(3 + 2**1.5), -np.sqrt(3 + 2**1.5), np.sqrt(3 - 2**1.5), -np.sqrt(3 - 2**1.5))
    k = [np.cos(arg) + r * np.sin(arg) for r in roots]
    a1 = [-t * decay * ki for ki in k]
    centre = np.exp(2j * arg)  # z^-2 at the centre frequency
    gain = np.abs(
        np.prod([centre - np.exp(1j * arg) * decay * ki for ki in k], axis=0)
        * (t / decay / (1 - decay + centre * (1 - 1 / decay))) ** 4
    )
    z1 = np.exp(-2j * np.pi * np.asarray(freqs) / sample_rate)[None, :]  # z^-1 on the unit circle
    numerator = np.prod([t + a * z1 for a in a1], axis=0)
    denominator = (1 + b1 * z1 + b2 * z1**2) ** 4
    return np.abs(numerator / denominator / gain) ** 2


def _shapes(
    kind: str, freqs: np.ndarray, n_bands: int, fmin: float, fmax: float, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unnormalized band shapes (n_bands, n_bins) and band centres (n_bands,) in Hz."""
    if kind == "mel":
        return _triangles(mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_bands + 2)), freqs)
    if kind == "lf":
        return _triangles(np.linspace(fmin, fmax, n_bands + 2), freqs)
    if kind == "gam":
        centres = gammatone_centres(n_bands, fmin, fmax)
        return gammatone_power(centres, freqs, sample_rate), centres
    if kind == "box":
        edges = np.linspace(fmin, fmax, n_bands + 1)
        inside = (freqs[None, :] >= edges[:-1, None]) & (freqs[None, :] < edges[1:, None])
        return inside.astype(np.float64), (edges[:-1] + edges[1:]) / 2
    raise ValueError(f"unknown filterbank {kind!r}; valid: {', '.join(FILTERBANKS)}")


def band_weights(kind: str, bin_freqs: np.ndarray, n_bands: int, fmin: float, fmax: float, sample_rate: int) -> np.ndarray:
    """(n_bands, n_bins) float64 weights over power bins centred at bin_freqs (Hz, ascending); rows sum to 1."""
    freqs = np.asarray(bin_freqs, dtype=np.float64)
    shapes, centres = _shapes(kind, freqs, n_bands, fmin, fmax, sample_rate)
    weights = shapes * np.abs(np.gradient(freqs))[None, :]
    for band in np.flatnonzero(weights.sum(axis=1) <= 0):
        weights[band, np.argmin(np.abs(freqs - centres[band]))] = 1.0
    return weights / weights.sum(axis=1, keepdims=True)
