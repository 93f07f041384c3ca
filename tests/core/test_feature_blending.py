"""Feature blending (Algorithm 1): statistics of the pooled vectors worked by hand, partners within a class, the draws."""

from __future__ import annotations

import math

import pytest
import torch

from adfd_core.models.feature_blending import BlendDraws, blend, blend_streams, draw, partners_within_class


def _no_noise(partner: list[int], r: list[float], n: int) -> BlendDraws:
    b = len(partner)
    return BlendDraws(torch.tensor(partner), torch.tensor(r).reshape(b, 1), torch.ones(b, n), torch.zeros(b, n))


def test_blending_mixes_the_statistics_of_the_pooled_vectors_by_hand():
    f = torch.tensor([[1.0, 2.0, 3.0, 6.0], [10.0, 10.0, 14.0, 14.0]])  # mu 3 and 12; sigma sqrt(3.5) and 2
    out = blend(f, _no_noise([1, 0], [0.75, 0.5], 4))
    mu0, s0, mu1, s1 = 3.0, math.sqrt(3.5), 12.0, 2.0
    mix_mu0, mix_s0 = 0.75 * mu0 + 0.25 * mu1, 0.75 * s0 + 0.25 * s1  # 5.25, 1.903...
    expected0 = [mix_s0 * (v - mu0) / s0 + mix_mu0 for v in (1.0, 2.0, 3.0, 6.0)]
    expected1 = [0.5 * (s0 + s1) * (v - mu1) / s1 + 0.5 * (mu0 + mu1) for v in (10.0, 10.0, 14.0, 14.0)]
    torch.testing.assert_close(out, torch.tensor([expected0, expected1]), atol=1e-5, rtol=1e-5)
    assert out[0].mean().item() == pytest.approx(5.25) and out[1].mean().item() == pytest.approx(7.5)
    assert out[0].std(unbiased=False).item() == pytest.approx(mix_s0, rel=1e-4)  # the statistics of the whole vector


def test_the_noise_scales_then_shifts_each_element():
    f = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    scale, shift = torch.tensor([[1.1, 0.9, 1.0, 1.2]]), torch.tensor([[0.5, -0.5, 0.0, 0.25]])
    out = blend(f, BlendDraws(torch.tensor([0]), torch.tensor([[1.0]]), scale, shift))
    torch.testing.assert_close(out, f * scale + shift, atol=1e-5, rtol=1e-5)  # own statistics (r = 1): f itself, noised


def test_a_sample_blended_with_itself_or_with_r_one_is_unchanged():
    f = torch.randn(3, 8, generator=torch.Generator().manual_seed(0)) * 3 + 1
    torch.testing.assert_close(blend(f, _no_noise([0, 1, 2], [0.5, 0.6, 0.7], 8)), f, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(blend(f, _no_noise([2, 0, 1], [1.0, 1.0, 1.0], 8)), f, atol=1e-5, rtol=1e-5)


def test_partners_are_a_random_permutation_within_each_class():
    torch.manual_seed(3)
    labels = torch.tensor([0, 1, 0, 0, 1, 2])  # class 2 has a single sample
    draws = set()
    for _ in range(30):
        partner = partners_within_class(labels)
        assert torch.equal(labels[partner], labels)
        assert sorted(partner.tolist()) == list(range(6))  # a permutation
        assert partner[5] == 5
        draws.add(tuple(partner.tolist()))
    assert len(draws) > 3


def test_the_draws_follow_algorithm_1():
    torch.manual_seed(0)
    partner = torch.arange(4000)
    d = draw(partner, 16, eta=10.0, like=torch.zeros(1))
    assert d.r.shape == (4000, 1) and d.scale.shape == d.shift.shape == (4000, 16)
    assert d.r.min() >= 0.5 and d.r.max() <= 1.0 and abs(d.r.mean().item() - 0.75) < 0.01  # U(0.5, 1)
    # scale = r1 Beta(2, 5) U(-1, 1) + 1 with r1 ~ U(0, 0.1): |scale - 1| < 0.1, mean 0.05 * 2/7 * 1/2
    assert (d.scale - 1).abs().max() < 0.1
    assert abs((d.scale - 1).abs().mean().item() - 0.05 * (2 / 7) * 0.5) < 0.0015
    # shift = r2 Beta(2, 5) N(0, 1): E|shift| = E[r2] E[Beta] E|N| = 0.05 * 2/7 * sqrt(2/pi)
    assert abs(d.shift.abs().mean().item() - 0.05 * (2 / 7) * math.sqrt(2 / math.pi)) < 0.002
    per_sample = (d.scale - 1).abs().amax(dim=1)  # one amplitude per sample, one U(-1, 1) per element
    assert per_sample.std() > 0.01 and ((d.scale - 1).std(dim=1) > 0).all()
    quiet = draw(partner, 16, eta=0.0, like=torch.zeros(1))
    assert torch.equal(quiet.scale, torch.ones(4000, 16)) and torch.equal(quiet.shift, torch.zeros(4000, 16))


def test_blend_streams_shares_the_partner_and_keeps_each_group_apart():
    torch.manual_seed(1)
    labels = torch.tensor([1, 0, 1, 0, 0])
    real, fake = torch.full((1, 6), 100.0), torch.full((1, 6), -100.0)
    base = torch.randn(5, 6)
    feats = {"content": base + torch.where(labels[:, None] == 1, real, fake), "synthesizer": 2 * base}
    out = blend_streams(feats, labels, eta=10.0)
    assert set(out) == {"content", "synthesizer"} and all(out[k].shape == (5, 6) for k in out)
    means = out["content"].mean(dim=1)
    assert (means[labels == 1] > 90).all() and (means[labels == 0] < -90).all()  # never mixed across real and fake
