"""The raw waveform, for the models that take audio directly (feature decomposition, WaveSpec).

Stored whole (``segment_seconds`` None) so that training can crop at random; a waveform model's
file records it cut into windows of the model's input length, which is how `score` feeds it.
"""

from __future__ import annotations

from typing import Any

import torch

from adfd_core.frontends.base import Frontend
from adfd_core.frontends.spec import FrontendError

WAVE_DEFAULTS: dict[str, Any] = {
    "sample_rate": 16_000,  # Hz
    "segment_seconds": None,  # s; None = whole utterance
}


class Waveform(Frontend):
    """(batch, samples) -> (batch, 1, 1, samples), unchanged."""

    def output_shape(self, n_samples: int | None = None) -> tuple[int, ...]:
        """(1, 1, n_samples), by default (1, 1, segment_samples); a whole-utterance wave has no default length."""
        n_samples = n_samples or self.segment_samples
        if n_samples is None:
            raise FrontendError(f"{self.spec.name}: a whole-utterance feature has no fixed shape; pass n_samples")
        return (1, 1, n_samples)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, 1, 1, samples) float32."""
        return x.reshape(x.shape[0], 1, 1, x.shape[1])
