"""Feature blending (Algorithm 1 of the feature decomposition paper): new statistics for pooled features.

Each pooled feature vector f_i (N,) of a batch is normalized by its own statistics (mean mu_i and
std sigma_i over its N elements) and given statistics mixed with those of a partner j of the same
binary class (real with real, fake with fake):

    mu_mix = r mu_i + (1 - r) mu_j,   sigma_mix = r sigma_i + (1 - r) sigma_j,   r ~ U(0.5, 1)
    f'_i = scale_i * (sigma_mix (f_i - mu_i) / sigma_i + mu_mix) + shift_i
    scale_i = r1 Beta(2, 5) U(-1, 1) + 1,   shift_i = r2 Beta(2, 5) N(0, 1),   r1, r2 ~ U(0, eta / 100)

r, r1, r2 and the Beta draws are one per sample; U(-1, 1) and N(0, 1) one per element. The
partners are a random permutation within each class (a sample may draw itself); the content and
synthesizer features of a sample share its partner and draw the rest apart.

eta is read in percent (eta = 10: noise amplitudes up to 0.1). Algorithm 1 as summarized for this
project draws r1, r2 ~ U(0, eta) with eta = 10; read literally that would scale features by
factors in (-9, 11), flipping their signs, while the authors' public code draws the amplitudes
as randint(0, level) / 100 with its noise level in percent. The statistics keep their gradient
(nothing is detached), as in that code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

_EPS = 1e-6  # added to variances before the square root


@dataclass(frozen=True)
class BlendDraws:
    """The random draws of one blending of a (B, N) feature batch.

    partner: (B,) int64 index of each sample's partner; r: (B, 1) weight of the sample's own
    statistics; scale, shift: (B, N) multiplicative and additive noise.
    """

    partner: torch.Tensor
    r: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor


def partners_within_class(labels: torch.Tensor) -> torch.Tensor:
    """(B,) labels -> (B,) int64 partner of each sample: a random permutation within each class."""
    partner = torch.arange(len(labels), device=labels.device)
    for value in labels.unique():
        members = (labels == value).nonzero().squeeze(1)
        partner[members] = members[torch.randperm(len(members), device=labels.device)]
    return partner


def draw(partner: torch.Tensor, n_features: int, eta: float, like: torch.Tensor) -> BlendDraws:
    """Algorithm 1's draws for len(partner) samples of n_features each (float32 on ``like``'s device)."""
    b, device = len(partner), like.device
    beta = torch.distributions.Beta(torch.tensor(2.0, device=device), torch.tensor(5.0, device=device))

    def amplitude() -> torch.Tensor:  # (B, 1): r_k * Beta(2, 5), r_k ~ U(0, eta / 100)
        return torch.rand(b, 1, device=device) * (eta / 100) * beta.sample((b, 1))

    r = 0.5 + 0.5 * torch.rand(b, 1, device=device)
    scale = amplitude() * (2 * torch.rand(b, n_features, device=device) - 1) + 1
    shift = amplitude() * torch.randn(b, n_features, device=device)
    return BlendDraws(partner, r, scale, shift)


def blend(features: torch.Tensor, draws: BlendDraws) -> torch.Tensor:
    """(B, N) pooled features -> (B, N) with their statistics mixed and noised per ``draws`` (module docstring)."""
    f = features.float()  # statistics in float32 under autocast too
    mu = f.mean(dim=1, keepdim=True)
    sigma = (f.var(dim=1, keepdim=True, unbiased=False) + _EPS).sqrt()
    j, r = draws.partner, draws.r
    mu_mix = r * mu + (1 - r) * mu[j]
    sigma_mix = r * sigma + (1 - r) * sigma[j]
    return (draws.scale * (sigma_mix * (f - mu) / sigma + mu_mix) + draws.shift).to(features.dtype)


def blend_streams(features: Mapping[str, torch.Tensor], labels: torch.Tensor, eta: float) -> dict[str, torch.Tensor]:
    """Each stream's (B, N) features blended within the classes of ``labels`` (B,), one partner per sample for all streams."""
    partner = partners_within_class(labels)
    return {name: blend(f, draw(partner, f.shape[1], eta, f)) for name, f in features.items()}
