"""The ensemble paper's classifier for pre-trained audio embeddings: an MLP, Dense 128 - ReLU - Dense 2.

Its input is one embedding row per 2-s segment (adfd_core.frontends.embeddings: whisper 512,
speechbrain 192, seamless 1024, pyannote 512); training sets input_shape from the feature file.
What the paper leaves open, and the choice made here: no dropout (dropout=0.0; settable), PyTorch's
default initialization, logits out (class 0 = spoof, 1 = bona fide).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from adfd_core.models.config import check_input, require


@dataclass(frozen=True)
class MLPConfig:
    """The embedding MLP; input_shape is the shape of one row, (D,) for an embedding."""

    input_shape: tuple[int, ...] = (512,)  # Whisper base
    hidden: int = 128
    dropout: float = 0.0  # after the hidden layer's ReLU

    def __post_init__(self) -> None:
        shape = self.input_shape
        require(len(shape) >= 1 and all(n >= 1 for n in shape), f"input_shape must be positive, got {shape}")
        require(self.hidden >= 1, f"hidden must be >= 1, got {self.hidden}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")


class MLP(nn.Module):
    """(B, *input_shape) -> flatten -> Dense hidden - ReLU - Dropout -> Dense 2: (B, 2) logits."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.input_shape = config.input_shape
        self.layers = nn.Sequential(
            nn.Linear(math.prod(config.input_shape), config.hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.input_shape)
        return self.layers(x.flatten(1))
