"""WaveSpec with a tiny Wav2Vec2 saved to a temporary folder: scales, alignment, loss, training, freezing, files, errors.

The tiny encoder: hidden 32, 4 layers, 2 heads, a 3-layer conv extractor of total stride 320
(50 frames/s, like XLS-R) and receptive field 325 samples; crops are 1 s (16000 samples).
"""

from __future__ import annotations

import dataclasses
import json
import math

import huggingface_hub.constants
import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2Model

from adfd_core import frontends
from adfd_core.modelfile import ModelFile, load_model, save_model
from model_factory import TINY_ENCODER
from adfd_core.models.config import ModelError
from adfd_core.models.wavespec import (
    XLSR_300M,
    WaveEncoder,
    WaveSpec,
    WaveSpecConfig,
    build_encoder,
    encoder_json,
    frame_positions,
    resample_frames,
    xlsr_300m_encoder_config,
)

SAMPLES = 16_000  # 1-s crops
FRAMES = 49  # Wav2Vec2 frames of 16000 samples: (16000 - 10) // 5 + 1 = 3199 -> (3199 - 8) // 8 + 1 = 399 -> 49
CQT_FRAMES = 64  # 1 + ceil(16000 / 256)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    """A seeded tiny Wav2Vec2Model saved with save_pretrained, as a downloaded model folder is."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    Wav2Vec2Model(Wav2Vec2Config(**TINY_ENCODER)).save_pretrained(folder)
    return folder


def tiny(encoder_dir, **fields) -> WaveSpecConfig:
    small = {"crop_seconds": 1.0, "pretrained": str(encoder_dir), "layers": (1, 2, 3), "unet_channels": (4, 8, 16),
             "fusion_dim": 16, "embedding_dim": 2}  # fmt: skip
    return WaveSpecConfig(**{**small, **fields})


def waves(batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, SAMPLES, generator=g)


