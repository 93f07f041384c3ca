"""attentive.v1: layer weights, attentive statistics pooling over frames, and its input standardization."""

from __future__ import annotations

import pytest
import torch

from adfd_core.models import ModelError, build, make_config
from adfd_core.models.attentive import VARIANCE_FLOOR
from adfd_core.trainset import input_statistics


def _model(input_shape=(3, 10, 6), **fields):
    torch.manual_seed(0)
    return build("attentive.v1", make_config("attentive.v1", input_shape=input_shape, attention=5, hidden=7, **fields)).eval()


@pytest.mark.parametrize("input_shape", [(3, 10, 6), (10, 6)])
def test_uniform_attention_is_plain_mean_and_std_pooling(input_shape):
    model = _model(input_shape)
    net = model.net
    x = torch.randn(4, *input_shape) * 2 + 1
    with torch.no_grad():
        net.layer_logits.copy_(torch.randn_like(net.layer_logits))
        net.pooling.score[-1].weight.zero_()  # every frame scores the same
        frames = (x * net.layer_weights()[:, None, None]).sum(1) if len(input_shape) == 3 else x
        std, mean = torch.std_mean(frames, dim=1, correction=0)  # the whisper front-end's mean+std
        torch.testing.assert_close(net(x), net.head(torch.cat([mean, std], dim=1)), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(net.attention(x), torch.full((4, input_shape[-2]), 1 / input_shape[-2]))


def test_training_starts_from_uniform_attention():
    net = _model().net
    assert not net.pooling.score[-1].weight.any()
    with torch.no_grad():
        torch.testing.assert_close(net.attention(torch.randn(4, 3, 10, 6)), torch.full((4, 10), 0.1))


def test_attention_sums_to_one_and_follows_the_frames_when_they_are_reordered():
    model = _model()
    net = model.net
    x = torch.randn(4, 3, 10, 6)
    order = torch.randperm(10)
    with torch.no_grad():
        net.pooling.score[-1].weight.normal_()  # as training leaves it
        alpha = net.attention(x)
        assert alpha.shape == (4, 10) and torch.allclose(alpha.sum(1), torch.ones(4)) and bool((alpha > 0).all())
        assert float(alpha.std()) > 1e-3  # not uniform: the attention tells frames apart
        torch.testing.assert_close(net.attention(x[:, :, order]), alpha[:, order])
        torch.testing.assert_close(model(x[:, :, order]), model(x), atol=1e-5, rtol=1e-5)  # a set of frames: no order


def test_attention_on_some_frames_gives_their_mean_and_std():
    net = _model((10, 6)).net
    h = torch.randn(2, 10, 6)
    h[..., 1] = 0.0
    h[:, [2, 5, 7], 1] = 1.0  # channel 1 marks three frames
    with torch.no_grad():
        first, last = net.pooling.score[0], net.pooling.score[-1]
        for p in (*first.parameters(), *last.parameters()):
            p.zero_()
        first.weight[0, 1] = 10.0  # unit 0 is tanh(10) ~ 1 on a marked frame, 0 elsewhere
        last.weight[0, 0] = 50.0  # so marked frames score 50, the rest 0: all the attention on the three
        var, mean = torch.var_mean(h[:, [2, 5, 7]], dim=1, correction=0)
        std = var.clamp_min(VARIANCE_FLOOR).sqrt()  # channel 1, constant there, at the floor
        torch.testing.assert_close(net.pooling(h), torch.cat([mean, std], dim=1), atol=1e-5, rtol=1e-5)


def test_attention_learns_to_weigh_the_frames_that_carry_the_label():
    torch.manual_seed(0)
    n, t, d = 256, 10, 4
    y = torch.randint(0, 2, (n,))
    x = torch.randn(n, t, d)
    marked = torch.zeros(n, t, dtype=torch.bool)
    marked[torch.arange(n), torch.randint(0, t, (n,))] = True  # one frame of each row, anywhere
    x[..., 1] = torch.where(marked, 4.0, 0.0)  # channel 1 says which frame it is
    x[..., 0] = torch.where(marked, 3.0 * (2 * y[:, None] - 1), x[..., 0])  # only that frame tells the classes apart
    model = build("attentive.v1", make_config("attentive.v1", input_shape=(t, d), attention=8, hidden=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(300):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        on_marked = (model.net.attention(x) * marked).sum(1).mean()
        accuracy = (model(x).argmax(1) == y).float().mean()
    # Uniform attention would give the marked frame 0.1, and its plain mean tells the classes apart about 84 % of the time.
    assert on_marked > 0.3 and accuracy > 0.97


def test_standardization_shares_one_mean_and_std_per_layer_and_channel_over_the_frames():
    model = _model()
    assert model.mean.shape == model.std.shape == (3, 1, 6)
    x = torch.randn(20, 3, 10, 6) * torch.arange(1, 7) + torch.arange(10)[:, None]  # each frame position its own offset
    mean, std = input_statistics(x, tuple(model.mean.shape))
    torch.testing.assert_close(mean, x.mean(dim=(0, 2), keepdim=True)[0])
    torch.testing.assert_close(std, x.std(dim=(0, 2), keepdim=True, unbiased=False)[0])
    model.set_input_statistics(mean, std)
    seen = {}
    model.net.register_forward_pre_hook(lambda _, args: seen.setdefault("x", args[0]))
    with torch.no_grad():
        model(x)
    positions = seen["x"].mean(dim=(0, 1, 3))
    assert positions[-1] - positions[0] > 1.0  # the frames' offsets survive: not standardized away per position
    per_element = input_statistics(x)
    assert per_element[0].shape == (3, 10, 6)  # the default stays one statistic per element (cnn.v1's rows)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_shape": "512"}, r"input_shape must be \(T, D\) or \(L, T, D\) frame rows \(pooling=frames\), got \(512,\)"),
        ({"input_shape": "2,0,8"}, "input_shape must be positive"),
        ({"attention": "0"}, "attention must be >= 1, got 0"),
        ({"hidden": "-1"}, "hidden must be >= 0, got -1"),
        ({"dropout": "1.0"}, r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_config_values_are_refused(fields, message):
    with pytest.raises(ModelError, match=rf"^attentive.v1: {message}"):
        make_config("attentive.v1", fields)


def test_rows_of_another_shape_are_refused():
    with pytest.raises(ModelError, match=r"model expects input of shape \(batch, 3, 10, 6\), got \(2, 10, 6\)"):
        _model()(torch.randn(2, 10, 6))
