"""The feature decomposition detector: shapes per ablation, loss terms per ablation, gradient routing, feature
blending by hand, pretrained weights, training."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict

import pytest
import torch
from torch.nn import functional as F

from adfd_core.models import config as configs
from adfd_core.models.config import ModelError
from adfd_core.losses import contrastive_loss, uniform_cross_entropy
from adfd_core.models import fdl as fdl_module
from adfd_core.models.fdl import FDL, FDLConfig, f0_classes, shuffled_labels

SR = 16_000  # Hz
CROP = 0.5  # s
S = round(CROP * SR)
SYNTHS = ("tts_a", "vc_b")
ALL_TERMS = {"cls", "shuffle", "synth", "synth_contrastive", "content", "contrastive", "adversarial"}
# Each ablation of the paper as the --set fields that make it (recipes/fdl_ablations.sh) and the loss terms it trains.
ABLATIONS = {
    "full": ({}, ALL_TERMS),
    "beta0-only": (
        {"synth_weight": 0.0, "content_weight": 0.0, "contrastive_weight": 0.0, "adversarial_weight": 0.0},
        {"cls", "shuffle"},
    ),
    "no-synth-loss": ({"synth_weight": 0.0}, ALL_TERMS - {"synth", "synth_contrastive"}),
    "no-content-loss": ({"content_weight": 0.0}, ALL_TERMS - {"content"}),
    "no-contrastive-loss": ({"contrastive_weight": 0.0}, ALL_TERMS - {"contrastive"}),
    "single-stream": ({"streams": "single"}, {"cls", "contrastive"}),
    "no-synth-stream": ({"streams": "content"}, {"cls", "content", "contrastive"}),
    "no-content-stream": ({"streams": "synthesizer"}, {"cls", "synth", "synth_contrastive", "contrastive"}),
    "no-adversarial": ({"adversarial": False}, ALL_TERMS - {"adversarial"}),
    "no-blending": ({"feature_blending": False}, ALL_TERMS),
    "no-shuffle": ({"feature_shuffle": False}, ALL_TERMS - {"shuffle"}),
    "no-feature-augmentation": ({"feature_blending": False, "feature_shuffle": False}, ALL_TERMS - {"shuffle"}),
    "no-con-s": ({"synth_contrastive": False}, ALL_TERMS - {"synth_contrastive"}),
    "no-con-cls": ({"cls_contrastive": False}, ALL_TERMS - {"contrastive"}),
    "no-pseudo-labels": ({"content_task": "none"}, ALL_TERMS - {"content"}),
    "f0-content-task": ({"content_task": "f0"}, ALL_TERMS),
}


def tiny(**fields) -> FDL:
    torch.manual_seed(0)
    return FDL(FDLConfig(crop_seconds=CROP, width=8, synthesizers=SYNTHS, **fields))


def batch(y=(1, 0, 0, 1, 0), seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(y)
    n = len(y)
    synth = torch.where(y == 1, 0, torch.randint(1, len(SYNTHS) + 1, (n,), generator=g))
    return {
        "x": 0.1 * torch.randn(n, S, generator=g),
        "y": y,
        "synth": synth,
        "codec": torch.randint(0, 10, (n,), generator=g),
        "speed": torch.randint(0, 16, (n,), generator=g),
    }


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_every_ablation_gives_two_logits_and_trains_every_parameter(name):
    model = tiny(**ABLATIONS[name][0])
    b = batch()
    model.train()
    loss, parts = model.training_loss(b)
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, unused  # DDP would stop on unused parameters
    assert all(isinstance(v, float) and math.isfinite(v) for v in parts.values())
    model.eval()
    with torch.no_grad():
        logits = model(b["x"])
        again = model(b["x"].reshape(5, 1, 1, S))
    assert logits.shape == (5, 2) and torch.isfinite(logits).all()
    torch.testing.assert_close(logits, again)
    z = logits[:, 1] - logits[:, 0]
    torch.testing.assert_close(logits.softmax(1)[:, 1], torch.sigmoid(z))
    torch.testing.assert_close(logits.sum(1), torch.zeros(5))


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_each_ablation_trains_its_terms_and_keeps_the_input_augmentation(name):
    fields, expected = ABLATIONS[name]
    model = tiny(**fields)
    assert set(model.config.active_terms) == expected
    assert set(model.train().loss_terms(batch())) == expected
    assert set(model.eval().loss_terms(batch())) == expected - {"shuffle"}  # shuffle in training only
    assert model.input_augmentation == ("codec", "speed")  # no ablation silently drops the speed and codec crops
    speed_codec = "content" in expected and model.config.content_task == "speed_codec"
    wants_synth = bool(expected & {"synth", "synth_contrastive"})
    assert model.batch_fields == ("synth",) * wants_synth + ("codec", "speed") * speed_codec


def test_ablations_differ_from_the_full_model_only_in_what_they_name():
    full = FDLConfig()
    for name, (fields, _) in ABLATIONS.items():
        changed = {k for k, v in asdict(FDLConfig(**fields)).items() if v != asdict(full)[k]}
        assert changed == set(fields), name


def test_the_input_augmentation_is_its_own_switch():
    model = tiny(input_augmentation=False, content_task="none")
    assert model.input_augmentation == () and "content" not in model.config.active_terms
    with pytest.raises(ModelError, match="content_task='speed_codec' learns the input augmentation's labels"):
        FDLConfig(input_augmentation=False)


def test_f0_content_task_predicts_the_crops_pitch_class():
    t = torch.arange(S) / SR
    low, high = (0.3 * torch.sin(2 * math.pi * f * t) for f in (110.0, 440.0))
    classes = f0_classes(torch.stack([low, high, low]))
    assert classes[0] == classes[2] and classes[1] > classes[0] and classes.max() < fdl_module.F0_CLASSES
    model = tiny(content_task="f0").train()
    assert model.f0_head is not None and model.codec_head is None and "codec" not in model.batch_fields
    b = batch()
    b["x"] = torch.stack([low, high, low, high, low])
    del b["codec"], b["speed"]  # the F0 task needs no loader labels
    feats = model.latent(b["x"])["content"]
    expected = F.cross_entropy(model.f0_head(feats), f0_classes(b["x"]))
    torch.testing.assert_close(model.loss_terms(b)["content"], expected)


def test_the_adversarial_term_is_the_synthesizer_head_against_uniform_on_content_features():
    model = tiny().train()
    b = batch()
    terms = model.loss_terms(b)
    fc = model.latent(b["x"])["content"]  # training-mode BatchNorm: the same batch statistics
    expected = uniform_cross_entropy(model.synth_head(fc))
    torch.testing.assert_close(terms["adversarial"], expected)
    assert not hasattr(model, "adversary_head")
    with torch.no_grad():
        model.synth_head.weight.mul_(3.0)
    assert not torch.isclose(model.loss_terms(b)["adversarial"], terms["adversarial"])


def test_the_adversarial_term_reaches_only_the_content_stream():
    model = tiny().train()
    model.loss_terms(batch())["adversarial"].backward()
    reached = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert reached and all(n.startswith("content_block.") for n in reached), sorted(reached)
    assert any(n.startswith("content_block.0.conv1") for n in reached)
    assert model.synth_head.weight.grad is None and model.conv1.weight.grad is None


def test_the_classification_contrastive_loss_sees_unblended_features():
    model = tiny().train()
    b = batch()
    torch.manual_seed(8)
    terms = model.loss_terms(b)
    unblended = model.latent(b["x"])["classifier"]
    torch.testing.assert_close(terms["contrastive"], contrastive_loss(unblended, b["y"], 0.4))


def test_shuffled_pairs_are_bona_fide_only_when_both_sources_are():
    y = torch.tensor([1, 1, 0, 0, 1])
    perm = torch.tensor([1, 2, 3, 4, 0])  # F_c of i with F_s of perm[i]
    assert shuffled_labels(y, perm).tolist() == [1, 0, 0, 0, 1]


def test_the_shuffle_term_is_a_focal_loss_on_mixed_pairs():
    model = tiny().train()
    with_shuffle = model.loss_terms(batch())
    assert "shuffle" in with_shuffle
    assert "shuffle" not in model.eval().loss_terms(batch())  # training only
    assert "shuffle" not in tiny(feature_shuffle=False).train().loss_terms(batch())


def test_blending_blends_both_streams_within_the_real_and_the_fake_group(monkeypatch):
    seen = {}

    def record(features, labels, eta):
        seen.update(streams=set(features), labels=labels.tolist(), eta=eta)
        return {k: v + 1.0 for k, v in features.items()}

    monkeypatch.setattr(fdl_module, "blend_streams", record)
    b = batch()
    model = tiny().train()
    blended = model.loss_terms(b)["cls"]
    assert seen == {"streams": {"content", "synthesizer"}, "labels": b["y"].tolist(), "eta": 10.0}
    feats = model.latent(b["x"])
    z = model.classifier(torch.cat([feats["content"] + 1.0, feats["synthesizer"] + 1.0], dim=1)).squeeze(1)
    torch.testing.assert_close(blended, F.binary_cross_entropy_with_logits(z, b["y"].float()))
    seen.clear()
    model.eval().loss_terms(b)
    assert not seen  # training only
    tiny(streams="single").train().loss_terms(b)
    assert seen["streams"] == {"shared"}


def _names(model: FDL) -> set[str]:
    return {n.split(".")[0] for n, _ in model.named_parameters()}


def test_switching_features_off_removes_their_modules():
    trunk = {"conv1", "bn1", "layer1", "layer2", "layer3", "classifier"}
    full = tiny()
    assert _names(full) == trunk | {"synth_block", "content_block", "synth_head", "codec_head", "speed_head"}
    assert _names(tiny(adversarial=False)) == _names(full)
    assert _names(tiny(streams="synthesizer")) == trunk | {"synth_block", "synth_head"}
    assert _names(tiny(streams="content")) == trunk | {"content_block", "codec_head", "speed_head"}
    assert _names(tiny(streams="single")) == trunk | {"shared_block"}
    assert _names(tiny(content_task="f0")) == trunk | {"synth_block", "content_block", "synth_head", "f0_head"}
    assert _names(tiny(content_task="none")) == trunk | {"synth_block", "content_block", "synth_head"}
    assert _names(tiny(synth_weight=0.0, adversarial=False)) == trunk | {"synth_block", "content_block", "codec_head", "speed_head"}
    fixed = tiny(synth_weight=0.0)  # the adversarial term alone uses the synthesizer head: a fixed random one
    assert not any(p.requires_grad for p in fixed.synth_head.parameters()) and tiny().synth_head.weight.requires_grad
    classifier_inputs = {s: tiny(streams=s).classifier.in_features for s in ("both", "synthesizer", "content", "single")}
    assert classifier_inputs == {"both": 128, "synthesizer": 64, "content": 64, "single": 64}


def test_training_loss_weights_each_term_by_its_config_field():
    weights = {"cls_weight": 1.5, "synth_weight": 0.25, "content_weight": 0.75, "contrastive_weight": 2.0, "adversarial_weight": 0.125}
    model = tiny(**weights).train()
    torch.manual_seed(6)
    total, parts = model.training_loss(batch())
    field = {
        "cls": "cls_weight", "shuffle": "cls_weight", "synth": "synth_weight", "synth_contrastive": "synth_weight",
        "content": "content_weight", "contrastive": "contrastive_weight", "adversarial": "adversarial_weight",
    }  # fmt: skip
    assert set(parts) == set(field)
    assert total.item() == pytest.approx(sum(weights[field[k]] * v for k, v in parts.items()), rel=1e-5)


def test_a_few_adam_steps_separate_tones_from_noise():
    torch.manual_seed(7)
    t = torch.arange(S) / SR
    tones = torch.stack([0.3 * torch.sin(2 * math.pi * f * t) for f in (300.0, 520.0, 800.0)])
    b = batch(y=(1, 1, 1, 0, 0, 0))
    b["x"] = torch.cat([tones, 0.3 * torch.randn(3, S)])
    model = tiny()

    def eval_bce() -> float:
        model.eval()
        with torch.no_grad():
            logits = model(b["x"])
        return F.cross_entropy(logits, b["y"]).item()

    before = eval_bce()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        model.train()
        optimizer.zero_grad()
        loss, _ = model.training_loss(b)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert eval_bce() < before


def test_eval_forward_is_deterministic():
    model = tiny().eval()
    x = batch()["x"]
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


# pretrained weights --------------------------------------------------------------------------


def _resnet_state(model: FDL) -> dict[str, torch.Tensor]:
    """A torchvision-named ResNet-18 state dict of model's width: random weights, a 3-channel conv1 and an fc."""
    g = torch.Generator().manual_seed(11)
    state = {}
    for key, value in model.state_dict().items():
        module, _, rest = key.partition(".")
        if module in ("conv1", "bn1", "layer1", "layer2", "layer3"):
            state[key] = value
        elif module == "synth_block":
            state[f"layer4.{rest}"] = value
    state = {k: torch.rand(v.shape, generator=g) if v.is_floating_point() else v.clone() for k, v in state.items()}
    state["conv1.weight"] = torch.rand(8, 3, 7, 7, generator=g)
    state["fc.weight"], state["fc.bias"] = torch.rand(1000, 64, generator=g), torch.rand(1000, generator=g)
    return state


