"""Models by versioned name (``cnn.v1``): config dataclass, constructor, default feature and input kind.

    config = make_config("cnn.v1", {"dropout": "0.3"}, input_shape=(3, 64, 64))
    model = build("cnn.v1", config)       # (batch, C, F, T) float32 -> (batch, 2) logits
    stored = config_to_dict(config)       # what a model file keeps; config_from_dict reads it back

Logits index classes as ``adfd_core.store.LABEL_INDEX``: 0 = spoof, 1 = bonafide. Every
``segments`` model comes wrapped in ``Standardized``: training sets the input mean and std, per
element of the row or shared over the entry's ``shared_axes`` (frames), with ``set_input_statistics``,
and they travel in the model file as buffers. A config field
named ``pretrained`` names initial weights that ``build`` loads; a model file carries its own
weights, so the model file reader builds with ``pretrained=False``. Importing this module is
cheap: torch and the model modules load on first use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from adfd_core.models import config as configs
from adfd_core.models.config import ModelError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelEntry:
    """One registered model."""

    name: str  # "cnn.v1": family and version, bumped when the same config would build another network
    config_cls: type  # a frozen dataclass; its defaults are the paper's
    make: Callable[[Any], torch.nn.Module]  # config -> module
    default_feature: str | None  # the front-end it takes by default
    input_kind: str  # "segments": (C, F, T) feature rows; "wave": waveform crops (adfd_core.wavedata)
    description: str  # one line
    shared_axes: tuple[int, ...] = ()  # row axes (negative: from the end) over which input statistics are shared


@cache
def _registry() -> dict[str, ModelEntry]:
    from adfd_core.models.attentive import Attentive, AttentiveConfig
    from adfd_core.models.baselines import CNN, CRNN, RNN, CNNConfig, CRNNConfig, RNNConfig
    from adfd_core.models.embeddings import MLP, MLPConfig
    from adfd_core.models.fdl import FDL, FDLConfig
    from adfd_core.models.heads import LayerWeight, LayerWeightConfig, LogReg, LogRegConfig
    from adfd_core.models.wavespec import WaveSpec, WaveSpecConfig
    from adfd_core.models.whisper_probe import WhisperProbe, WhisperProbeConfig
    from adfd_core.models.vision import ARCHS, VisionConfig, VisionModel

    entries = [
        ModelEntry("cnn.v1", CNNConfig, CNN, "cqt", "segments", "ensemble paper's CNN: conv 32/64/128, Dense 256"),
        ModelEntry("rnn.v2", RNNConfig, RNN, "cqt", "segments", "ensemble paper's RNN: BiLSTM 128/64 with ReLU and dropout, Dense 256"),
        ModelEntry("crnn.v2", CRNNConfig, CRNN, "cqt", "segments", "ensemble paper's C-RNN: conv, then BiLSTMs"),
    ]
    for key, arch in ARCHS.items():
        description = f"{arch.title} (torchvision), ImageNet init optional"
        entries.append(ModelEntry(f"{key}.v1", VisionConfig, partial(VisionModel, key), "cqt", "segments", description))
    entries.append(ModelEntry("mlp.v1", MLPConfig, MLP, "whisper", "segments", "ensemble paper's MLP on audio embeddings: Dense 128, Dense 2"))
    entries.append(ModelEntry("logreg.v1", LogRegConfig, LogReg, "whisper", "segments", "logistic regression on standardized embedding rows"))
    entries.append(ModelEntry("layerweight.v1", LayerWeightConfig, LayerWeight, "whisper", "segments",
                              "learned softmax weights over a stack of layers' embeddings, then Dense 128, Dense 2"))
    entries.append(ModelEntry("attentive.v1", AttentiveConfig, Attentive, "whisper", "segments",
                              "whisper frame rows: learned layer weights, attentive mean+std pooling over frames, Dense 64, Dense 2",
                              shared_axes=(-2,)))  # one statistic per layer and channel, shared by every frame
    entries.append(ModelEntry("fdl.v1", FDLConfig, FDL, "wave", "wave",
                              "feature decomposition: ResNet-18 with synthesizer and content streams on 3-s log spectrograms"))
    entries.append(ModelEntry("wavespec.v1", WaveSpecConfig, WaveSpec, "wave", "wave",
                              "WaveSpec: Wav2Vec2 XLS-R and a CQT U-Net fused at 3 scales, single center loss"))
    entries.append(ModelEntry("whisper-probe.v1", WhisperProbeConfig, WhisperProbe, "wave", "wave",
                              "Whisper's encoder (cut), pooling and a head in one file: `adfd bundle` makes it"))
    return {e.name: e for e in entries}


def available() -> list[str]:
    """Every registered model name, in registration order (baselines, then vision backbones)."""
    return list(_registry())


def entry(name: str) -> ModelEntry:
    """The registered model ``name``; ModelError listing the valid names when there is none."""
    try:
        return _registry()[name]
    except (KeyError, TypeError):
        raise ModelError(f"unknown model {name!r}; valid names: {', '.join(available())}") from None


def make_config(name: str, overrides: Mapping[str, Any] | None = None, **fields: Any) -> Any:
    """The config of ``name`` with the paper's defaults, overridden by ``overrides`` then ``fields``.

    String values are parsed to the field's type (``--set key=value``): ints, floats, bools
    (true/false/1/0), tuples of ints ("3,64,64") and "none" for optional fields.
    """
    return configs.make(name, entry(name).config_cls, {**(overrides or {}), **fields}, text=True)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config as a JSON-safe dict: every field, tuples as lists."""
    return configs.to_dict(config)


