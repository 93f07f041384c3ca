"""ImageNet vision backbones from torchvision, with a 2-class head, for (C, F, T) segment rows.

One wrapper serves every backbone; the table ``ARCHS`` says which torchvision builder makes it,
which ImageNet weights fit it and which of their keys are not taken (the 1000-class head, which
the 2-class head replaces, and GoogLeNet's auxiliary heads).

How a (3, 64, 64) row reaches a backbone made for 224x224 RGB images:

1. the registry wraps every segment model in ``Standardized`` (adfd_core.models.standardize), so
   the rows arrive standardized element by element with the training rows' mean and std (the
   counterpart of ImageNet's mean/std normalization, which does not suit spectrogram values);
2. inside ``forward``, rows with C != 3 channels go through a learned 1x1 convolution to 3;
3. then bilinear resizing (align_corners=False) to ``input_size`` x ``input_size``, 224 by
   default: the scale the ImageNet filters were trained at. ``input_size=None`` feeds the rows
   as they are (any F, T >= 32); non-square rows are stretched to a square.

Every backbone takes any size >= 32: Swin-T pads its feature maps to its 7x7 windows, the
rest pool adaptively. GoogLeNet is built without its auxiliary heads (``aux_logits=False``)
and with ``transform_input=False`` (that transform assumes ImageNet-normalized input); RegNet is
RegNetY-400MF; MobileNet-V3 is the Large one; ShuffleNet-V2 is x1.0; MNASNet is MNASNet 1.0 (depth
multiplier 1.0). Each ``Arch.title`` names the variant.

``pretrained``: None for random initialization (torchvision's own), a path to a torchvision
ImageNet state dict (``.pth``, read with ``weights_only=True``), or ``"imagenet"`` for that file
in the torch hub cache (``torch.hub.get_dir()/checkpoints``); nothing is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torch.nn import functional as F

from adfd_core.models.config import ModelError, check_input, require
from adfd_core.models.weights import load_into, mismatch, read_state_dict

_MIN_SIZE = 32  # smallest square every backbone takes (overall stride 32)


_DENSENET_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """DenseNet's published weights name ``norm.1``/``conv.2`` what the module calls ``norm1``/``conv2``."""
    return {_DENSENET_OLD_KEY.sub(r"\1\2", key): value for key, value in state.items()}


@dataclass(frozen=True)
class Arch:
    """One backbone: its torchvision builder, ImageNet weights and the weight keys not taken from them."""

    title: str
    builder: str  # function in torchvision.models
    weights: str  # "EnumName.MEMBER" in torchvision.models: the ImageNet weights used for pretrained="imagenet"
    skip: tuple[str, ...]  # key prefixes of the ImageNet state dict not loaded (the 1000-class head, aux heads)
    kwargs: Mapping[str, object] = field(default_factory=dict)
    rename: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] = dict  # file keys -> module keys

    @property
    def url(self) -> str:
        """Where torchvision downloads the ImageNet weights from."""
        import torchvision.models  # here, not at the top: importing torchvision costs ~1.5 s (torch._dynamo)

        enum_name, member = self.weights.split(".")
        return getattr(torchvision.models, enum_name)[member].url


ARCHS: dict[str, Arch] = {
    "resnet18": Arch("ResNet-18", "resnet18", "ResNet18_Weights.IMAGENET1K_V1", ("fc.",)),
    "mobilenet_v3": Arch("MobileNet-V3 Large", "mobilenet_v3_large", "MobileNet_V3_Large_Weights.IMAGENET1K_V2", ("classifier.3.",)),
    "efficientnet_b0": Arch("EfficientNet-B0", "efficientnet_b0", "EfficientNet_B0_Weights.IMAGENET1K_V1", ("classifier.1.",)),
    "densenet121": Arch(
        "DenseNet-121", "densenet121", "DenseNet121_Weights.IMAGENET1K_V1", ("classifier.",), rename=_densenet_keys
    ),
    "shufflenet_v2": Arch("ShuffleNet-V2 x1.0", "shufflenet_v2_x1_0", "ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1", ("fc.",)),
    "swin_t": Arch("Swin-T", "swin_t", "Swin_T_Weights.IMAGENET1K_V1", ("head.",)),
    "convnext_tiny": Arch("ConvNeXt-Tiny", "convnext_tiny", "ConvNeXt_Tiny_Weights.IMAGENET1K_V1", ("classifier.2.",)),
    "googlenet": Arch(
        "GoogLeNet",
        "googlenet",
        "GoogLeNet_Weights.IMAGENET1K_V1",
        ("fc.", "aux1.", "aux2."),
        {"aux_logits": False, "init_weights": True, "transform_input": False},
    ),
    "mnasnet": Arch("MNASNet 1.0", "mnasnet1_0", "MNASNet1_0_Weights.IMAGENET1K_V1", ("classifier.1.",)),
    "regnet": Arch("RegNetY-400MF", "regnet_y_400mf", "RegNet_Y_400MF_Weights.IMAGENET1K_V2", ("fc.",)),
}