def _check_loaded(model: FDL, state: dict[str, torch.Tensor]) -> None:
    own = model.state_dict()
    torch.testing.assert_close(own["conv1.weight"], state["conv1.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(own["layer2.0.downsample.0.weight"], state["layer2.0.downsample.0.weight"])
    torch.testing.assert_close(own["bn1.running_var"], state["bn1.running_var"])
    for block in ("synth_block", "content_block"):
        torch.testing.assert_close(own[f"{block}.1.conv2.weight"], state["layer4.1.conv2.weight"])
        torch.testing.assert_close(own[f"{block}.0.bn1.running_mean"], state["layer4.0.bn1.running_mean"])


def test_pretrained_pt_nested_and_prefixed(tmp_path, caplog):
    state = _resnet_state(tiny())
    path = tmp_path / "wav2clip.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.audio.{k}": v for k, v in state.items()}}, path)
    with caplog.at_level(logging.INFO, logger="adfd_core.models.fdl"):
        model = tiny(pretrained=str(path))
    _check_loaded(model, state)
    assert "fc.weight" in caplog.text
    assert not torch.allclose(model.state_dict()["conv1.weight"], tiny().state_dict()["conv1.weight"])


def test_pretrained_safetensors_and_missing_keys(tmp_path, caplog):
    from safetensors.torch import save_file

    state = _resnet_state(tiny())
    path = tmp_path / "resnet.safetensors"
    save_file(state, str(path))
    _check_loaded(tiny(pretrained=str(path)), state)
    partial = tmp_path / "trunk_only.safetensors"
    save_file({k: v for k, v in state.items() if not k.startswith("layer4.")}, str(partial))
    with caplog.at_level(logging.WARNING, logger="adfd_core.models.fdl"):
        model = tiny(pretrained=str(partial))
    assert "lack" in caplog.text and "synth_block.0.conv1.weight" in caplog.text
    torch.testing.assert_close(model.state_dict()["synth_block.0.conv1.weight"], tiny().state_dict()["synth_block.0.conv1.weight"])


