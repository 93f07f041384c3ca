"""The light back-ends for embedding rows: logistic regression and learned layer weights."""

from __future__ import annotations

import torch

from adfd_core.models import build, make_config, parameter_count


def test_logreg_is_linear_in_the_standardized_row():
    model = build("logreg.v1", make_config("logreg.v1", input_shape=(2, 6))).eval()
    model.set_input_statistics(torch.randn(2, 6), torch.rand(2, 6) + 0.5)
    a, b = torch.randn(3, 2, 6), torch.randn(3, 2, 6)
    with torch.no_grad():
        mixed = model(0.3 * a + 0.7 * b)
        assert torch.allclose(mixed, 0.3 * model(a) + 0.7 * model(b), atol=1e-5)
    assert parameter_count("logreg.v1") == (512 + 1) * 2


def test_layer_weights_pick_the_layer_that_carries_the_label():
    torch.manual_seed(0)
    n, layers, width = 256, 4, 8
    y = torch.randint(0, 2, (n,))
    x = torch.randn(n, layers, width)
    x[:, 2, 0] += 3.0 * (2 * y - 1)  # only layer 2 tells the classes apart
    model = build("layerweight.v1", make_config("layerweight.v1", input_shape=(layers, width), hidden=0))
    net = model.net
    assert torch.allclose(net.layer_weights(), torch.full((layers,), 1 / layers))  # equal at the start
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    weights = net.layer_weights().detach()
    assert weights.argmax() == 2 and weights[2] > 0.5 and abs(weights.sum() - 1) < 1e-6
    with torch.no_grad():
        net.layer_logits.copy_(torch.tensor([0.0, 0.0, 50.0, 0.0]))  # all weight on layer 2
        assert torch.allclose(net(x), net.head(x[:, 2]), atol=1e-5)
