"""The training losses on small cases computed by hand from their formulas, and their degenerate batches."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from adfd_core.losses import SingleCenterLoss, contrastive_loss, focal_loss, uniform_cross_entropy

# three 2-D embeddings: e0 and e1 orthogonal, e2 at 45 degrees to both
EMB = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
S45 = 1 / math.sqrt(2)  # cosine similarity of e2 with e0 and with e1


def test_contrastive_loss_by_hand():
    # ordered pairs (9): diagonal 0; (0,1) same label: 1 - 0 twice; (0,2), (1,2) different: max(S45 - 0.4, 0) four times
    expected = (2 * 1.0 + 4 * (S45 - 0.4)) / 9
    assert contrastive_loss(EMB, torch.tensor([0, 0, 1]), margin=0.4).item() == pytest.approx(expected, rel=1e-6)


def test_contrastive_loss_uses_directions_only():
    labels = torch.tensor([0, 0, 1])
    assert contrastive_loss(7.5 * EMB, labels).item() == pytest.approx(contrastive_loss(EMB, labels).item(), rel=1e-6)


def test_contrastive_loss_leaves_negatives_beyond_the_margin_alone():
    assert contrastive_loss(EMB, torch.tensor([0, 0, 1]), margin=0.8).item() == pytest.approx(2 / 9, rel=1e-6)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ((0, 0, 0), (2 * 1.0 + 4 * (1 - S45)) / 9),  # no negative pair
        ((0, 1, 2), 4 * (S45 - 0.4) / 9),  # no positive pair
    ],
)
def test_contrastive_loss_without_one_kind_of_pair(labels, expected):
    emb = EMB.clone().requires_grad_()
    loss = contrastive_loss(emb, torch.tensor(labels))
    loss.backward()
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert torch.isfinite(emb.grad).all()


def test_contrastive_loss_of_one_sample_is_zero():
    loss = contrastive_loss(torch.tensor([[0.3, -2.0]]), torch.tensor([4]))
    assert loss.item() == pytest.approx(0.0, abs=1e-7) and torch.isfinite(loss)


def test_focal_loss_by_hand():
    p = 1 / (1 + math.exp(-2.0))  # sigmoid(2): the bona fide probability of the second sample, a spoof
    first = 0.25 * 0.5**2 * -math.log(0.5)  # bona fide at p = 0.5: alpha weights the bona fide class
    second = 0.75 * p**2 * -math.log(1 - p)
    loss = focal_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]), alpha=0.25, gamma=2.0)
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_focal_loss_without_focusing_is_weighted_cross_entropy():
    logit, target = torch.tensor([-1.5, 0.3, 4.0]), torch.tensor([1.0, 0.0, 1.0])
    bce = F.binary_cross_entropy_with_logits(logit, target)
    assert focal_loss(logit, target, alpha=0.5, gamma=0.0).item() == pytest.approx(0.5 * bce.item(), rel=1e-6)


def test_focal_loss_down_weights_easy_samples_and_stays_finite():
    easy, hard = torch.tensor([3.0]), torch.tensor([-3.0])
    one = torch.tensor([1.0])
    ratio_easy = focal_loss(easy, one, 0.5, 2.0) / F.binary_cross_entropy_with_logits(easy, one)
    ratio_hard = focal_loss(hard, one, 0.5, 2.0) / F.binary_cross_entropy_with_logits(hard, one)
    assert ratio_easy < 0.01 and ratio_hard > 0.4
    assert focal_loss(torch.tensor([100.0]), torch.tensor([0.0])).item() == pytest.approx(0.75 * 100.0, rel=1e-4)


def test_uniform_cross_entropy_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax (1/4, 3/4)
    expected = -0.5 * math.log(0.25) - 0.5 * math.log(0.75)  # H(uniform, p)
    assert uniform_cross_entropy(logits).item() == pytest.approx(expected, rel=1e-6)


def test_uniform_cross_entropy_is_log_k_with_no_gradient_at_the_uniform_prediction():
    logits = torch.full((3, 5), 2.5, requires_grad=True)
    loss = uniform_cross_entropy(logits)
    loss.backward()
    assert loss.item() == pytest.approx(math.log(5), rel=1e-6)
    assert logits.grad.abs().max() < 1e-7
    shifted = torch.tensor([[1.0, 2.0, -1.0]])
    assert uniform_cross_entropy(shifted + 10).item() == pytest.approx(uniform_cross_entropy(shifted).item(), rel=1e-5)
    assert uniform_cross_entropy(shifted).item() > math.log(3)


def _centered(dim: int = 2) -> SingleCenterLoss:
    loss = SingleCenterLoss(dim, margin=0.3, weight=0.5)
    with torch.no_grad():
        loss.center.zero_()
    return loss


def test_single_center_loss_by_hand():
    loss = _centered()
    margin = 0.3 * math.sqrt(2)
    bona = [[3.0, 4.0], [0.0, 1.0]]  # distances 5 and 1: M_bona = 3
    far = loss(torch.tensor([*bona, [6.0, 8.0]]), torch.tensor([1, 1, 0]))  # M_spoof = 10: hinge inactive
    assert far.item() == pytest.approx(3.0, rel=1e-6)
    near = loss(torch.tensor([*bona, [0.0, 2.0]]), torch.tensor([1, 1, 0]))  # M_spoof = 2
    assert near.item() == pytest.approx(3.0 + 0.5 * (3.0 - 2.0 + margin), rel=1e-6)


def test_single_center_loss_with_one_class():
    loss = _centered()
    only_bona = loss(torch.tensor([[0.0, 2.0], [4.0, 0.0]]), torch.tensor([1, 1]))
    assert only_bona.item() == pytest.approx(3.0, rel=1e-6)
    emb = torch.tensor([[0.0, 0.1]], requires_grad=True)
    only_spoof = loss(emb, torch.tensor([0]))
    only_spoof.backward()
    assert only_spoof.item() == pytest.approx(0.5 * (0.3 * math.sqrt(2) - 0.1), rel=1e-6)
    assert emb.grad[0, 1] < 0  # the spoof is pushed away from the center


def test_single_center_loss_learns_its_center():
    torch.manual_seed(0)
    loss = SingleCenterLoss(4)
    assert loss.center.shape == (4,) and loss.center.requires_grad
    loss(torch.randn(6, 4), torch.tensor([1, 0, 1, 0, 1, 0])).backward()
    assert loss.center.grad is not None and loss.center.grad.abs().sum() > 0
