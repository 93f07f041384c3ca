"""Model files for scoring tests, made in a fraction of a second: tiny, untrained cnn.v1 networks.

An untrained network gives probabilities close to 0.5 for every input; ``gain`` scales its last
layer so that probabilities spread over (0, 1) and a wrong segment, mean or model shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from adfd_core import frontends
from adfd_core.modelfile import ModelFile, save_model
from adfd_core.models import registry
from adfd_core.trainset import input_statistics

TINY = {"channels": "4,8,8", "dense": "16"}


def tiny_model(path: Path, frontend: str = "stft-lf", seed: int = 0, segment_seconds: float | None = None,
               gain: float = 20.0, full_size: bool = False) -> Path:
    """Save a seeded cnn.v1 on ``frontend`` (with its paper defaults, or ``segment_seconds``) to ``path``."""
    fe = frontends.build(frontend, segment_seconds=segment_seconds)
    config = registry.make_config("cnn.v1", {} if full_size else TINY, input_shape=tuple(fe.output_shape()))
    torch.manual_seed(seed)
    model = registry.build("cnn.v1", config)
    with torch.no_grad():
        model.net.head[-1].weight.mul_(gain)
    info = ModelFile(name="cnn.v1", config=config, frontend=fe.spec.to_dict(), training={})
    return save_model(path, model, info)


TINY_ENCODER = {  # a Wav2Vec2Config of 4 layers of width 32: 49 frames for 1 s of audio
    "hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2, "intermediate_size": 64, "conv_dim": (8, 8, 8),
    "conv_kernel": (10, 8, 8), "conv_stride": (5, 8, 8), "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
    "do_stable_layer_norm": True, "feat_extract_norm": "layer", "conv_bias": True,
}  # fmt: skip


def _tiny_encoder_config() -> str:
    from transformers import Wav2Vec2Config

    from adfd_core.models.wavespec import encoder_json

    return encoder_json(Wav2Vec2Config(**TINY_ENCODER))


TINY_WHISPER_ENCODER = {  # 1-s segments (50 positions), 2 blocks of width 8
    "activation_dropout": 0.0, "activation_function": "gelu", "attention_dropout": 0.0, "d_model": 8, "dropout": 0.0,
    "encoder_attention_heads": 2, "encoder_ffn_dim": 16, "encoder_layers": 2, "max_source_positions": 50, "num_mel_bins": 80,
}  # fmt: skip

SMALL = {  # --set overrides that make a model small and fast, for tests that go through every registered model
    "fdl.v1": lambda: {"width": "8", "crop_seconds": "0.5", "synthesizers": "a,b"},
    "wavespec.v1": lambda: {"pretrained": "none", "encoder_config": _tiny_encoder_config(), "crop_seconds": "1.0",
                            "layers": "1,2,3", "unet_channels": "4,8,16", "fusion_dim": "16", "embedding_dim": "2"},
    "attentive.v1": lambda: {"input_shape": "2,10,8", "attention": "4", "hidden": "8"},
    "whisper-probe.v1": lambda: {"crop_seconds": "1.0", "encoder_config": json.dumps(TINY_WHISPER_ENCODER), "full_depth": "3",
                                 "layers": "0,2", "pooling": "mean+std", "head": "layerweight.v1", "storage_dtype": "float32"},
}


def small_config(name: str):
    """The config of registered model ``name``, shrunk where its defaults are slow (see SMALL)."""
    overrides = SMALL[name]() if name in SMALL else {}
    if "input_size" in registry.config_to_dict(registry.make_config(name)):
        overrides["input_size"] = "64"  # vision backbones at their 64x64 rows, not resized to 224
    return registry.make_config(name, overrides)


def example_input(config, batch: int = 2) -> torch.Tensor:
    """A random batch the model of ``config`` takes: waveform crops (B, S) or feature rows (B, *input_shape)."""
    if hasattr(config, "crop_seconds"):
        return 0.1 * torch.randn(batch, round(config.crop_seconds * 16_000))
    return torch.randn(batch, *config.input_shape)


def tiny_fdl(path: Path, seed: int = 0) -> Path:
    """Save an untrained small fdl.v1 (width 8, 0.5-s crops, synthesizers a and b) as training would."""
    config = small_config("fdl.v1")
    torch.manual_seed(seed)
    model = registry.build("fdl.v1", config).eval()
    spec = frontends.from_spec({"name": "wave", "version": 1, "params": {"sample_rate": 16_000, "segment_seconds": config.crop_seconds}})
    return save_model(path, model, ModelFile(name="fdl.v1", config=config, frontend=spec.spec.to_dict(), training={}))


def save_whisper(folder: Path, seed: int = 0) -> Path:
    """A tiny random Whisper (d_model 24, 2 encoder layers) and its feature extractor, saved as transformers saves them."""
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    torch.manual_seed(seed)
    config = WhisperConfig(
        d_model=24, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, vocab_size=64, max_target_positions=16,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=3,
    )
    WhisperForConditionalGeneration(config).save_pretrained(folder)
    WhisperFeatureExtractor().save_pretrained(folder)
    return folder


def whisper_backend(path: Path, whisper: Path, params: dict, name: str, seed: int = 0, overrides: dict | None = None) -> Path:
    """A back-end on rows of the whisper front-end (network ``whisper``, front-end ``params``; config ``overrides``)
    as training leaves it: seeded random weights (scaled up, so probabilities spread) and the input statistics
    of rows of a few random sounds."""
    fe = frontends.build("whisper", model=str(whisper), **params)
    rows = fe(torch.sin(torch.linspace(0, 3000, 32_000))[None] * torch.rand(8, 1) + 0.05 * torch.randn(8, 32_000))
    config = registry.make_config(name, overrides, input_shape=fe.output_shape())
    torch.manual_seed(seed)
    model = registry.build(name, config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1 and not p.any():  # a weight matrix that starts at zero (attentive.v1's scores): trained, it is not
                p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(seed))
            p.mul_(4.0)
    mean, std = input_statistics(rows, tuple(model.mean.shape))
    model.set_input_statistics(mean, std + 1e-3)
    return save_model(path, model, ModelFile(name, config, fe.spec.to_dict(), training={"seed": seed}, calibration={"a": 2.0}))