def test_a_torchvision_resnet18_state_dict_loads(tmp_path):
    import torchvision  # here: importing it costs ~1.5 s

    torch.manual_seed(12)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    model = FDL(FDLConfig(crop_seconds=CROP, pretrained=str(path)))
    _check_loaded(model, state)


def test_pretrained_errors_name_the_file(tmp_path):
    with pytest.raises(ModelError, match=r"pretrained weights .*absent\.pt not found"):
        tiny(pretrained=str(tmp_path / "absent.pt"))
    for name in ("junk.pt", "junk.safetensors"):
        (tmp_path / name).write_bytes(b"not a weights file")
        with pytest.raises(ModelError, match=rf"pretrained weights .*{name} cannot be read"):
            tiny(pretrained=str(tmp_path / name))
    torch.save({"encoder.proj.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match=r"other\.pt hold no ResNet-18 keys"):
        tiny(pretrained=str(tmp_path / "other.pt"))
    torch.save(_resnet_state(tiny()), tmp_path / "width8.pt")
    with pytest.raises(ModelError, match=r"width8\.pt: .* has shape .*width=16"):
        FDL(FDLConfig(crop_seconds=CROP, width=16, pretrained=str(tmp_path / "width8.pt")))
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(ModelError, match=r"weights\.npz: unknown file type \.npz"):
        tiny(pretrained=str(tmp_path / "weights.npz"))


# config and input checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"streams": "dual"}, r"streams must be one of both, single, synthesizer, content, got 'dual'"),
        ({"content_task": "pitch"}, r"content_task must be one of speed_codec, f0, none, got 'pitch'"),
        ({"synth_weight": "-0.5"}, r"synth_weight must be >= 0, got -0.5"),
        ({"margin": "1"}, r"margin must be in \[-1, 1\), got 1.0"),
        ({"synthesizers": "a,a"}, r"synthesizers must be distinct"),
        ({"blend_eta": "-1"}, r"blend_eta must be >= 0"),
    ],
)
def test_config_refuses_bad_values_from_the_command_line(fields, message):
    with pytest.raises(ModelError, match=message):
        configs.make("fdl.v1", FDLConfig, fields, text=True)


