"""The feature decomposition paper's input: log(|STFT| + 1e-7), window 512, hop 187, 3-s crops -> 1x257x257."""

from __future__ import annotations

from typing import Any

import torch

from adfd_core.frontends.base import Frontend
from adfd_core.frontends.framing import frame_count
from adfd_core.frontends.params import positive_float, positive_int
from adfd_core.frontends.spec import FrontendError, FrontendSpec
from adfd_core.frontends.stft import stft_power

LOGSPEC_DEFAULTS: dict[str, Any] = {
    "sample_rate": 16_000,  # Hz
    "segment_seconds": 3.0,  # s
    "n_fft": 512,  # samples, also the Hann window length
    "hop_length": 187,  # samples
    "log_offset": 1e-7,  # added to the magnitude before the log
}


class LogSpec(Frontend):
    """(batch, samples) -> (batch, 1, n_fft // 2 + 1, T), T = 1 + samples // hop (librosa.stft's centred frames)."""

    def __init__(self, spec: FrontendSpec):
        super().__init__(spec)
        name, p = spec.name, spec.params
        if self.segment_samples is None:
            raise FrontendError(f"{name}: segment_seconds must be a number of seconds")
        self.hop = positive_int(name, p, "hop_length")
        self.offset = positive_float(name, p, "log_offset")
        self.stft = stft_power(name, p, self.sample_rate, self.segment_samples, self.hop, pad_to_hop=False)
        self.segment_bytes, self.chunk_bytes = self.stft.segment_bytes, self.stft.chunk_bytes

    def output_shape(self, n_samples: int | None = None) -> tuple[int, ...]:
        """(1, n_fft // 2 + 1, T)."""
        return (1, self.stft.n_fft // 2 + 1, frame_count(n_samples or self.segment_samples, self.hop, pad_to_hop=False))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, segment_samples) float32 -> (batch, 1, 257, 257) float32 at the defaults."""
        return torch.log(self.stft(x).sqrt() + self.offset).unsqueeze(1)