@dataclass(frozen=True)
class VisionConfig:
    """Any backbone of ``ARCHS``; input_shape is (C, F, T), set by training from the feature file's rows."""

    input_shape: tuple[int, int, int] = (3, 64, 64)
    input_size: int | None = 224  # rows are resized to input_size x input_size; None: fed as they are
    pretrained: str | None = None  # None, "imagenet" (torch hub cache) or a path to an ImageNet state dict

    def __post_init__(self) -> None:
        require(all(n >= 1 for n in self.input_shape), f"input_shape must be positive, got {self.input_shape}")
        if self.input_size is None:
            require(
                min(self.input_shape[1:]) >= _MIN_SIZE,
                f"input_shape {self.input_shape}: F and T must be >= {_MIN_SIZE} without resizing (set input_size)",
            )
        else:
            require(self.input_size >= _MIN_SIZE, f"input_size must be >= {_MIN_SIZE} or none, got {self.input_size}")
        require(self.pretrained != "", "pretrained must be none, imagenet or a path, got an empty string")


class VisionModel(nn.Module):
    """(B, C, F, T) -> (B, 2) logits: map to 3 channels, resize, then the backbone."""

    def __init__(self, arch: str, config: VisionConfig):
        super().__init__()
        spec = ARCHS[arch]
        channels = config.input_shape[0]
        self.input_shape = config.input_shape
        self.input_size = config.input_size
        self.adapt = nn.Identity() if channels == 3 else nn.Conv2d(channels, 3, 1)
        import torchvision.models  # only when a backbone is built: `adfd score` of a CNN never pays for it

        self.backbone = getattr(torchvision.models, spec.builder)(weights=None, num_classes=2, **spec.kwargs)
        if config.pretrained is not None:
            _load_imagenet(self.backbone, spec, config.pretrained)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.input_shape)
        x = self.adapt(x)
        if self.input_size is not None:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return self.backbone(x)


def imagenet_cache_path(spec: Arch) -> Path:
    """Where ``torch.hub`` keeps the backbone's ImageNet weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(spec.url).path).name


def _taken(spec: Arch, key: str) -> bool:
    """Whether an ImageNet state-dict key is loaded: not skipped, and not a BatchNorm batch counter
    (a counter, not a weight, which files saved by old PyTorch such as DenseNet's lack)."""
    return not key.startswith(spec.skip) and not key.endswith("num_batches_tracked")


def _load_imagenet(backbone: nn.Module, spec: Arch, pretrained: str) -> None:
    """Copy ImageNet weights into every backbone tensor but the skipped ones (the new 2-class head)."""
    if pretrained == "imagenet":
        path = imagenet_cache_path(spec)
        if not path.is_file():
            raise ModelError(
                f"{spec.title} ImageNet weights are not in the torch hub cache: download {spec.url} to {path} "
                "(or set pretrained to the path of a copy)"
            )
    else:
        path = Path(pretrained)
    state = {k: v for k, v in spec.rename(read_state_dict(path)).items() if _taken(spec, k)}
    expected = {k: v for k, v in backbone.state_dict().items() if _taken(spec, k)}
    problem = mismatch(expected, state)
    if problem:
        raise ModelError(f"weights file {path} does not fit {spec.title}: {problem}")
    load_into(backbone, state, strict=False)