def test_config_defaults_are_the_papers():
    c = FDLConfig()
    assert (c.crop_seconds, c.width, c.streams, c.margin, c.blend_eta) == (3.0, 64, "both", 0.4, 10.0)
    assert (c.cls_weight, c.synth_weight, c.content_weight, c.contrastive_weight) == (1.0, 0.5, 0.5, 0.5)
    assert (c.focal_alpha, c.focal_gamma) == (0.25, 2.0)
    assert c.adversarial and c.feature_blending and c.feature_shuffle and c.cls_contrastive and c.synth_contrastive
    assert c.content_task == "speed_codec" and c.input_augmentation


def test_bad_inputs_and_labels_are_clear_errors():
    model = tiny().train()
    with pytest.raises(ModelError, match=rf"fdl expects {S} samples per crop \(0.5 s at 16 kHz\), got input of shape \(2, 100\)"):
        model(torch.zeros(2, 100))
    b = batch()
    b["synth"][1] = 3  # two synthesizers: classes 0..2
    with pytest.raises(ModelError, match=r"batch\['synth'\] must hold classes 0..2, got 0..3"):
        model.training_loss(b)
    b = batch()
    del b["codec"]
    with pytest.raises(ModelError, match=r"fdl training needs batch\['codec'\]"):
        model.training_loss(b)
