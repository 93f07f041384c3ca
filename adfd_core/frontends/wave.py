"""The raw waveform, whole utterance, for the models that take audio directly (Wav2Vec2 in WaveSpec)."""

from __future__ import annotations

from typing import Any

import torch

from adfd_core.frontends.base import Frontend
from adfd_core.frontends.spec import FrontendError

WAVE_DEFAULTS: dict[str, Any] = {"sample_rate": 16_000}  # Hz


class Waveform(Frontend):
    """(batch, samples) -> (batch, 1, 1, samples), unchanged; segment_samples is None (whole utterance)."""

    def output_shape(self, n_samples: int | None = None) -> tuple[int, ...]:
        """(1, 1, n_samples); there is no default length."""
        if n_samples is None:
            raise FrontendError(f"{self.spec.name}: a whole-utterance feature has no fixed shape; pass n_samples")
        return (1, 1, n_samples)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, 1, 1, samples) float32."""
        return x.reshape(x.shape[0], 1, 1, x.shape[1])
