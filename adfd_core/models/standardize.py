"""Input standardization that travels with a model: feature rows minus the training mean, over its std.

The ensemble paper's rows mix scales (a DCT's first coefficient is tens of times its last, the
deltas are small), so each element of the (C, F, T) row is standardized with statistics of the
training rows. They are buffers of the model, saved in and loaded from its model file, so a
scorer needs nothing else. Until training sets them they are 0 and 1 (the identity).
"""

from __future__ import annotations

import torch
from torch import nn

from adfd_core.models.config import check_input


class Standardized(nn.Module):
    """(batch, C, F, T) -> net((x - mean) / std); mean and std are (C, F, T) buffers."""

    def __init__(self, net: nn.Module, input_shape: tuple[int, ...]):
        super().__init__()
        self.register_buffer("mean", torch.zeros(input_shape))
        self.register_buffer("std", torch.ones(input_shape))
        self.net = net

    def set_input_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Use the training rows' per-element mean and std, both (C, F, T)."""
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise ValueError(f"statistics of shape {tuple(mean.shape)} for inputs of shape {tuple(self.mean.shape)}")
        self.mean.copy_(mean)
        self.std.copy_(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, C, F, T) float32 -> (batch, 2) logits; a ModelError for rows of another shape."""
        check_input(x, tuple(self.mean.shape))
        return self.net((x - self.mean) / self.std)