def test_every_scale_has_the_wave_frames_and_the_fusion_width(encoder_dir):
    model = WaveSpec(tiny(encoder_dir)).eval()
    x = waves(3)
    with torch.no_grad():
        scales = model.scales(x)
        levels = model.unet(model.frontend(x))
        logits = model(x)
        assert torch.allclose(model(x.reshape(3, 1, 1, SAMPLES)), logits)
    assert len(scales) == 3
    assert all(t.shape == (3, FRAMES, 16) for scale in scales for t in scale)
    assert [tuple(m.shape) for m in levels] == [(3, 4, 96, CQT_FRAMES), (3, 8, 48, CQT_FRAMES // 2), (3, 16, 24, CQT_FRAMES // 4)]
    assert logits.shape == (3, 2) and torch.isfinite(logits).all()
    fused = scales[0].fused  # a per-channel convex mix of the two modalities
    low, high = torch.minimum(scales[0].wave, scales[0].spec), torch.maximum(scales[0].wave, scales[0].spec)
    assert ((fused >= low - 1e-6) & (fused <= high + 1e-6)).all()
    expects = r"model expects input of shape \(batch, 16000\) or \(batch, 1, 1, 16000\), got "
    with pytest.raises(ModelError, match=expects + r"\(3, 8000\)"):
        model(x[:, :8000])
    with pytest.raises(ModelError, match=expects + r"\(3, 2, 1, 16000\)"):
        model(x[:, None, None].repeat(1, 2, 1, 1))


def test_the_deepest_scale_is_the_encoders_final_output(encoder_dir):
    model = WaveSpec(tiny(encoder_dir)).eval()
    x = waves(2)
    with torch.no_grad():
        ours = model.wave_encoder(x)
        theirs = model.wave_encoder.model(x).last_hidden_state
    assert len(model.wave_encoder.model.encoder.layers) == 3  # cut to the deepest layer used
    assert [tuple(h.shape) for h in ours] == [(2, FRAMES, 32)] * 3
    assert torch.allclose(ours[-1], theirs, atol=1e-5)
    assert not torch.allclose(ours[0], ours[1])


@pytest.mark.parametrize("reduction", [1, 2, 4])
def test_spectrogram_frames_are_resampled_onto_the_wave_frame_centres(reduction):
    """A spectrogram level whose value is each frame's centre time must read, at every waveform
    frame, that frame's centre time (XLS-R: stride 320, receptive field 400 -> centre 199.5)."""
    hop, n_spec = 256, 251 // reduction
    spec_centres = hop * (reduction * torch.arange(n_spec, dtype=torch.float64) + (reduction - 1) / 2)
    spec = spec_centres.float()[None, :, None].repeat(2, 1, 3)
    positions = frame_positions(199, 320, 199.5, hop, reduction)
    got = resample_frames(spec, positions)
    wave_centres = (320 * torch.arange(199, dtype=torch.float64) + 199.5).clamp(spec_centres[0], spec_centres[-1])
    assert got.shape == (2, 199, 3)
    assert torch.allclose(got[0, :, 0].double(), wave_centres, atol=0.05)  # samples


def test_the_encoder_geometry_comes_from_its_conv_stack(encoder_dir):
    tiny_encoder = WaveSpec(tiny(encoder_dir)).wave_encoder  # kernels 10, 8, 8, strides 5, 8, 8: field 325
    assert (tiny_encoder.stride, tiny_encoder.centre) == (320, 162.0)
    with torch.device("meta"):
        xlsr = WaveEncoder(build_encoder(xlsr_300m_encoder_config(), 24), (8, 16, 24))
    assert (xlsr.stride, xlsr.centre) == (320, 199.5)


def test_the_loss_is_cross_entropy_plus_the_weighted_single_center_loss(encoder_dir):
    model = WaveSpec(tiny(encoder_dir, center_weight=0.5))
    with torch.no_grad():
        model.center_loss.center.copy_(torch.tensor([1.0, 1.0]))
    logits = torch.tensor([[0.0, math.log(3.0)], [2.0, 0.0], [0.0, 0.0]])
    emb = torch.tensor([[4.0, 5.0], [31.0, 41.0], [1.0, 2.0]])  # distances to the center: 5, 50, 1
    y = torch.tensor([1, 0, 1])
    ce = -(math.log(3 / 4) + math.log(math.e**2 / (math.e**2 + 1)) + math.log(1 / 2)) / 3
    loss, parts = model.loss(logits, emb, y)  # spoof far beyond the margin: center loss = mean bona fide distance 3
    assert parts == pytest.approx({"ce": ce, "center": 3.0})
    assert loss.item() == pytest.approx(ce + 0.5 * 3.0)
    near = WaveSpec(tiny(encoder_dir, center_weight=0.5, center_margin=40.0))  # margin 40 sqrt(2) = 56.6 > 50 - 3
    with torch.no_grad():
        near.center_loss.center.copy_(torch.tensor([1.0, 1.0]))
    center = 3.0 + near.center_loss.weight * (3.0 - 50.0 + 40.0 * math.sqrt(2))
    loss, parts = near.loss(logits, emb, y)
    assert parts["center"] == pytest.approx(center) and loss.item() == pytest.approx(ce + 0.5 * center)


def test_a_few_adam_steps_on_cpu_lower_the_training_loss(encoder_dir):
    torch.manual_seed(0)
    model = WaveSpec(tiny(encoder_dir)).train()
    batch = {"x": waves(4, seed=1), "y": torch.tensor([0, 1, 0, 1])}
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def measured() -> float:
        torch.manual_seed(1)  # the same dropout masks each time
        with torch.no_grad():
            return model.training_loss(batch)[0].item()

    before = measured()
    for _ in range(8):
        optimizer.zero_grad()
        loss, parts = model.training_loss(batch)
        loss.backward()
        optimizer.step()
    assert set(parts) == {"ce", "center"} and all(isinstance(v, float) for v in parts.values())
    assert measured() < 0.8 * before


def _grads(model: WaveSpec) -> tuple[set[str], set[str]]:
    """After one backward pass: encoder parameters with a gradient, and other parameters without one."""
    model.train().training_loss({"x": waves(2), "y": torch.tensor([0, 1])})[0].backward()
    named = dict(model.named_parameters())
    encoder = {n for n in named if n.startswith("wave_encoder.")}
    return {n for n in encoder if named[n].grad is not None}, {n for n in set(named) - encoder if named[n].grad is None}


def test_finetune_layers_chooses_which_encoder_layers_train(encoder_dir):
    trained, idle = _grads(WaveSpec(tiny(encoder_dir, finetune_layers=0)))
    assert trained == set() and idle == set()
    trained, idle = _grads(WaveSpec(tiny(encoder_dir, finetune_layers=1)))
    top = ("wave_encoder.model.encoder.layers.2.", "wave_encoder.model.encoder.layer_norm.")
    assert trained and all(n.startswith(top) for n in trained) and idle == set()
    assert any(n.startswith(top[0]) for n in trained)
    trained, _ = _grads(WaveSpec(tiny(encoder_dir, finetune_layers=-1)))
    assert any(".layers.0." in n for n in trained) and not any("feature_extractor" in n for n in trained)
    trained, _ = _grads(WaveSpec(tiny(encoder_dir, finetune_layers=-1, freeze_feature_encoder=False)))
    assert any("feature_extractor" in n for n in trained)


def _rebuilt_matches(model: WaveSpec, rebuilt: torch.nn.Module) -> None:
    model.eval(), rebuilt.eval()
    x = waves(2, seed=3)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))


def test_the_config_alone_rebuilds_the_model_without_the_weights_folder(encoder_dir):
    torch.manual_seed(0)
    model = WaveSpec(tiny(encoder_dir))
    stored = json.loads(model.config.encoder_config)
    assert stored["num_hidden_layers"] == 3 and stored["hidden_size"] == 32
    rebuilt = WaveSpec(dataclasses.replace(model.config, pretrained=None))
    assert rebuilt.config == dataclasses.replace(model.config, pretrained=None)  # the same encoder_config text
    assert not any(k.startswith("frontend.") for k in model.state_dict())  # CQT kernels stay out of the file
    rebuilt.load_state_dict(model.state_dict())
    _rebuilt_matches(model, rebuilt)


