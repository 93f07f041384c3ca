"""Continuous wavelet transform power, pooled into frames, batched through FFT convolution.

The discrete filters are exactly those of ``pywt.cwt(x, scales, wavelet, method='fft',
precision=precision)``: the wavelet integrated by pywt.integrate_wavelet, resampled per scale
(index floor(i / (scale * step)), reversed, conjugated for complex wavelets), convolved with the
segment, then -sqrt(scale) * diff and the centred slice. Here the difference, the gain and the
slice offset are folded into each filter's spectrum once, so forward is one FFT of the segment
and one inverse FFT per scale. Power |coef|^2 is pooled into the framing of
adfd_core.frontends.framing with a periodic Hann window whose weights sum to 1.
pywt is used at construction only.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from adfd_core.frontends.batching import CPU_CHUNK_BYTES
from adfd_core.frontends.framing import frame_count, next_fast_size, pad_end, pooled
from adfd_core.frontends.params import frequency_range, positive_int
from adfd_core.frontends.spec import FrontendError
from adfd_core.frontends.stft import periodic_hann

ROWS_PER_CHUNK = 32  # scales per inverse FFT; reused buffers ~20 B * N each (~22 MB at N = 34992)


def wavelet_scales(wavelet: str, freqs: np.ndarray, sample_rate: int, precision: int) -> np.ndarray:
    """pywt scales whose centre frequencies are freqs (Hz)."""
    import pywt

    return np.asarray(pywt.frequency2scale(wavelet, np.asarray(freqs) / sample_rate, precision=precision), dtype=np.float64)


def pywt_filters(wavelet: str, scales: np.ndarray, precision: int) -> list[np.ndarray]:
    """The discrete filter pywt.cwt convolves with at each scale (before its diff): list of (m_s,) arrays."""
    import pywt

    int_psi, grid = pywt.integrate_wavelet(wavelet, precision=precision)
    int_psi = np.conj(int_psi) if np.iscomplexobj(int_psi) else int_psi
    step = grid[1] - grid[0]
    filters = []
    for scale in scales:
        index = (np.arange(scale * (grid[-1] - grid[0]) + 1) / (scale * step)).astype(int)
        filters.append(int_psi[index[index < int_psi.size]][::-1])
    return filters


def cwt_filter_spectra(filters: list[np.ndarray], scales: np.ndarray, n_fft: int) -> np.ndarray:
    """DFTs (n_scales, n_fft) complex128 of the g with coef[i] = (x * g)[i], where pywt's coefficient is
    -sqrt(s) * diff(x * filter)[i + o], o = floor((m - 2) / 2) for a filter of m taps."""
    spectra = np.empty((len(filters), n_fft), dtype=np.complex128)
    for s, (taps, scale) in enumerate(zip(filters, scales)):
        differenced = -np.sqrt(scale) * np.diff(taps, prepend=0, append=0)  # (m + 1,): taps[q] - taps[q - 1]
        shift = (len(taps) - 2) // 2 + 1
        placed = np.zeros(n_fft, dtype=np.complex128)
        placed[(np.arange(len(differenced)) - shift) % n_fft] = differenced
        spectra[s] = np.fft.fft(placed)
    return spectra


class WaveletPower(torch.nn.Module):
    """Frame-pooled |CWT|^2: (batch, n_samples) -> (batch, n_scales, T) float32, scales ordered by ascending frequency."""

    chunk_bytes = CPU_CHUNK_BYTES

    def __init__(
        self, sample_rate: int, n_samples: int, hop: int, win: int, wavelet: str, freqs: np.ndarray, precision: int
    ):
        super().__init__()
        self.hop = hop
        self.bin_freqs = np.asarray(freqs, dtype=np.float64)  # Hz, (n_scales,)
        self.scales = wavelet_scales(wavelet, self.bin_freqs, sample_rate, precision)
        filters = pywt_filters(wavelet, self.scales, precision)
        self.n_frames = frame_count(n_samples, hop, pad_to_hop=True)
        self.n_padded = (self.n_frames - 1) * hop
        longest = max(len(f) for f in filters)
        # Zeros beyond the segment must cover the filter's reach so the circular convolution is linear.
        self.n_fft = next_fast_size(self.n_padded + longest - (longest - 2) // 2 + 1)
        self.segment_bytes = self.n_fft * 8  # complex64 spectrum of one segment
        spectra = cwt_filter_spectra(filters, self.scales, self.n_fft)
        self.register_buffer("filters", torch.from_numpy(spectra).to(torch.complex64), persistent=False)
        window = periodic_hann(win)
        self.register_buffer("pool", torch.from_numpy(window / window.sum()).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_samples) float32 -> (batch, n_scales, T) float32 pooled power.

        Works through ROWS_PER_CHUNK scales of one segment at a time in reused buffers, so memory
        stays bounded whatever the batch size.
        """
        spectrum = torch.fft.fft(pad_end(x, self.hop, pad_to_hop=True), n=self.n_fft)  # (batch, N)
        n_scales = self.filters.shape[0]
        rows = min(ROWS_PER_CHUNK, n_scales)
        product = spectrum.new_empty((rows, self.n_fft))
        coef = torch.empty_like(product)
        power = x.new_empty((rows, self.n_padded))
        out = x.new_empty((x.shape[0], n_scales, self.n_frames))
        for b in range(x.shape[0]):
            for lo in range(0, n_scales, rows):
                k = min(rows, n_scales - lo)
                torch.mul(spectrum[b], self.filters[lo : lo + k], out=product[:k])
                torch.fft.ifft(product[:k], dim=-1, out=coef[:k])
                head = coef[:k, : self.n_padded]
                torch.mul(head.real, head.real, out=power[:k]).addcmul_(head.imag, head.imag)
                out[b, lo : lo + k] = pooled(power[:k], self.pool, self.hop, pad_to_hop=True)
        return out


def wavelet_power(name: str, p: Mapping[str, Any], sample_rate: int, n_samples: int, hop: int) -> WaveletPower:
    """A WaveletPower from checked win_length, wavelet, fmin, fmax, n_scales (log-spaced) and precision."""
    import pywt

    win = positive_int(name, p, "win_length", minimum=2)
    if win % 2:
        raise FrontendError(f"{name}: win_length must be even, got {win}")
    fmin, fmax = frequency_range(name, p, "fmin", "fmax", sample_rate / 2)
    if fmin <= 0:
        raise FrontendError(f"{name}: fmin must be > 0 Hz, got {fmin:g}")
    freqs = np.geomspace(fmin, fmax, positive_int(name, p, "n_scales", minimum=2))
    wavelet, precision = p["wavelet"], positive_int(name, p, "precision", minimum=4)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # pywt only warns about a family name without its parameters
            pywt.ContinuousWavelet(wavelet)
    except (ValueError, TypeError, AttributeError, Warning) as err:
        hint = "use a pywt continuous wavelet such as cmor1.5-1.0"
        raise FrontendError(f"{name}: bad wavelet {wavelet!r} ({err}); {hint}") from None
    return WaveletPower(sample_rate, n_samples, hop, win, wavelet, freqs, precision)