def config_from_dict(name: str, d: Mapping[str, Any]) -> Any:
    """The config of model ``name`` stored as ``d``; refuses unknown and missing keys and mistyped values."""
    return configs.from_dict(name, entry(name).config_cls, d)


def build(name: str, config: Any, pretrained: bool = True) -> torch.nn.Module:
    """The model ``name`` for ``config``: (batch, C, F, T) float32 -> (batch, 2) logits (0 = spoof, 1 = bonafide).

    A ``segments`` model is ``Standardized(net)``: (x - mean) / std with the training rows'
    statistics (of ``statistics_shape``), then the network. pretrained=False leaves out the initial weights a
    ``pretrained`` config field names.
    """
    e = entry(name)
    if type(config) is not e.config_cls:
        raise ModelError(f"{name} takes a {e.config_cls.__name__}, got {type(config).__name__}")
    if not pretrained and "pretrained" in configs.field_types(e.config_cls):
        config = dataclasses.replace(config, pretrained=None)
    model = e.make(config)
    if e.input_kind == "segments":
        from adfd_core.models.standardize import Standardized

        model = Standardized(model, config.input_shape, e.shared_axes)
    return model


def statistics_shape(name: str, config: Any) -> tuple[int, ...]:
    """The shape of a ``segments`` model's input mean and std: its input_shape, 1 on the shared axes."""
    from adfd_core.models.standardize import statistics_shape as shape

    return shape(tuple(config.input_shape), entry(name).shared_axes)


def build_skeleton(name: str, config: Any) -> torch.nn.Module:
    """``build(name, config, pretrained=False)`` on the meta device: every parameter and buffer with its
    shape and dtype but no memory (WaveSpec's 300 M, or a config's absurd sizes, cost nothing). On the
    CPU where the constructor computes with tensors, which the meta device cannot (torchvision's RegNet
    computes its widths with them); constants computed from numpy are real CPU tensors either way."""
    import torch

    try:
        with torch.device("meta"):
            return build(name, config, pretrained=False)
    except NotImplementedError:
        return build(name, config, pretrained=False)


def parameter_count(name: str) -> int:
    """Trainable and frozen parameters of ``name`` with its default config (counted on its skeleton)."""
    return sum(p.numel() for p in build_skeleton(name, entry(name).config_cls()).parameters())


def describe_all() -> list[dict[str, Any]]:
    """For `adfd models`: name, parameters, input_kind, default_feature, description and default config of each model."""
    return [
        {
            "name": e.name,
            "parameters": parameter_count(e.name),
            "input_kind": e.input_kind,
            "default_feature": e.default_feature,
            "description": e.description,
            "config": config_to_dict(e.config_cls()),
        }
        for e in _registry().values()
    ]
