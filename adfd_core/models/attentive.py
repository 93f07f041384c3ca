"""``attentive.v1``: a back-end on Whisper frame rows (the whisper front-end with ``pooling=frames``).

    x (B, L, T, D) hidden states of L layers over the T frames of a segment, or (B, T, D) for one layer
    -> softmax(a) weighted sum over L, a learned (zero at the start: equal weights)   (B, T, D)
    -> attentive statistics pooling over T:
         e_t = w . tanh(W h_t + b) + c     W: D -> ``attention`` units, one score per frame   (B, T)
         alpha = softmax(e) over T                                                           (B, T)
         mu = sum_t alpha_t h_t,  sigma = sqrt(sum_t alpha_t (h_t - mu)^2)                   (B, D) each
       concat(mu, sigma)                                                                     (B, 2D)
    -> Dense ``hidden`` - ReLU - Dropout - Dense 2, or with hidden = 0 a Linear 2D -> 2      (B, 2) logits

Every frame of a row covers the segment's audio (the front-end keeps no padding), so there is no
mask; the pooling sees the frames as a set: reordering them leaves the output unchanged, and
whatever order carries is what the encoder's positions put into the frames themselves. With the
attention's last layer zero (w = 0) every frame weighs 1/T and the pooling is the plain mean and
population standard deviation (the front-end's ``mean+std``). Training starts there: w is
initialized to zero, and W gets gradients as soon as w moves. The registry standardizes the rows
with one mean and std per layer and channel, shared by every frame (``shared_axes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adfd_core.models.config import check_input, require

VARIANCE_FLOOR = 1e-8  # under the square root: a constant channel gives sigma 1e-4 and a finite gradient


@dataclass(frozen=True)
class AttentiveConfig:
    """Layer weights, attentive statistics pooling and a head; input_shape is set from the feature file."""

    input_shape: tuple[int, ...] = (6, 100, 512)  # (L, T, D): whisper-base layers 1..6, 2 s of frames; or (T, D)
    attention: int = 64  # units of the attention MLP (D -> attention -> tanh -> 1 score per frame)
    hidden: int = 64  # the head's hidden width; 0: a linear head
    dropout: float = 0.0  # after the hidden layer's ReLU

    def __post_init__(self) -> None:
        shape = self.input_shape
        require(len(shape) in (2, 3), f"input_shape must be (T, D) or (L, T, D) frame rows (pooling=frames), got {shape}")
        require(all(n >= 1 for n in shape), f"input_shape must be positive, got {shape}")
        require(self.attention >= 1, f"attention must be >= 1, got {self.attention}")
        require(self.hidden >= 0, f"hidden must be >= 0, got {self.hidden}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")


class AttentivePooling(nn.Module):
    """(B, T, D) -> (B, 2D): the attention-weighted mean and standard deviation over T, concatenated."""

    def __init__(self, dim: int, units: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, units), nn.Tanh(), nn.Linear(units, 1))
        nn.init.zeros_(self.score[-1].weight)  # uniform at the start: plain mean+std pooling, which training departs from

    def weights(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T) attention over the frames, each row summing to 1."""
        return self.score(h).squeeze(-1).softmax(dim=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        alpha = self.weights(h).unsqueeze(-1)  # (B, T, 1)
        mean = (alpha * h).sum(dim=1)
        var = (alpha * (h - mean.unsqueeze(1)).square()).sum(dim=1)
        return torch.cat([mean, var.clamp_min(VARIANCE_FLOOR).sqrt()], dim=1)


class Attentive(nn.Module):
    """(B, L, T, D) or (B, T, D) -> layer weights -> attentive statistics pooling -> head -> (B, 2) logits."""

    def __init__(self, config: AttentiveConfig):
        super().__init__()
        self.input_shape = config.input_shape
        n_layers = config.input_shape[0] if len(config.input_shape) == 3 else 1
        dim = config.input_shape[-1]
        self.layer_logits = nn.Parameter(torch.zeros(n_layers))
        self.pooling = AttentivePooling(dim, config.attention)
        if config.hidden:
            self.head = nn.Sequential(nn.Linear(2 * dim, config.hidden), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(config.hidden, 2))
        else:
            self.head = nn.Sequential(nn.Linear(2 * dim, 2))

    def layer_weights(self) -> torch.Tensor:
        """(L,) the weight of each layer, summing to 1 (one layer: [1.0])."""
        return self.layer_logits.softmax(dim=0)

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, T, D) or (B, T, D) -> (B, T, D): the layers' weighted sum."""
        check_input(x, self.input_shape)
        return torch.einsum("bltd,l->btd", x, self.layer_weights()) if x.dim() == 4 else x

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, T, D) or (B, T, D) -> (B, T): how much each frame weighs in the pooled statistics."""
        return self.pooling.weights(self.frames(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooling(self.frames(x)))
