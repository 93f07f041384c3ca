"""The feature decomposition detector (Zhang, Hua et al.): a ResNet-18 whose block 4 splits into a
synthesizer stream and a content stream, on 3-s waveform crops.

    waveform (B, S) -> logspec (B, 1, 257, 257) -> conv1 .. layer3 (the shared trunk)
        -> synth_block (layer4) -> avg pool -> F_s (B, N) -> synthesizer head (K + 1 classes, 0 = real)
        -> content_block (layer4) -> avg pool -> F_c (B, N) -> codec head (10) and speed head (16),
                                                               or an F0 head (16)
        F_cls = concat(F_c, F_s) -> classifier -> z (B,), the bona fide logit; forward gives [-z/2, z/2]

N = 8 * width (512 at the paper's width 64). Parameter names follow torchvision's resnet18
(conv1, bn1, layer1.0.conv1, ...; layer4 becomes synth_block and content_block), so a ResNet-18
state dict loads (``pretrained``). The input has one channel: conv1 takes 1 channel, and a
pretrained 3-channel conv1 (an ImageNet ResNet-18) is summed over its input channels as it loads,
which keeps its response to a grey image.

Size (Table IX): 19.6 M parameters at width 64 with 17 synthesizers (trunk 2.78 M, each block 4
8.39 M, heads and classifier 0.02 M); a ResNet-18 without its fc is 11.2 M. The paper's 22.5 M is
2.9 M more than this; one more copy of block 3 per stream would add 2.1 M, so the difference is
most likely in modules the paper does not describe (the authors' public code also builds two
512-channel cross-attention layers, 2 x 1.05 M, that its pooled-vector path does not use). Every
module the paper names is here; ``bench/train.py`` prints parameters and FLOPs per case.

Training (``loss_terms``; the paper's weights beta_0 .. beta_3 and the adversarial weight in the config):

    total = cls_weight * (cls + shuffle) + synth_weight * (synth + synth_contrastive)
            + content_weight * content + contrastive_weight * contrastive + adversarial_weight * adversarial

The paper's weights (1.0, 0.5, 0.5, 0.5) are, as in the authors' public training code, those of
the classification (BCE + shuffle focal loss), the synthesizer stream, the content stream and the
contrastive loss on the concatenation; that code also weighs its adversarial step 0.5.

- cls: BCE of z on the blended features (training; plain ones otherwise). contrastive (L_con_cls):
  ``contrastive_loss`` (margin 0.4) on the unblended F_cls with the binary labels.
- synth (L_s): CE of the synthesizer head on F_s; synth_contrastive (L_con_s): the contrastive loss
  on F_s with the synthesizer labels, part of the synthesizer stream's loss (the authors' code halves
  it within the stream; here it counts as much as the stream's CE, so one weight governs the stream).
- content: the content stream's pseudo-label task on F_c (``content_task``): "speed_codec" = CE of
  the codec head + CE of the speed head (the paper's); "f0" = CE of an F0 head over F0_CLASSES
  bins of the crop's median F0 (``f0_classes``, Table XII); "none" = no content loss.
- adversarial (eq. 9): cross-entropy between the uniform distribution and the synthesizer head's
  prediction on content features, ``uniform_cross_entropy``. The content features are
  content_block(trunk.detach()) and the head's weights are detached, so the term moves the content
  stream alone, as in the paper and the authors' code. This costs one more content_block pass per
  step; BatchNorm's running statistics of content_block see the batch twice.
- shuffle (training only): F_s of sample perm[i] beside F_c of sample i (both blended), perm a random
  derangement of the batch (one cycle); the pair is bona fide only when both samples are;
  ``focal_loss`` (alpha 0.25 on bona fide, gamma 2).
- feature blending (training only): every stream's pooled features get statistics mixed within the
  real and within the fake samples, Algorithm 1 (``feature_blending``, where its reading is given).
  Only the classifier sees them (cls, shuffle); every other term sees the features as they are.

Input augmentation (``input_augmentation``, on by default): each training crop gets a random speed
and codec (``augment.PseudoLabeledCrops``), whatever the content task and streams; with
content_task "speed_codec" these are also the content labels.

Ablations: each is one ``--set`` and changes only what it names. ``streams``: "single" = one layer4
(``shared_block``); "synthesizer" / "content" = that stream alone feeds the classifier. A term that
needs an absent stream is left out (shuffle needs both; synth and synth_contrastive the synthesizer
stream; content the content stream; adversarial both); the others, blending and the input
augmentation stay. A weight of 0 leaves its terms out and their heads unbuilt. ``active_terms``
says which terms a config trains.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from adfd_core import frontends
from adfd_core.losses import contrastive_loss, focal_loss, uniform_cross_entropy
from adfd_core.models.config import ModelError, require
from adfd_core.models.feature_blending import blend_streams

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # Hz, the waveform the model takes
CODEC_CLASSES = 10  # none, or aac/opus/mp3 at 16/32/64 kbit/s
SPEED_CLASSES = 16  # speed factors in 0.5-2.0
F0_CLASSES = 16  # log-spaced bins of the median F0 (content_task "f0")
F0_RANGE = (85.0, 800.0)  # Hz: the pitch detector's floor, and 2x speed of a 400-Hz voice; the outer bins are open
STREAMS = ("both", "single", "synthesizer", "content")
CONTENT_TASKS = ("speed_codec", "f0", "none")
CLASSIFIER_FEATURES = "classifier"  # latent()'s key of F_cls, the classifier's input
_STREAM_NAMES = {"both": ("content", "synthesizer"), "single": ("shared",), "synthesizer": ("synthesizer",), "content": ("content",)}
_NESTS = ("state_dict", "model")  # keys a checkpoint may keep its state dict under
_ANCHOR = "layer1.0.conv1.weight"  # a key every ResNet-18 state dict has; what precedes it is the prefix
_TRUNK = ("conv1", "bn1", "layer1", "layer2", "layer3")  # modules named as in torchvision's resnet18
_BLOCKS = ("synth_block", "content_block", "shared_block")  # each a copy of torchvision's layer4
_WEIGHT_OF = {  # each loss term's weight field
    "cls": "cls_weight", "shuffle": "cls_weight", "synth": "synth_weight", "synth_contrastive": "synth_weight",
    "content": "content_weight", "contrastive": "contrastive_weight", "adversarial": "adversarial_weight",
}  # fmt: skip


@dataclass(frozen=True)
class FDLConfig:
    """The feature decomposition detector; defaults are the paper's."""

    crop_seconds: float = 3.0  # s of 16 kHz waveform per input
    width: int = 64  # base channels of the ResNet-18 (64 = the real one)
    synthesizers: tuple[str, ...] = ()  # index i + 1 in batch["synth"]; 0 = real; filled by training
    streams: str = "both"  # both, single, synthesizer or content
    content_task: str = "speed_codec"  # the content stream's pseudo-labels: speed_codec, f0 or none
    input_augmentation: bool = True  # random speed and codec on every training crop
    adversarial: bool = True
    feature_blending: bool = True
    feature_shuffle: bool = True
    cls_contrastive: bool = True  # L_con_cls, on concat(F_c, F_s)
    synth_contrastive: bool = True  # L_con_s, on F_s
    cls_weight: float = 1.0  # beta_0
    synth_weight: float = 0.5  # beta_1
    content_weight: float = 0.5  # beta_2
    contrastive_weight: float = 0.5  # beta_3
    adversarial_weight: float = 0.5
    blend_eta: float = 10.0  # the blending noise's largest amplitude, in percent
    margin: float = 0.4  # cosine similarity that different labels are pushed below
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    pretrained: str | None = None  # a ResNet-18 state dict (.safetensors, .pt, .pth, .ckpt)

    def __post_init__(self) -> None:
        require(self.crop_seconds > 0, f"crop_seconds must be > 0, got {self.crop_seconds}")
        require(self.width >= 1, f"width must be >= 1, got {self.width}")
        require(all(self.synthesizers), "synthesizers must be non-empty names")
        require(len(set(self.synthesizers)) == len(self.synthesizers), f"synthesizers must be distinct, got {self.synthesizers}")
        require(self.streams in STREAMS, f"streams must be one of {', '.join(STREAMS)}, got {self.streams!r}")
        require(self.content_task in CONTENT_TASKS, f"content_task must be one of {', '.join(CONTENT_TASKS)}, got {self.content_task!r}")
        require(
            self.input_augmentation or self.content_task != "speed_codec",
            "content_task='speed_codec' learns the input augmentation's labels: set input_augmentation=true or another content_task",
        )
        for key in sorted(set(_WEIGHT_OF.values())):
            require(getattr(self, key) >= 0, f"{key} must be >= 0, got {getattr(self, key)}")
        require(self.blend_eta >= 0, f"blend_eta must be >= 0, got {self.blend_eta}")
        require(-1 <= self.margin < 1, f"margin must be in [-1, 1), got {self.margin}")
        require(0 <= self.focal_alpha <= 1, f"focal_alpha must be in [0, 1], got {self.focal_alpha}")
        require(self.focal_gamma >= 0, f"focal_gamma must be >= 0, got {self.focal_gamma}")
        require(self.pretrained != "", "pretrained must be none or a path, got an empty string")

    @property
    def active_terms(self) -> tuple[str, ...]:
        """The loss terms this config trains (shuffle in training mode only), in ``_WEIGHT_OF``'s order."""
        names = _STREAM_NAMES[self.streams]
        both, synth, content = len(names) == 2, "synthesizer" in names, "content" in names
        wanted = {
            "cls": True,
            "shuffle": self.feature_shuffle and both,
            "synth": synth,
            "synth_contrastive": synth and self.synth_contrastive,
            "content": content and self.content_task != "none",
            "contrastive": self.cls_contrastive,
            "adversarial": self.adversarial and both,
        }
        return tuple(t for t in _WEIGHT_OF if wanted[t] and getattr(self, _WEIGHT_OF[t]) > 0)


