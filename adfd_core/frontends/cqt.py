"""The constant-Q transform shared by cqt, cqt-* and cqt2: one kernel builder, one batched module.

Kernels follow librosa.cqt (>= 0.10): bin k at f_k = fmin * 2**(k / bins_per_octave) is a
periodic-Hann-windowed complex exponential of L_k = Q * sr / f_k samples (time indices
floor(-L_k/2) .. floor(L_k/2) - 1), L1-normalized, times sqrt(L_k) (librosa's ``scale=True``).
Q = 1 / alpha with alpha = (2**(2/b) - 1) / (2**(2/b) + 1): librosa's constant-Q bandwidth
(Q = 11.57 at b = 8 bins per octave; Brown's 1 / (2**(1/b) - 1) would give 11.04).

C[k, t] = sum_i kernel_k[i] * x[t*hop - n_i] is evaluated, like librosa, from the non-negative
frequencies only, at full rate (no multirate downsampling): one rfft of the whole segment
(length N = M * hop), the product with each kernel's spectrum folded modulo M, and an M-point
inverse FFT gives every frame t*hop at once. librosa refuses bins whose main lobe crosses
Nyquist; here a bin is allowed while its centre stays below Nyquist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from adfd_core.frontends.batching import CPU_CHUNK_BYTES
from adfd_core.frontends.framing import frame_count, next_fast_size, pad_end
from adfd_core.frontends.params import positive_float, positive_int
from adfd_core.frontends.spec import FrontendError
from adfd_core.frontends.stft import periodic_hann


def cqt_frequencies(fmin: float, bins_per_octave: int, n_bins: int) -> np.ndarray:
    """Centre frequencies in Hz, (n_bins,)."""
    return fmin * 2.0 ** (np.arange(n_bins) / bins_per_octave)


def cqt_lengths(freqs: np.ndarray, bins_per_octave: int, sample_rate: int) -> np.ndarray:
    """Fractional kernel lengths L_k = Q * sr / f_k in samples, (n_bins,)."""
    ratio = 2.0 ** (2.0 / bins_per_octave)
    alpha = (ratio - 1.0) / (ratio + 1.0)
    return sample_rate / (alpha * freqs)


def cqt_kernel_spectra(freqs: np.ndarray, lengths: np.ndarray, n_fft: int, sample_rate: int) -> np.ndarray:
    """Each kernel's DFT over n_fft points (time index n placed at n mod n_fft), non-negative frequencies only:
    (n_bins, n_fft // 2 + 1) complex128."""
    spectra = np.empty((len(freqs), n_fft // 2 + 1), dtype=np.complex128)
    for k, (freq, length) in enumerate(zip(freqs, lengths)):
        n = np.arange(np.floor(-length / 2), np.floor(length / 2))
        window = periodic_hann(len(n))
        kernel = np.zeros(n_fft, dtype=np.complex128)
        taps = window * np.exp(2j * np.pi * freq * n / sample_rate) * np.sqrt(length) / window.sum()
        kernel[n.astype(np.int64) % n_fft] = taps
        spectra[k] = np.fft.fft(kernel)[: n_fft // 2 + 1]
    return spectra


class ConstantQ(torch.nn.Module):
    """Complex CQT of fixed-length segments: (batch, n_samples) -> (batch, n_bins, T) complex64."""

    chunk_bytes = CPU_CHUNK_BYTES  # 2-MB chunks, which suit the STFT, ran cqt about 20 % slower

    def __init__(self, sample_rate: int, n_samples: int, hop: int, fmin: float, bins_per_octave: int, n_bins: int):
        super().__init__()
        self.hop = hop
        self.bin_freqs = cqt_frequencies(fmin, bins_per_octave, n_bins)  # Hz, (n_bins,)
        lengths = cqt_lengths(self.bin_freqs, bins_per_octave, sample_rate)
        self.n_frames = frame_count(n_samples, hop, pad_to_hop=True)
        padded = (self.n_frames - 1) * hop
        # Zeros beyond the segment must cover half the longest kernel so the circular product is linear.
        self.n_fft = next_fast_size(padded + int(np.ceil(lengths.max() / 2)) + 1, multiple=hop)
        self.fold = self.n_fft // hop  # M: frequency bins fold modulo M onto the frame grid
        self.segment_bytes = (self.n_fft // 2 + 1) * 8  # complex64 spectrum of one segment
        spectra = cqt_kernel_spectra(self.bin_freqs, lengths, self.n_fft, sample_rate) / hop
        rows = -(-spectra.shape[1] // self.fold)
        folded = np.zeros((n_bins, rows * self.fold), dtype=np.complex128)
        folded[:, : spectra.shape[1]] = spectra
        # (M, rows, n_bins): kernel spectrum at bin r + q*M, for a batched matmul per residue r.
        kernels = torch.from_numpy(folded.reshape(n_bins, rows, self.fold).transpose(2, 1, 0).copy())
        self.register_buffer("kernels", kernels.to(torch.complex64), persistent=False)
        # Frames whose kernel lies wholly in the end padding are exactly 0: set them so rather than
        # leave float32 rounding (~1e-12 of the segment's peak power) there.
        last_tap = np.floor(lengths / 2) - 1  # kernel k reads x[t*hop - n], n in [floor(-L/2), floor(L/2))
        inside = np.arange(self.n_frames)[None, :] * hop - last_tap[:, None] < n_samples
        self.register_buffer("inside", torch.from_numpy(inside).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_samples) float32 -> (batch, n_bins, T) complex64; frame t is centred on sample t*hop."""
        spectrum = torch.fft.rfft(pad_end(x, self.hop, pad_to_hop=True), n=self.n_fft)
        rows = self.kernels.shape[1]
        spectrum = F.pad(spectrum, (0, rows * self.fold - spectrum.shape[-1]))
        by_residue = spectrum.view(-1, rows, self.fold).permute(2, 0, 1)  # (M, batch, rows)
        folded = torch.matmul(by_residue, self.kernels).permute(1, 2, 0)  # (batch, n_bins, M)
        return torch.fft.ifft(folded, dim=-1)[..., : self.n_frames] * self.inside


class ConstantQPower(ConstantQ):
    """|CQT|^2: (batch, n_samples) -> (batch, n_bins, T) float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coef = super().forward(x)
        return coef.real.square() + coef.imag.square()


def constant_q(name: str, p: Mapping[str, Any], sr: int, n_samples: int, hop: int, cls: type[ConstantQ]) -> ConstantQ:
    """A ConstantQ (or subclass) from checked fmin, bins_per_octave and n_bins; the top bin must be below Nyquist."""
    fmin = positive_float(name, p, "fmin")
    bpo, n_bins = positive_int(name, p, "bins_per_octave"), positive_int(name, p, "n_bins", minimum=2)
    top = cqt_frequencies(fmin, bpo, n_bins)[-1]
    if top >= sr / 2:
        raise FrontendError(f"{name}: the top CQT bin ({top:.0f} Hz) must lie below Nyquist ({sr / 2:g} Hz)")
    return cls(sr, n_samples, hop, fmin, bpo, n_bins)
