"""The ensemble paper's 12 front-ends: {stft, cqt, wt} x {raw, -mel, -gam, -lf}, one parameterized pipeline.

power spectrogram (batch, bins, T) -> filterbank to n_bands (raw stft: 8-bin averages; raw cqt
and wt: their 64 bins as they are) -> log(max(P, log_floor)) -> DCT-II along time -> [static,
delta, delta-delta]: (batch, 3, 64, 64) for 2-s segments at 16 kHz with hop 512.
The filterbank variants of cqt and wt start from a finer transform (24 bins per octave, 192
wavelet scales) so that every band sees several bins.
"""

from __future__ import annotations

from typing import Any

import torch

from adfd_core.frontends.base import Frontend
from adfd_core.frontends.cqt import ConstantQPower, constant_q
from adfd_core.frontends.dct_deltas import DctDeltas
from adfd_core.frontends.filterbanks import band_weights
from adfd_core.frontends.framing import frame_count
from adfd_core.frontends.params import frequency_range, positive_float, positive_int
from adfd_core.frontends.spec import FrontendError, FrontendSpec
from adfd_core.frontends.stft import stft_power
from adfd_core.frontends.wavelet import wavelet_power


SAMPLE_RATE = 16_000  # Hz
SEGMENT_SECONDS = 2.0  # s
HOP = 512  # samples
N_BANDS = 64
LOG_FLOOR = 1e-10  # power floor before the log
DELTA_WIDTH = 9  # frames, librosa.feature.delta's default
CQT_FMIN = 32.70  # Hz (C1)
WT_FMIN, WT_FMAX = 50.0, 7500.0  # Hz, centre frequencies of the lowest and highest wavelet scales
# pywt.integrate_wavelet grid of 2**16 points. Coarser grids make pywt's per-scale resampling a
# staircase whose images hold 80 % (precision 10) or 20 % (12, pywt.cwt's default) of the 50-Hz
# wavelet's energy, far from its band; 16 leaves 0.1 %.
WT_PRECISION = 16


def ensemble_defaults(transform: str, filterbank: str | None) -> dict[str, Any]:
    """Every parameter of one ensemble front-end with the paper's value (or ours where it gives none)."""
    params: dict[str, Any] = {"sample_rate": SAMPLE_RATE, "segment_seconds": SEGMENT_SECONDS, "hop_length": HOP}
    fine = filterbank is not None
    if transform == "stft":
        params["n_fft"] = 1024
    elif transform == "cqt":
        # raw: 64 bins, top 7.68 kHz; fine: 24 bins per octave up to the same top bin.
        params.update(fmin=CQT_FMIN, bins_per_octave=24 if fine else 8, n_bins=190 if fine else N_BANDS)
    else:
        params.update(
            win_length=1024, wavelet="cmor1.5-1.0", fmin=WT_FMIN, fmax=WT_FMAX,
            n_scales=192 if fine else N_BANDS, precision=WT_PRECISION,
        )
    if fine or transform == "stft":
        params.update(n_bands=N_BANDS, band_fmin=50.0 if filterbank == "gam" else 0.0, band_fmax=SAMPLE_RATE / 2)
    params.update(log_floor=LOG_FLOOR, delta_width=DELTA_WIDTH)
    return params


class EnsembleFrontend(Frontend):
    """Paper 1 feature: (batch, samples) -> (batch, 3, F, T), F = n_bands (or the raw cqt/wt bin count)."""

    def __init__(self, spec: FrontendSpec, transform: str, filterbank: str | None):
        super().__init__(spec)
        name, p = spec.name, spec.params
        if self.segment_samples is None:
            raise FrontendError(f"{name}: segment_seconds must be a number of seconds")
        self.hop = positive_int(name, p, "hop_length")
        self.power = _power_transform(name, transform, p, self.sample_rate, self.segment_samples, self.hop)
        self.segment_bytes, self.chunk_bytes = self.power.segment_bytes, self.power.chunk_bytes
        kind = "box" if transform == "stft" and filterbank is None else filterbank
        if kind is None:
            self.register_buffer("bands", None)
            self.n_rows = len(self.power.bin_freqs)
        else:
            self.n_rows = positive_int(name, p, "n_bands")
            fmin, fmax = frequency_range(name, p, "band_fmin", "band_fmax", self.sample_rate / 2)
            weights = band_weights(kind, self.power.bin_freqs, self.n_rows, fmin, fmax, self.sample_rate)
            self.register_buffer("bands", torch.from_numpy(weights).float(), persistent=False)
        self.log_floor = positive_float(name, p, "log_floor")
        n_frames = frame_count(self.segment_samples, self.hop, pad_to_hop=True)
        self.dct_deltas = DctDeltas(name, n_frames, positive_int(name, p, "delta_width"))

    def output_shape(self, n_samples: int | None = None) -> tuple[int, ...]:
        """(3, F, T); T = 1 + ceil(n_samples / hop)."""
        return (3, self.n_rows, frame_count(n_samples or self.segment_samples, self.hop, pad_to_hop=True))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, segment_samples) float32 -> (batch, 3, F, T) float32."""
        power = self.power(x)
        if self.bands is not None:
            power = torch.matmul(self.bands, power)
        return self.dct_deltas(torch.log(power.clamp_min(self.log_floor)))


def _power_transform(name: str, transform: str, p: dict[str, Any], sr: int, n_samples: int, hop: int) -> torch.nn.Module:
    """The power spectrogram module, (batch, n_samples) -> (batch, bins, T), with .bin_freqs (Hz)."""
    if transform == "stft":
        return stft_power(name, p, sr, n_samples, hop, pad_to_hop=True)
    if transform == "cqt":
        return constant_q(name, p, sr, n_samples, hop, ConstantQPower)
    return wavelet_power(name, p, sr, n_samples, hop)
