"""The STFT power helper shared by the stft-* front-ends and logspec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from adfd_core.frontends.framing import frame_count, frames
from adfd_core.frontends.params import positive_int
from adfd_core.frontends.spec import FrontendError


def periodic_hann(length: int) -> np.ndarray:
    """Periodic Hann window (scipy's get_window('hann', length) and torch.hann_window), float64 (length,)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


class StftPower(torch.nn.Module):
    """|STFT|^2 with a periodic Hann window of n_fft samples: (batch, n_samples) -> (batch, n_fft // 2 + 1, T).

    Frames follow adfd_core.frontends.framing (centred, zeros outside the segment).
    """

    # CPU chunks of 2 MB of spectra (8 two-second segments at n_fft 1024): the windowed frames, the
    # spectrum and the power, each about that size, stay in cache together. 8-MB chunks ran stft,
    # stft-lf, stft-mel and logspec 15-30 % slower on one thread.
    chunk_bytes = 2 << 20

    def __init__(self, n_fft: int, hop: int, sample_rate: int, n_samples: int, pad_to_hop: bool):
        super().__init__()
        self.n_fft, self.hop, self.pad_to_hop = n_fft, hop, pad_to_hop
        self.bin_freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft  # Hz, (n_fft // 2 + 1,)
        self.n_frames = frame_count(n_samples, hop, pad_to_hop)
        self.segment_bytes = self.n_frames * (n_fft // 2 + 1) * 8  # complex64 spectrum of one segment
        self.register_buffer("window", torch.from_numpy(periodic_hann(n_fft)).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_samples) float32 -> (batch, n_fft // 2 + 1, T) float32 power."""
        spec = torch.fft.rfft(frames(x, self.n_fft, self.hop, self.pad_to_hop) * self.window, dim=-1)
        return (spec.real.square() + spec.imag.square()).transpose(-1, -2)


def stft_power(name: str, p: Mapping[str, Any], sample_rate: int, n_samples: int, hop: int, pad_to_hop: bool) -> StftPower:
    """A StftPower from the checked parameter n_fft (even)."""
    n_fft = positive_int(name, p, "n_fft", minimum=2)
    if n_fft % 2:
        raise FrontendError(f"{name}: n_fft must be even, got {n_fft}")
    return StftPower(n_fft, hop, sample_rate, n_samples, pad_to_hop)
