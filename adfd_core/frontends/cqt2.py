"""WaveSpec's CQT image: log-magnitude and phase as 2 channels, 4-s segments -> 2x96x251."""

from __future__ import annotations

from typing import Any

import torch

from adfd_core.frontends.base import Frontend
from adfd_core.frontends.cqt import ConstantQ, constant_q
from adfd_core.frontends.framing import frame_count
from adfd_core.frontends.params import positive_float, positive_int
from adfd_core.frontends.spec import FrontendError, FrontendSpec

CQT2_DEFAULTS: dict[str, Any] = {
    "sample_rate": 16_000,  # Hz
    "segment_seconds": 4.0,  # s
    "hop_length": 256,  # samples
    "fmin": 32.70,  # Hz (C1)
    "bins_per_octave": 12,
    "n_bins": 96,  # 8 octaves, top bin 7.86 kHz
    "log_offset": 1e-6,  # added to |C| before the log
}


class CqtMagPhase(Frontend):
    """(batch, samples) -> (batch, 2, n_bins, T): [log(|C| + log_offset), angle(C) in [-pi, pi]].

    T = 1 + ceil(samples / hop) (the segment is zero-padded at the end to a multiple of hop):
    64000 samples at hop 256 -> 251 frames.
    """

    def __init__(self, spec: FrontendSpec):
        super().__init__(spec)
        name, p = spec.name, spec.params
        if self.segment_samples is None:
            raise FrontendError(f"{name}: segment_seconds must be a number of seconds")
        self.hop = positive_int(name, p, "hop_length")
        self.offset = positive_float(name, p, "log_offset")
        self.cqt = constant_q(name, p, self.sample_rate, self.segment_samples, self.hop, ConstantQ)
        self.segment_bytes, self.chunk_bytes = self.cqt.segment_bytes, self.cqt.chunk_bytes

    def output_shape(self, n_samples: int | None = None) -> tuple[int, ...]:
        """(2, n_bins, T)."""
        return (2, len(self.cqt.bin_freqs), frame_count(n_samples or self.segment_samples, self.hop, pad_to_hop=True))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, segment_samples) float32 -> (batch, 2, n_bins, T) float32."""
        coef = self.cqt(x)
        return torch.stack([torch.log(coef.abs() + self.offset), torch.angle(coef)], dim=1)
