"""Training losses of the feature decomposition and WaveSpec papers: contrastive, focal, uniform cross-entropy, single center.

Choices where the papers leave room, and why:

- ``contrastive_loss``: the feature decomposition authors' form (their public code states it as
  an equation): on cosine similarities s_ij of the embeddings, same-label pairs cost 1 - s_ij
  (the cosine distance) and different-label pairs max(s_ij - margin, 0), averaged over all
  B^2 ordered pairs (i = j included, where the cost is 0). So margin 0.4 is a similarity:
  different labels are pushed until their cosine similarity is at most 0.4 (cosine distance at
  least 0.6), whatever the features' scale. A batch without positive or negative pairs simply
  has no terms of that kind.
- ``focal_loss``: alpha weights the positive class (target 1, bona fide) and 1 - alpha the
  negative class, as in Lin et al. (alpha = 0.25 on the positives).
- ``uniform_cross_entropy``: the cross-entropy between the uniform distribution and
  softmax(logits), eq. 9 of the feature decomposition paper; log K at the uniform prediction, its
  minimum (it is KL(uniform || softmax(logits)) + log K).
- ``SingleCenterLoss``: Li et al. (CVPR 2021) with their m = 0.3 and lambda = 0.5 as defaults;
  the center starts from a standard normal draw (the paper does not say). A batch with no
  bona fide sample counts M_bona as 0 (only the hinge term pushes the spoofs out); a batch
  with no spoof sample has no hinge term (only M_bona pulls the bona fide in).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _mean_or_zero(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values.mean(), or a 0 that keeps ``like``'s graph when values is empty."""
    return values.mean() if values.numel() else like.sum() * 0.0


def contrastive_loss(emb: torch.Tensor, labels: torch.Tensor, margin: float = 0.4) -> torch.Tensor:
    """Pairwise contrastive loss on cosine similarities: emb (B, D), labels (B,) int64 -> scalar.

    s_ij = <e_i, e_j> / (|e_i| |e_j|);
    L = (1 / B^2) sum_{i, j} [1 - s_ij if y_i = y_j else max(s_ij - margin, 0)].
    """
    unit = F.normalize(emb, dim=1)
    sim = unit @ unit.T
    same = labels[:, None] == labels[None, :]
    return torch.where(same, 1.0 - sim, (sim - margin).clamp(min=0)).mean()


def focal_loss(logit: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Binary focal loss (Lin et al.): logit (B,) of the bona fide class, target (B,) float in {0, 1} -> scalar.

    p_t = sigmoid(z) if t = 1 else 1 - sigmoid(z); alpha_t = alpha if t = 1 else 1 - alpha;
    L = mean(-alpha_t (1 - p_t)^gamma log p_t).
    """
    log_pt = -F.binary_cross_entropy_with_logits(logit, target, reduction="none")
    alpha_t = alpha * target + (1.0 - alpha) * (1.0 - target)
    return (-alpha_t * (1.0 - log_pt.exp()).pow(gamma) * log_pt).mean()


def uniform_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of softmax(logits) against the uniform distribution, logits (B, K) -> scalar, the batch mean.

    L = mean_b(-(1/K) sum_k log softmax(logits_b)_k); log K, its minimum, when every prediction is uniform.
    """
    return -F.log_softmax(logits, dim=1).mean(dim=1).mean()


class SingleCenterLoss(nn.Module):
    """Single center loss (Li et al., CVPR 2021) with a learnable center (D,).

    M_bona, M_spoof = mean Euclidean distance of that class's embeddings to the center;
    L = M_bona + weight * max(M_bona - M_spoof + margin * sqrt(D), 0).
    """

    def __init__(self, dim: int, margin: float = 0.3, weight: float = 0.5):
        super().__init__()
        self.center = nn.Parameter(torch.randn(dim))
        self.margin = margin * math.sqrt(dim)  # in units of Euclidean distance
        self.weight = weight

    def forward(self, emb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """emb (B, D), y (B,) int64 with 1 = bona fide, 0 = spoof -> scalar."""
        dist = (emb - self.center).norm(dim=1)
        bona, spoof = dist[y == 1], dist[y == 0]
        m_bona = _mean_or_zero(bona, dist)
        if not spoof.numel():
            return m_bona
        return m_bona + self.weight * (m_bona - spoof.mean() + self.margin).clamp(min=0)
