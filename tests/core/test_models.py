"""The model registry: every model's output shape and gradients, configs from text and JSON, ImageNet weights."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torchvision

from adfd_core.models import ModelError, available, build, config_from_dict, config_to_dict, entry, make_config, parameter_count
from adfd_core.models import config as configs
from adfd_core.models.vision import ARCHS, imagenet_cache_path

NAMES = [
    "cnn.v1", "rnn.v2", "crnn.v2", "resnet18.v1", "mobilenet_v3.v1", "efficientnet_b0.v1", "densenet121.v1",
    "shufflenet_v2.v1", "swin_t.v1", "convnext_tiny.v1", "googlenet.v1", "mnasnet.v1", "regnet.v1",
]  # fmt: skip


def _imagenet_layout(arch: str) -> torch.nn.Module:
    """A random torchvision model laid out as its published ImageNet weights are (1000 classes, aux heads)."""
    extra = {"aux_logits": True, "init_weights": True} if arch == "googlenet" else {}
    return getattr(torchvision.models, ARCHS[arch].builder)(weights=None, **extra)


WAVE_NAMES = ["fdl.v1", "wavespec.v1", "whisper-probe.v1"]
EMBEDDING_HEADS = ["mlp.v1", "logreg.v1", "layerweight.v1", "attentive.v1"]


def test_the_registry_holds_the_papers_models():
    assert available() == NAMES + EMBEDDING_HEADS + WAVE_NAMES
    assert all(entry(n).input_kind == "segments" and entry(n).default_feature == "whisper" for n in EMBEDDING_HEADS)
    assert all(entry(n).input_kind == "segments" and entry(n).default_feature == "cqt" for n in NAMES)
    assert all(entry(n).input_kind == "wave" and entry(n).default_feature == "wave" for n in WAVE_NAMES)


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ModelError, match=r"unknown model 'cnn\.v9'; valid names: cnn\.v1, rnn\.v2"):
        entry("cnn.v9")


@pytest.mark.parametrize("name", NAMES)
def test_every_model_maps_a_batch_to_two_logits_and_uses_every_parameter(name):
    torch.manual_seed(0)
    model = build(name, make_config(name))
    x = torch.randn(2, 3, 64, 64)
    model.train()
    model(x).logsumexp(1).sum().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]  # zero grads happen: stochastic depth
    assert not unused, unused
    model.eval()
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 2) and y.dtype == torch.float32 and torch.isfinite(y).all()
    with pytest.raises(ModelError, match=r"model expects input of shape \(batch, 3, 64, 64\), got \(3, 64, 64\)$"):
        model(torch.randn(3, 64, 64))  # a row without its batch dimension


def test_baseline_parameter_counts_are_table_one():
    conv = (3 * 9 + 1) * 32 + (32 * 9 + 1) * 64 + (64 * 9 + 1) * 128
    head = (256 + 1) * 2

    def bilstm(inputs, units):  # PyTorch LSTMs have two bias vectors per gate
        return 2 * 4 * units * (inputs + units + 2)

    lstms = lambda inputs: bilstm(inputs, 128) + bilstm(256, 64)  # noqa: E731
    assert parameter_count("cnn.v1") == conv + (128 * 8 * 8 + 1) * 256 + head == 2_191_170
    assert parameter_count("rnn.v2") == lstms(3 * 64) + (128 + 1) * 256 + head
    assert parameter_count("crnn.v2") == conv + lstms(128 * 8) + (128 + 1) * 256 + head


@pytest.mark.parametrize("name", ["rnn.v2", "crnn.v2"])
def test_recurrent_baselines_have_table_ones_relu_and_dropout_after_each_bilstm_and_dense_256(name):
    small = {"lstm": "8,4", "dense": "16", "dropout": "0.5", **({"channels": "4,8"} if name == "crnn.v2" else {})}
    net = build(name, make_config(name, small, input_shape=(3, 16, 16))).net
    # What the second BiLSTM, Dense 256 and Dense 2 read: each the output of a ReLU - Dropout 0.5 block.
    readers = {"second BiLSTM": net.lstm.layers[1], "Dense 256": net.head[0], "Dense 2": net.head[-1]}
    seen: dict[str, torch.Tensor] = {}
    for key, layer in readers.items():
        layer.register_forward_pre_hook(lambda _m, args, key=key: seen.__setitem__(key, args[0].detach()))
    x = torch.randn(64, 3, 16, 16)
    zeros = {}
    for training in (False, True):
        torch.manual_seed(0)
        with torch.no_grad():
            net.train(training)(x)
        assert all((v >= 0).all() for v in seen.values()), "a ReLU precedes each reader"
        zeros[training] = {key: (v == 0).float().mean().item() for key, v in seen.items()}
    for key in readers:  # dropout zeroes about half of what the ReLU let through, in training only
        kept_eval, kept_train = 1 - zeros[False][key], 1 - zeros[True][key]
        assert kept_train == pytest.approx(kept_eval / 2, abs=0.1), (key, zeros)


def test_each_backbone_is_the_variant_its_title_and_the_readme_name():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for key, arch in ARCHS.items():
        assert re.sub(r"[^a-z0-9]", "", arch.title.lower()) == arch.builder.replace("_", ""), (arch.title, arch.builder)
        assert f"`{key}.v1` ({arch.title})" in readme, key


@pytest.mark.parametrize("arch", ["resnet18", "swin_t"])
def test_vision_models_have_the_backbones_parameters_with_a_two_class_head(arch):
    reference = getattr(torchvision.models, ARCHS[arch].builder)(weights=None, num_classes=2)
    assert parameter_count(f"{arch}.v1") == sum(p.numel() for p in reference.parameters())


@pytest.mark.parametrize(
    ("name", "shape", "fields"),
    [
        ("cnn.v1", (1, 16, 40), {}),
        ("rnn.v2", (2, 10, 7), {}),
        ("crnn.v2", (1, 24, 33), {"channels": "8,16"}),
        ("resnet18.v1", (1, 40, 50), {"input_size": "none"}),
        ("convnext_tiny.v1", (2, 20, 20), {"input_size": "48"}),
    ],
)
def test_models_take_the_row_shape_of_their_config(name, shape, fields):
    model = build(name, make_config(name, fields, input_shape=shape)).eval()
    with torch.no_grad():
        assert model(torch.randn(3, *shape)).shape == (3, 2)


def test_segment_models_standardize_their_input_with_the_training_statistics():
    torch.manual_seed(0)
    model = build("cnn.v1", make_config("cnn.v1", input_shape=(1, 8, 8))).eval()
    mean, std = torch.randn(1, 8, 8), torch.rand(1, 8, 8) + 0.5
    x = torch.randn(2, 1, 8, 8) * std + mean
    with torch.no_grad():
        raw = model(x)
        model.set_input_statistics(mean, std)
        assert torch.equal(model(x), model.net((x - mean) / std)) and not torch.equal(model(x), raw)


def test_make_config_parses_set_values_to_the_field_types():
    c = make_config("crnn.v2", {"input_shape": "1, 32,48", "dropout": "0.5", "dense": "128", "lstm": "32"})
    assert (c.input_shape, c.dropout, c.dense, c.lstm, c.channels) == ((1, 32, 48), 0.5, 128, (32,), (32, 64, 128))
    v = make_config("resnet18.v1", {"input_size": "None", "pretrained": "imagenet"})
    assert v.input_size is None and v.pretrained == "imagenet"
    assert make_config("resnet18.v1", {"input_size": "none"}, input_size=96).input_size == 96  # fields win
    assert make_config("resnet18.v1", {"pretrained": "none"}).pretrained is None


@dataclass(frozen=True)
class _Every:
    flag: bool = False
    count: int = 1
    rate: float = 0.5
    label: str = "x"
    sizes: tuple[int, ...] = (1,)
    maybe: int | None = None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"flag": "true"}, {"flag": True}),
        ({"flag": "0"}, {"flag": False}),
        ({"flag": "FALSE", "count": " 7 ", "rate": "2"}, {"flag": False, "count": 7, "rate": 2.0}),
        ({"label": "none", "sizes": "4,5,6", "maybe": "3"}, {"label": "none", "sizes": (4, 5, 6), "maybe": 3}),
        ({"maybe": "none", "sizes": [2], "rate": 1}, {"maybe": None, "sizes": (2,), "rate": 1.0}),
    ],
)
def test_the_parser_handles_every_field_type(values, expected):
    config = configs.make("t.v1", _Every, values, text=True)
    assert {k: getattr(config, k) for k in expected} == expected
    assert all(type(getattr(config, k)) is type(v) for k, v in expected.items())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"flag": "yes please"}, r"t\.v1: flag must be true or false \(1 or 0\), got 'yes please'"),
        ({"count": "2.5"}, r"count must be an integer, got '2\.5'"),
        ({"count": True}, r"count must be an integer, got True"),
        ({"rate": "nan"}, r"rate must be a finite number"),
        ({"sizes": "1,x"}, r"sizes must be comma-separated integers"),
        ({"maybe": "many"}, r"maybe must be an integer or none"),
        ({"label": 3}, r"label must be a string, got 3"),
        ({"colour": "red"}, r"unknown config key 'colour'; valid keys: flag, count, rate, label, sizes, maybe"),
    ],
)
def test_the_parser_refuses_bad_values_naming_the_key(values, message):
    with pytest.raises(ModelError, match=message):
        configs.make("t.v1", _Every, values, text=True)


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("cnn.v1", {"dropuot": "0.1"}, r"cnn\.v1: unknown config key 'dropuot'; valid keys: input_shape, channels, dropout, dense"),
        ("cnn.v1", {"dropout": "1.5"}, r"cnn\.v1: dropout must be in \[0, 1\), got 1\.5"),
        ("cnn.v1", {"input_shape": "3,64"}, r"input_shape must be 3 comma-separated integers, got '3,64'"),
        ("cnn.v1", {"input_shape": "3,4,64"}, r"F and T must be >= 8 to survive 3 2x2 pools"),
        ("rnn.v2", {"lstm": ""}, r"lstm must be"),
        ("resnet18.v1", {"input_size": "16"}, r"input_size must be >= 32 or none, got 16"),
        ("resnet18.v1", {"input_size": "none", "input_shape": "3,16,64"}, r"F and T must be >= 32 without resizing"),
    ],
)
def test_make_config_refuses_bad_overrides(name, values, message):
    with pytest.raises(ModelError, match=message):
        make_config(name, values)


@pytest.mark.parametrize("name", NAMES)
def test_configs_round_trip_through_json(name):
    config = make_config(name, input_shape=(2, 40, 48))
    stored = json.loads(json.dumps(config_to_dict(config)))
    assert stored["input_shape"] == [2, 40, 48]
    assert config_from_dict(name, stored) == config


def test_config_from_dict_refuses_missing_unknown_and_mistyped_keys():
    stored = config_to_dict(make_config("cnn.v1"))
    with pytest.raises(ModelError, match=r"cnn\.v1: config lacks key\(s\): dense"):
        config_from_dict("cnn.v1", {k: v for k, v in stored.items() if k != "dense"})
    with pytest.raises(ModelError, match=r"unknown config key 'colour'"):
        config_from_dict("cnn.v1", {**stored, "colour": 1})
    with pytest.raises(ModelError, match=r"dense must be an integer, got '256'"):  # stored JSON is not --set text
        config_from_dict("cnn.v1", {**stored, "dense": "256"})


def test_build_refuses_another_models_config():
    with pytest.raises(ModelError, match=r"rnn\.v2 takes a RNNConfig, got CNNConfig"):
        build("rnn.v2", make_config("cnn.v1"))


@pytest.mark.parametrize("arch", list(ARCHS))
def test_imagenet_weights_load_into_every_backbone_but_the_head(arch, tmp_path):
    layout = _imagenet_layout(arch).state_dict()
    published = {k: torch.rand_like(v) + 3 if v.is_floating_point() else v for k, v in layout.items()}
    on_disk = published
    if arch == "densenet121":  # the published file has old key names and no BatchNorm counters
        renamed = {k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v for k, v in published.items()}
        on_disk = {k: v for k, v in renamed.items() if not k.endswith("num_batches_tracked")}
        assert on_disk.keys() != published.keys()
    torch.save(on_disk, tmp_path / "w.pth")
    loaded = build(f"{arch}.v1", make_config(f"{arch}.v1", pretrained=str(tmp_path / "w.pth"))).net.backbone.state_dict()
    head = ARCHS[arch].skip[0]
    assert loaded.keys() == build(f"{arch}.v1", make_config(f"{arch}.v1")).net.backbone.state_dict().keys()
    assert {k for k in loaded if k.startswith(head)} == {head + "weight", head + "bias"}
    assert loaded[head + "weight"].shape[0] == 2 and loaded[head + "weight"].max() < 3  # the new head: not from the file
    body = [k for k in loaded if not k.startswith(head)]
    assert body and all(torch.equal(loaded[k], published[k]) for k in body)


def test_pretrained_from_the_hub_cache_and_its_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = ARCHS["resnet18"]
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert imagenet_cache_path(spec) == expected
    with pytest.raises(ModelError) as err:
        build("resnet18.v1", make_config("resnet18.v1", pretrained="imagenet"))
    assert f"download https://download.pytorch.org/models/resnet18-f37072fd.pth to {expected}" in str(err.value)
    expected.parent.mkdir(parents=True)
    weights = _imagenet_layout("resnet18").state_dict()
    torch.save(weights, expected)
    model = build("resnet18.v1", make_config("resnet18.v1", pretrained="imagenet"))
    assert torch.equal(model.net.backbone.conv1.weight, weights["conv1.weight"])
    without = build("resnet18.v1", make_config("resnet18.v1", pretrained="imagenet"), pretrained=False)
    assert not torch.equal(without.net.backbone.conv1.weight, weights["conv1.weight"])


def test_pretrained_files_that_are_missing_foreign_or_for_another_backbone_are_refused(tmp_path):
    def attempt(path):
        return build("resnet18.v1", make_config("resnet18.v1", pretrained=str(path)))

    with pytest.raises(ModelError, match=rf"weights file {tmp_path}/absent\.pth not found"):
        attempt(tmp_path / "absent.pth")
    (tmp_path / "noise.pth").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ModelError, match=r"noise\.pth is not a torch state dict"):
        attempt(tmp_path / "noise.pth")
    torch.save({"weights": [1, 2]}, tmp_path / "list.pth")
    with pytest.raises(ModelError, match=r"list\.pth is not a state dict \(a mapping of names to tensors\)"):
        attempt(tmp_path / "list.pth")
    torch.save(_imagenet_layout("shufflenet_v2").state_dict(), tmp_path / "other.pth")
    with pytest.raises(ModelError, match=r"other\.pth does not fit ResNet-18: missing: conv1\.weight, bn1\.weight, .* and \d+ more; unexpected: "):
        attempt(tmp_path / "other.pth")


def test_pretrained_files_are_read_without_unpickling_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("ran code",))

    torch.save({"conv1.weight": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(ModelError, match=r"evil\.pth is not a torch state dict"):
        build("resnet18.v1", make_config("resnet18.v1", pretrained=str(tmp_path / "evil.pth")))
