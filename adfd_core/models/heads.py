"""Light back-ends for pre-trained embedding rows, beside the paper's MLP (``mlp.v1``).

    logreg.v1       (B, *input_shape) -> flatten -> Linear -> (B, 2): logistic regression on the
                    standardized row (the registry wraps every segment model in ``Standardized``);
                    its L2 penalty is train's --weight-decay.
    layerweight.v1  (B, L, W) stack of L layers' pooled rows (the whisper front-end with several
                    ``layers``) -> softmax(a) weighted sum over L -> (B, W) -> Dense hidden - ReLU -
                    Dropout - Dense 2, or with hidden = 0 a Linear W -> 2. The L weights a start
                    equal (a = 0) and are learned with the head: after training they say which
                    layers the detector reads (``layer_weights``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from adfd_core.models.config import check_input, require


@dataclass(frozen=True)
class LogRegConfig:
    """A linear classifier; input_shape is the shape of one row, set from the feature file."""

    input_shape: tuple[int, ...] = (512,)  # Whisper base, one layer, mean pooling

    def __post_init__(self) -> None:
        require(len(self.input_shape) >= 1 and all(n >= 1 for n in self.input_shape), f"input_shape must be positive, got {self.input_shape}")


class LogReg(nn.Module):
    """(B, *input_shape) -> flatten -> Linear -> (B, 2) logits."""

    def __init__(self, config: LogRegConfig):
        super().__init__()
        self.input_shape = config.input_shape
        self.linear = nn.Linear(math.prod(config.input_shape), 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.input_shape)
        return self.linear(x.flatten(1))


@dataclass(frozen=True)
class LayerWeightConfig:
    """Learned layer weights over a (L, W) stack, then a head; input_shape is set from the feature file."""

    input_shape: tuple[int, int] = (6, 1024)  # Whisper base, layers 1..6, mean+std pooling
    hidden: int = 128  # the head's hidden width; 0: a linear head
    dropout: float = 0.0  # after the hidden layer's ReLU

    def __post_init__(self) -> None:
        require(all(n >= 1 for n in self.input_shape), f"input_shape must be positive, got {self.input_shape}")
        require(self.hidden >= 0, f"hidden must be >= 0, got {self.hidden}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")


class LayerWeight(nn.Module):
    """(B, L, W) -> sum_l softmax(a)_l x[:, l] -> head -> (B, 2) logits."""

    def __init__(self, config: LayerWeightConfig):
        super().__init__()
        self.input_shape = config.input_shape
        n_layers, width = config.input_shape
        self.layer_logits = nn.Parameter(torch.zeros(n_layers))
        if config.hidden:
            self.head = nn.Sequential(nn.Linear(width, config.hidden), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(config.hidden, 2))
        else:
            self.head = nn.Sequential(nn.Linear(width, 2))

    def layer_weights(self) -> torch.Tensor:
        """(L,) the weight of each layer, summing to 1."""
        return self.layer_logits.softmax(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.input_shape)
        return self.head(torch.einsum("blw,l->bw", x, self.layer_weights()))