def test_the_model_file_round_trip_gives_identical_outputs(encoder_dir, tmp_path):
    """Needs the registry entry ModelEntry("wavespec.v1", WaveSpecConfig, WaveSpec, "wave", "wave", ...)."""
    torch.manual_seed(0)
    model = WaveSpec(tiny(encoder_dir))
    info = ModelFile(name="wavespec.v1", config=model.config, frontend=frontends.build("wave").spec.to_dict(), training={})
    save_model(tmp_path / "m.safetensors", model, info)
    loaded, read = load_model(tmp_path / "m.safetensors")
    assert read.config == model.config
    _rebuilt_matches(model, loaded)


def test_missing_weights_say_how_to_get_them(encoder_dir, tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache / "hub"))  # read at import
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    hint = rf"hf download {XLSR_300M}.*--set pretrained=/path/to/folder"
    with pytest.raises(ModelError, match=rf"^pretrained='{XLSR_300M}': Wav2Vec2 weights not found locally .*{hint}"):
        WaveSpec(WaveSpecConfig(crop_seconds=1.0))
    with pytest.raises(ModelError, match=rf"{tmp_path} has no config.json.*{hint}"):
        WaveSpec(tiny(tmp_path))
    absent = tmp_path / "no" / "such" / "folder"  # transformers would call this path a malformed repo id
    with pytest.raises(ModelError, match=rf"{absent}: no such folder\).*{hint}") as refused:
        WaveSpec(tiny(absent))
    assert "Repo id" not in str(refused.value)
    no_weights = tmp_path / "config-only"
    Wav2Vec2Config(**TINY_ENCODER).save_pretrained(no_weights)
    with pytest.raises(ModelError, match=rf"pretrained='{no_weights}': Wav2Vec2 weights not found locally"):
        WaveSpec(tiny(no_weights))


def test_the_xlsr_300m_architecture_has_its_published_size():
    text = xlsr_300m_encoder_config()
    with torch.device("meta"):  # shapes only: no 1.2 GB of random weights
        encoder = build_encoder(text, 24)
    conv = (10 * 512 + 512 + 2 * 512) + 4 * (512 * 512 * 3 + 512 + 2 * 512) + 2 * (512 * 512 * 2 + 512 + 2 * 512)
    projection = 2 * 512 + 512 * 1024 + 1024
    positional = 128 + 1024 * (1024 // 16) * 128 + 1024  # weight-normed grouped conv: g, v, bias
    layer = 4 * (1024 * 1024 + 1024) + (1024 * 4096 + 4096) + (4096 * 1024 + 1024) + 2 * 2 * 1024
    assert sum(p.numel() for p in encoder.parameters()) == conv + projection + positional + 2 * 1024 + 24 * layer
    assert encoder_json(encoder.config) == text  # the JSON round-trips through Wav2Vec2Config unchanged


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"layers": (2, 2, 3)}, r"layers must be increasing layer numbers >= 1, got \(2, 2, 3\)"),
        ({"finetune_layers": 4}, r"finetune_layers must be -1 \(all\), 0 \(none\) or up to 3"),
        ({"crop_seconds": 0.05}, r"crop_seconds must be >= 0\.1"),
        ({"pretrained": None, "encoder_config": "{"}, r"encoder_config is not JSON"),
        ({"pretrained": None, "encoder_config": '{"hidden_size": 8}'}, r"encoder_config lacks activation_dropout"),
        ({"pretrained": None, "layers": (1, 2, 30), "encoder_config": xlsr_300m_encoder_config()},
         r"layers \(1, 2, 30\) go deeper than encoder_config's 24 layers"),
    ],
)  # fmt: skip
def test_bad_configs_are_refused_in_one_line(encoder_dir, fields, message):
    with pytest.raises(ModelError, match=message):
        tiny(encoder_dir, **fields)


def test_without_weights_or_architecture_the_encoder_is_a_random_xlsr_300m():
    with torch.device("meta"):
        model = WaveSpec(WaveSpecConfig(pretrained=None))
    assert model.config.encoder_config == xlsr_300m_encoder_config()
    assert sum(p.numel() for p in model.wave_encoder.parameters()) == 315_437_696


def test_builds_that_cannot_describe_the_encoder_are_refused(encoder_dir):
    with pytest.raises(ModelError, match=r"has 4 layers; layers asks for layer 5"):
        WaveSpec(tiny(encoder_dir, layers=(1, 2, 5)))
    other = json.dumps({**json.loads(WaveSpec(tiny(encoder_dir)).config.encoder_config), "hidden_size": 64})
    with pytest.raises(ModelError, match=r"encoder_config does not describe pretrained="):
        WaveSpec(tiny(encoder_dir, encoder_config=other))
