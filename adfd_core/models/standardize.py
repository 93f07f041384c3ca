"""Input standardization that travels with a model: feature rows minus the training mean, over its std.

The ensemble paper's rows mix scales (a DCT's first coefficient is tens of times its last, the
deltas are small), so each element of the (C, F, T) row is standardized with statistics of the
training rows. A model may share them over some axes of its row instead (``shared_axes``): a head
on frame rows (L, T, D) has one mean and std per layer and channel, (L, 1, D), the same for every
frame, so that a frame is standardized alike wherever it lies in the segment. They are buffers of
the model, saved in and loaded from its model file, so a scorer needs nothing else. Until training
sets them they are 0 and 1 (the identity).
"""

from __future__ import annotations

import torch
from torch import nn

from adfd_core.models.config import check_input


def statistics_shape(input_shape: tuple[int, ...], shared_axes: tuple[int, ...] = ()) -> tuple[int, ...]:
    """The shape of the mean and std buffers: ``input_shape`` with 1 on each of ``shared_axes`` (row axes,
    negative ones counted from the end), where one statistic serves every position."""
    shared = {axis % len(input_shape) for axis in shared_axes}
    return tuple(1 if axis in shared else n for axis, n in enumerate(input_shape))


class Standardized(nn.Module):
    """(batch, *input_shape) -> net((x - mean) / std); mean and std are buffers of ``statistics_shape``,
    broadcast over the row (the full row shape, one statistic per element, unless axes are shared)."""

    def __init__(self, net: nn.Module, input_shape: tuple[int, ...], shared_axes: tuple[int, ...] = ()):
        super().__init__()
        self.input_shape = tuple(input_shape)
        shape = statistics_shape(self.input_shape, shared_axes)
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))
        self.net = net

    def set_input_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Use the training rows' mean and std, both of the buffers' shape (trainset.input_statistics makes them)."""
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise ValueError(f"statistics of shape {tuple(mean.shape)} for statistics of shape {tuple(self.mean.shape)}")
        self.mean.copy_(mean)
        self.std.copy_(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, *input_shape) float32 -> (batch, 2) logits; a ModelError for rows of another shape."""
        check_input(x, self.input_shape)
        return self.net((x - self.mean) / self.std)