class BasicBlock(nn.Module):
    """ResNet's basic block: (B, c_in, H, W) -> (B, c_out, H / stride, W / stride); torchvision's names."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def _layer(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """Two basic blocks, the first one striding: a ResNet-18 stage."""
    return nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1))


def _pool(maps: torch.Tensor) -> torch.Tensor:
    """(B, N, h, w) -> (B, N): global average pooling."""
    return maps.mean(dim=(2, 3))


def shuffled_labels(y: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """(B,) labels of (F_c of i, F_s of perm[i]) pairs: 1 (bona fide) only when y[i] and y[perm[i]] are both 1."""
    return y * y[perm]


def _derangement(n: int, device: torch.device) -> torch.Tensor:
    """(n,) a random permutation with no fixed point for n >= 2: one cycle through a random order."""
    order = torch.randperm(n, device=device)
    perm = torch.empty_like(order)
    perm[order] = order.roll(-1)
    return perm


def f0_classes(x: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """(B, S) waveforms -> (B,) int64 F0 class: the median of torchaudio's per-frame pitch estimate,
    binned on F0_CLASSES log-spaced bins over F0_RANGE (the first and last bins open-ended)."""
    import torchaudio.functional as AF

    with torch.no_grad():
        pitch = AF.detect_pitch_frequency(x.float(), sample_rate, freq_low=int(F0_RANGE[0]))
        median = pitch.median(dim=-1).values
        lo, hi = math.log(F0_RANGE[0]), math.log(F0_RANGE[1])
        edges = torch.linspace(lo, hi, F0_CLASSES + 1, device=x.device)[1:-1].exp()
        return torch.bucketize(median, edges)


class FDL(nn.Module):
    """(B, S) or (B, 1, 1, S) waveform, S = crop_seconds * 16 kHz -> (B, 2) logits (0 = spoof, 1 = bona fide)."""

    def __init__(self, config: FDLConfig):
        super().__init__()
        self.config = config
        self.terms = config.active_terms
        self.segment_samples = round(config.crop_seconds * SAMPLE_RATE)
        self.frontend = frontends.build("logspec", segment_seconds=config.crop_seconds)
        w, n, k = config.width, 8 * config.width, len(config.synthesizers) + 1
        self.conv1 = nn.Conv2d(1, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1, self.layer2, self.layer3 = _layer(w, w, 1), _layer(w, 2 * w, 2), _layer(2 * w, 4 * w, 2)
        self.streams = _STREAM_NAMES[config.streams]
        has, terms = set(self.streams), set(self.terms)
        speed_codec = "content" in terms and config.content_task == "speed_codec"
        self.synth_block = _layer(4 * w, n, 2) if "synthesizer" in has else None
        self.content_block = _layer(4 * w, n, 2) if "content" in has else None
        self.shared_block = _layer(4 * w, n, 2) if "shared" in has else None
        self.synth_head = nn.Linear(n, k) if terms & {"synth", "adversarial"} else None
        self.codec_head = nn.Linear(n, CODEC_CLASSES) if speed_codec else None
        self.speed_head = nn.Linear(n, SPEED_CLASSES) if speed_codec else None
        self.f0_head = nn.Linear(n, F0_CLASSES) if "content" in terms and config.content_task == "f0" else None
        if self.synth_head is not None and "synth" not in terms:  # adversarial alone: a fixed random head, which
            self.synth_head.requires_grad_(False)  # no term trains (DDP and the optimizer skip frozen parameters)
        self.classifier = nn.Linear(n * len(self.streams), 1)
        self._init_weights()
        if config.pretrained is not None:
            load_pretrained(self, config.pretrained)

    def _init_weights(self) -> None:
        """torchvision's ResNet initialization: Kaiming-normal (fan out) convolutions, BatchNorm at 1 and 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def batch_fields(self) -> tuple[str, ...]:
        """The labels besides "x" and "y" that ``training_loss`` needs in its batch (see adfd_core.wavedata)."""
        needs_synth = bool(set(self.terms) & {"synth", "synth_contrastive"})
        return ("synth",) * needs_synth + ("codec", "speed") * (self.codec_head is not None)

    @property
    def input_augmentation(self) -> tuple[str, ...]:
        """The augmentations the training crops get (``augment.PseudoLabeledCrops``): codec and speed, or none."""
        return ("codec", "speed") if self.config.input_augmentation else ()

    def stream_blocks(self) -> dict[str, nn.Module]:
        """Each stream's layer4 by its latent name ("synthesizer", "content" or "shared"): Grad-CAM's hook points."""
        blocks = {"synthesizer": self.synth_block, "content": self.content_block, "shared": self.shared_block}
        return {name: blocks[name] for name in self.streams}

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S) or (B, 1, 1, S) waveform -> (B, 1, 257, T) log-magnitude spectrogram (257 x 257 at 3 s)."""
        x = x.reshape(len(x), -1)
        if x.shape[1] != self.segment_samples:
            raise ModelError(
                f"fdl expects {self.segment_samples} samples per crop ({self.config.crop_seconds:g} s at 16 kHz), "
                f"got input of shape {tuple(x.shape)}"
            )
        return self.frontend(x)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Waveform -> the trunk's (B, 4w, h', w') output and each stream's (B, N, h, w) map."""
        h = self.maxpool(self.relu(self.bn1(self.conv1(self.spectrogram(x)))))
        h = self.layer3(self.layer2(self.layer1(h)))
        return h, {name: block(h) for name, block in self.stream_blocks().items()}

    def latent(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Waveform -> pooled features: each stream's (B, N) ("synthesizer": F_s, "content": F_c, or
        "shared") and CLASSIFIER_FEATURES: F_cls (B, N * streams), the classifier's input."""
        feats = {name: _pool(m) for name, m in self._encode(x)[1].items()}
        return {CLASSIFIER_FEATURES: self._concat(feats), **feats}

    def _concat(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The streams' (B, N) features concatenated in stream order: F_cls (B, N * streams)."""
        return torch.cat([feats[name] for name in self.streams], dim=1)

    def _logit(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The classifier on the streams' (B, N) features -> (B,) bona fide logit."""
        return self.classifier(self._concat(feats)).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S) or (B, 1, 1, S) -> (B, 2) logits [-z/2, z/2]: their softmax is [1 - sigmoid(z), sigmoid(z)]."""
        z = self._logit({name: _pool(m) for name, m in self._encode(x)[1].items()})
        return torch.stack([-z / 2, z / 2], dim=1)

    def loss_terms(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each active loss term, unweighted, as a scalar tensor (the module docstring lists them and their weights).

        batch: "x" (B, S) float32, "y" (B,) int64 (1 = bona fide); with synth or synth_contrastive "synth"
        (B,) int64 (0 = real, i + 1 = synthesizers[i]); with codec and speed heads "codec" (B,) int64
        in 0..9 and "speed" (B,) int64 in 0..15. Blending and shuffling only in training mode.
        """
        cfg, terms = self.config, set(self.terms)
        y = _labels(batch, "y", 2)
        trunk, maps = self._encode(batch["x"])
        feats = {name: _pool(m) for name, m in maps.items()}
        blended = blend_streams(feats, y, cfg.blend_eta) if cfg.feature_blending and self.training else feats
        out = {"cls": F.binary_cross_entropy_with_logits(self._logit(blended), y.float())}
        if "shuffle" in terms and self.training:
            perm = _derangement(len(y), y.device)
            z = self._logit({"content": blended["content"], "synthesizer": blended["synthesizer"][perm]})
            out["shuffle"] = focal_loss(z, shuffled_labels(y, perm).float(), cfg.focal_alpha, cfg.focal_gamma)
        if "contrastive" in terms:
            out["contrastive"] = contrastive_loss(self._concat(feats), y, cfg.margin)
        if "synth" in self.batch_fields:
            synth = _labels(batch, "synth", len(cfg.synthesizers) + 1)
        if "synth" in terms:
            out["synth"] = F.cross_entropy(self.synth_head(feats["synthesizer"]), synth)
        if "synth_contrastive" in terms:
            out["synth_contrastive"] = contrastive_loss(feats["synthesizer"], synth, cfg.margin)
        if "content" in terms:
            out["content"] = self._content_loss(feats["content"], batch)
        if "adversarial" in terms:
            fc_only = _pool(self.content_block(trunk.detach()))  # the adversarial gradient stops at the trunk ...
            frozen = F.linear(fc_only, self.synth_head.weight.detach(), self.synth_head.bias.detach())  # ... and at L_s's head
            out["adversarial"] = uniform_cross_entropy(frozen)
        return out

    def _content_loss(self, fc: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The content task's cross-entropy on F_c (B, N): codec + speed, or F0 of the crop."""
        if self.f0_head is not None:
            return F.cross_entropy(self.f0_head(fc), f0_classes(batch["x"].reshape(len(fc), -1)))
        codec, speed = _labels(batch, "codec", CODEC_CLASSES), _labels(batch, "speed", SPEED_CLASSES)
        return F.cross_entropy(self.codec_head(fc), codec) + F.cross_entropy(self.speed_head(fc), speed)

    def term_weights(self) -> dict[str, float]:
        """The config's weight of each loss term."""
        return {term: getattr(self.config, field) for term, field in _WEIGHT_OF.items()}

    def training_loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted sum of ``loss_terms`` and each term's (unweighted) value for the log."""
        terms = self.loss_terms(batch)
        weights = self.term_weights()
        total = sum(weights[key] * value for key, value in terms.items())
        return total, {key: float(value.detach()) for key, value in terms.items()}


def _labels(batch: Mapping[str, torch.Tensor], key: str, classes: int) -> torch.Tensor:
    """batch[key] as int64 class indices in 0..classes - 1, or a ModelError saying what is wrong."""
    if key not in batch:
        raise ModelError(f"fdl training needs batch[{key!r}]; the batch has {', '.join(batch)}")
    labels = batch[key].long()
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < classes:
        raise ModelError(f"fdl: batch[{key!r}] must hold classes 0..{classes - 1}, got {int(labels.min())}..{int(labels.max())}")
    return labels


def load_pretrained(model: FDL, path: str | Path) -> None:
    """Copy a ResNet-18 state dict into the trunk and every stream's block (its layer4, duplicated).

    The file: ``.safetensors``, or ``.pt``/``.pth``/``.ckpt`` read with ``weights_only=True``; the
    state dict may sit under "state_dict" or "model" and carry a prefix ("module.", "encoder.", ...).
    A 3-channel conv1 is summed over its input channels. Keys the model lacks (fc.*) and model keys
    the file lacks are logged; a file with no ResNet-18 keys, or with wrongly shaped ones, is refused.
    """
    path = Path(path).expanduser()
    state = _resnet_keys(path, _read_tensors(path))
    own = model.state_dict()
    sources = _sources(own)
    loaded = {}
    for key, source in sources.items():
        if source not in state:
            continue
        value = state[source]
        if key == "conv1.weight" and value.dim() == 4 and value.shape[1] == 3:
            value = value.sum(dim=1, keepdim=True)
        if value.shape != own[key].shape:
            raise ModelError(
                f"pretrained weights {path}: {source} has shape {tuple(value.shape)}, the model needs {tuple(own[key].shape)} "
                f"(width={model.config.width}; a ResNet-18 has width 64)"
            )
        loaded[key] = value
    missing = [k for k, source in sources.items() if source not in state and not k.endswith("num_batches_tracked")]
    unexpected = sorted(set(state) - set(sources.values()))
    if missing:
        log.warning("pretrained weights %s lack %d model keys, left at random init: %s", path, len(missing), ", ".join(missing[:5]))
    if unexpected:
        log.info("pretrained weights %s: %d keys not used: %s", path, len(unexpected), ", ".join(unexpected[:5]))
    with torch.no_grad():
        for key, value in loaded.items():
            own[key].copy_(value)


def _sources(own: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """Each trunk and stream-block key of the model's state dict -> its torchvision ResNet-18 key (blocks from layer4)."""
    sources = {}
    for key in own:
        module, _, rest = key.partition(".")
        if module in _TRUNK:
            sources[key] = key
        elif module in _BLOCKS:
            sources[key] = f"layer4.{rest}"
    return sources


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The named tensors of a weights file (nested under "state_dict"/"model" or not); ModelError naming the file."""
    if not path.is_file():
        raise ModelError(f"pretrained weights {path} not found")
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", ".pt", ".pth", ".ckpt"):
        raise ModelError(f"pretrained weights {path}: unknown file type {suffix or '(none)'}; use .safetensors, .pt, .pth or .ckpt")
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors and torch raise several types for foreign or corrupt files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"pretrained weights {path} cannot be read: {reason}") from None
    while isinstance(state, Mapping) and any(isinstance(state.get(k), Mapping) for k in _NESTS):
        state = next(state[k] for k in _NESTS if isinstance(state.get(k), Mapping))
    if not isinstance(state, Mapping):
        raise ModelError(f"pretrained weights {path} hold no state dict (a mapping of names to tensors)")
    return {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _resnet_keys(path: Path, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict's ResNet-18 tensors under torchvision's names, the common prefix stripped."""
    prefixes = [k[: -len(_ANCHOR)] for k in state if k.endswith(_ANCHOR)]
    if not prefixes:
        raise ModelError(f"pretrained weights {path} hold no ResNet-18 keys (no '{_ANCHOR}' under any prefix)")
    prefix = min(prefixes, key=len)
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
