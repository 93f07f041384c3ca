"""The feature decomposition detector (Zhang, Hua et al.): a ResNet-18 whose block 4 splits into a
synthesizer stream and a content stream, on 3-s waveform crops.

    waveform (B, S) -> logspec (B, 1, 257, 257) -> conv1 .. layer3 (the shared trunk)
        -> synth_block (layer4) -> avg pool -> F_s (B, N) -> synthesizer head (K + 1 classes, 0 = real)
        -> content_block (layer4) -> avg pool -> F_c (B, N) -> codec head (10), speed head (16),
                                                               adversary head (K + 1)
        concat(F_c, F_s) -> classifier -> z (B,), the bona fide logit; forward gives [-z/2, z/2]

N = 8 * width (512 at the paper's width 64). Parameter names follow torchvision's resnet18
(conv1, bn1, layer1.0.conv1, ...; layer4 becomes synth_block and content_block), so a ResNet-18
state dict loads (``pretrained``). The input has one channel: conv1 takes 1 channel, and a
pretrained 3-channel conv1 (an ImageNet ResNet-18) is summed over its input channels as it loads,
which keeps its response to a grey image.

Training (``loss_terms``; the paper's weights in the config):

    total = cls_weight * (cls + shuffle) + synth_weight * (synth + synth_contrastive)
            + content_weight * content + contrastive_weight * contrastive
            + adversarial_weight * (adversarial + adversary_head)

The paper's weights (1.0, 0.5, 0.5, 0.5) are, as in the authors' public training code, those of
the classification (BCE + shuffle focal loss), the synthesizer stream, the content stream and the
contrastive loss on the concatenation; that code also weighs its adversarial step 0.5.

- cls: BCE of z; contrastive: ``contrastive_loss`` (margin 0.4) on the classifier input
  concat(F_c, F_s) with the binary labels; synth_contrastive: the same on F_s with the synthesizer
  labels, part of the synthesizer stream's loss (the authors' code halves it within the stream;
  here it counts as much as the stream's CE, so one weight governs the stream).
- synth: CE of the synthesizer head; content: CE of the codec head + CE of the speed head.
- adversary_head: CE of the adversary head on F_c.detach() (it learns to find the synthesizer in
  the content features, and only the head learns from it). adversarial: ``uniform_adversarial_loss``
  of the adversary head's (frozen) prediction on content_block(trunk.detach()): its gradient
  reaches content_block alone. This costs one more content_block pass per step; BatchNorm's
  running statistics of content_block see the batch twice.
- shuffle (training only): F_s of sample perm[i] beside F_c of sample i, perm a random
  derangement of the batch (one cycle); the pair is bona fide only when both samples are;
  ``focal_loss`` (alpha 0.25 on bona fide, gamma 2).
- feature blending (training only): the synthesizer stream's map (B, N, h, w) gets new style
  statistics (per-channel mean and std over h, w, as in MixStyle) before pooling, mixed with a
  partner of the same binary class (itself when alone in its class):
  mu' = (1 - lam) mu_i + lam mu_j + eps_1 sigma_mix / eta, sigma' = sigma_mix (1 + eps_2 / eta),
  lam ~ Beta(1, eta), eps ~ N(0, 1), eta = blend_eta = 10: mostly the sample's own style, a tenth
  of its partner's on average, and noise of a tenth of a std. The paper gives eta = 10 and
  "Beta/Gauss noise" only; this reading makes eta the one knob for both. The blended F_s feeds the
  classifier (cls, shuffle, contrastive); the synthesizer head and synth_contrastive see F_s as is.

Ablations (``streams``): "single" = one layer4 (``shared_block``), classifier (+ contrastive) only;
"synthesizer" / "content" = that stream alone feeds the classifier. Switches that need an absent
stream must be set false (the config says which), and the modules they would use are not built.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from adfd_core import frontends
from adfd_core.losses import contrastive_loss, focal_loss, uniform_adversarial_loss
from adfd_core.models.config import ModelError, require

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # Hz, the waveform the model takes
CODEC_CLASSES = 10  # none, or aac/opus/mp3 at 16/32/64 kbit/s
SPEED_CLASSES = 16  # speed factors in 0.5-2.0
STREAMS = ("both", "single", "synthesizer", "content")
_STREAM_NAMES = {"both": ("content", "synthesizer"), "single": ("shared",), "synthesizer": ("synthesizer",), "content": ("content",)}
_EPS = 1e-6  # added to variances before the square root
_NESTS = ("state_dict", "model")  # keys a checkpoint may keep its state dict under
_ANCHOR = "layer1.0.conv1.weight"  # a key every ResNet-18 state dict has; what precedes it is the prefix
_TRUNK = ("conv1", "bn1", "layer1", "layer2", "layer3")  # modules named as in torchvision's resnet18
_BLOCKS = ("synth_block", "content_block", "shared_block")  # each a copy of torchvision's layer4


@dataclass(frozen=True)
class FDLConfig:
    """The feature decomposition detector; defaults are the paper's."""

    crop_seconds: float = 3.0  # s of 16 kHz waveform per input
    width: int = 64  # base channels of the ResNet-18 (64 = the real one)
    synthesizers: tuple[str, ...] = ()  # index i + 1 in batch["synth"]; 0 = real; filled by training
    streams: str = "both"  # both, single, synthesizer or content
    adversarial: bool = True
    feature_blending: bool = True
    feature_shuffle: bool = True
    contrastive: bool = True
    cls_weight: float = 1.0
    synth_weight: float = 0.5
    content_weight: float = 0.5
    contrastive_weight: float = 0.5
    adversarial_weight: float = 0.5
    blend_eta: float = 10.0
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
        for key in ("cls_weight", "synth_weight", "content_weight", "contrastive_weight", "adversarial_weight"):
            require(getattr(self, key) >= 0, f"{key} must be >= 0, got {getattr(self, key)}")
        require(self.blend_eta > 0, f"blend_eta must be > 0, got {self.blend_eta}")
        require(-1 <= self.margin < 1, f"margin must be in [-1, 1), got {self.margin}")
        require(0 <= self.focal_alpha <= 1, f"focal_alpha must be in [0, 1], got {self.focal_alpha}")
        require(self.focal_gamma >= 0, f"focal_gamma must be >= 0, got {self.focal_gamma}")
        require(self.pretrained != "", "pretrained must be none or a path, got an empty string")
        needs = {"adversarial": "content", "feature_blending": "synthesizer", "feature_shuffle": "both"}
        unusable = [key for key, stream in needs.items() if getattr(self, key) and not self._has(stream)]
        them = "it" if len(unusable) == 1 else "them"
        require(not unusable, f"streams={self.streams!r} cannot use {', '.join(unusable)}: set {them} to false")

    def _has(self, stream: str) -> bool:
        """Whether the config builds that stream ("both": both streams)."""
        names = _STREAM_NAMES[self.streams]
        return len(names) == 2 if stream == "both" else stream in names


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


def partners_within_class(labels: torch.Tensor) -> torch.Tensor:
    """(B,) labels -> (B,) int64 partner index of each sample: another sample of its class, itself when alone.

    Within each class, a random cycle through its samples, so no sample of a class of two or more
    is its own partner.
    """
    partner = torch.arange(len(labels), device=labels.device)
    for value in labels.unique():
        members = (labels == value).nonzero().squeeze(1)
        order = members[torch.randperm(len(members), device=labels.device)]
        partner[order] = order.roll(-1)
    return partner


def blend_styles(maps: torch.Tensor, labels: torch.Tensor, eta: float) -> torch.Tensor:
    """Feature blending: (B, C, h, w) maps with style statistics mixed within each class of labels (B,).

    Each map is normalized by its own per-channel mean and std (detached, as in MixStyle), then
    given mu' = (1 - lam) mu_i + lam mu_j + eps_1 sigma_mix / eta and sigma' = sigma_mix (1 + eps_2 / eta),
    j = its partner (``partners_within_class``), lam ~ Beta(1, eta), eps ~ N(0, 1) per channel.
    """
    x = maps.float()  # statistics in float32 under autocast too
    mu = x.mean(dim=(2, 3), keepdim=True).detach()
    sigma = (x.var(dim=(2, 3), keepdim=True, unbiased=False) + _EPS).sqrt().detach()
    j = partners_within_class(labels)
    one = x.new_ones(())
    lam = torch.distributions.Beta(one, one * eta).sample((len(x), 1, 1, 1))
    sigma_mix = (1 - lam) * sigma + lam * sigma[j]
    mu_mix = (1 - lam) * mu + lam * mu[j] + torch.randn_like(mu) * sigma_mix / eta
    sigma_mix = sigma_mix * (1 + torch.randn_like(sigma) / eta)
    return ((x - mu) / sigma * sigma_mix + mu_mix).to(maps.dtype)


def shuffled_labels(y: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """(B,) labels of (F_c of i, F_s of perm[i]) pairs: 1 (bona fide) only when y[i] and y[perm[i]] are both 1."""
    return y * y[perm]


def _derangement(n: int, device: torch.device) -> torch.Tensor:
    """(n,) a random permutation with no fixed point for n >= 2: one cycle through a random order."""
    order = torch.randperm(n, device=device)
    perm = torch.empty_like(order)
    perm[order] = order.roll(-1)
    return perm


class FDL(nn.Module):
    """(B, S) or (B, 1, 1, S) waveform, S = crop_seconds * 16 kHz -> (B, 2) logits (0 = spoof, 1 = bona fide)."""

    def __init__(self, config: FDLConfig):
        super().__init__()
        self.config = config
        self.segment_samples = round(config.crop_seconds * SAMPLE_RATE)
        self.frontend = frontends.build("logspec", segment_seconds=config.crop_seconds)
        w, n, k = config.width, 8 * config.width, len(config.synthesizers) + 1
        self.conv1 = nn.Conv2d(1, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1, self.layer2, self.layer3 = _layer(w, w, 1), _layer(w, 2 * w, 2), _layer(2 * w, 4 * w, 2)
        self.streams = _STREAM_NAMES[config.streams]
        has = set(self.streams)
        self.synth_block = _layer(4 * w, n, 2) if "synthesizer" in has else None
        self.content_block = _layer(4 * w, n, 2) if "content" in has else None
        self.shared_block = _layer(4 * w, n, 2) if "shared" in has else None
        self.synth_head = nn.Linear(n, k) if "synthesizer" in has else None
        self.codec_head = nn.Linear(n, CODEC_CLASSES) if "content" in has else None
        self.speed_head = nn.Linear(n, SPEED_CLASSES) if "content" in has else None
        self.adversary_head = nn.Linear(n, k) if config.adversarial else None
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
        needs_synth = self.synth_head is not None or self.adversary_head is not None
        return ("synth",) * needs_synth + ("codec", "speed") * (self.content_block is not None)

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
        """Waveform -> each stream's pooled (B, N) features: {"synthesizer": F_s, "content": F_c} with both streams."""
        return {name: _pool(m) for name, m in self._encode(x)[1].items()}

    def _logit(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The classifier on the streams' (B, N) features, concatenated in stream order -> (B,) bona fide logit."""
        return self.classifier(torch.cat([feats[name] for name in self.streams], dim=1)).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S) or (B, 1, 1, S) -> (B, 2) logits [-z/2, z/2]: their softmax is [1 - sigmoid(z), sigmoid(z)]."""
        z = self._logit(self.latent(x))
        return torch.stack([-z / 2, z / 2], dim=1)

    def loss_terms(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each loss term, unweighted, as a scalar tensor (the module docstring lists them and their weights).

        batch: "x" (B, S) float32, "y" (B,) int64 (1 = bona fide); with a synthesizer stream or the
        adversary "synth" (B,) int64 (0 = real, i + 1 = synthesizers[i]); with a content stream
        "codec" (B,) int64 in 0..9 and "speed" (B,) int64 in 0..15. Blending and shuffling only in
        training mode.
        """
        cfg = self.config
        y = _labels(batch, "y", 2)
        trunk, maps = self._encode(batch["x"])
        feats = {name: _pool(m) for name, m in maps.items()}
        cls_feats = dict(feats)
        if cfg.feature_blending and self.training:
            cls_feats["synthesizer"] = _pool(blend_styles(maps["synthesizer"], y, cfg.blend_eta))
        terms = {"cls": F.binary_cross_entropy_with_logits(self._logit(cls_feats), y.float())}
        if cfg.contrastive:
            terms["contrastive"] = contrastive_loss(torch.cat([cls_feats[n] for n in self.streams], dim=1), y, cfg.margin)
        if cfg.feature_shuffle and self.training:
            perm = _derangement(len(y), y.device)
            z = self._logit({"content": cls_feats["content"], "synthesizer": cls_feats["synthesizer"][perm]})
            terms["shuffle"] = focal_loss(z, shuffled_labels(y, perm).float(), cfg.focal_alpha, cfg.focal_gamma)
        if self.synth_head is not None or self.adversary_head is not None:
            synth = _labels(batch, "synth", len(cfg.synthesizers) + 1)
        if self.synth_head is not None:
            terms["synth"] = F.cross_entropy(self.synth_head(feats["synthesizer"]), synth)
            if cfg.contrastive:
                terms["synth_contrastive"] = contrastive_loss(feats["synthesizer"], synth, cfg.margin)
        if self.content_block is not None:
            codec, speed = _labels(batch, "codec", CODEC_CLASSES), _labels(batch, "speed", SPEED_CLASSES)
            fc = feats["content"]
            terms["content"] = F.cross_entropy(self.codec_head(fc), codec) + F.cross_entropy(self.speed_head(fc), speed)
        if self.adversary_head is not None:
            head = self.adversary_head
            terms["adversary_head"] = F.cross_entropy(head(feats["content"].detach()), synth)
            fc_only = _pool(self.content_block(trunk.detach()))  # the adversarial gradient stops at the trunk ...
            frozen = F.linear(fc_only, head.weight.detach(), head.bias.detach())  # ... and at the head
            terms["adversarial"] = uniform_adversarial_loss(frozen)
        return terms

    def term_weights(self) -> dict[str, float]:
        """The config's weight of each loss term."""
        cfg = self.config
        return {
            "cls": cfg.cls_weight,
            "shuffle": cfg.cls_weight,
            "synth": cfg.synth_weight,
            "synth_contrastive": cfg.synth_weight,
            "content": cfg.content_weight,
            "contrastive": cfg.contrastive_weight,
            "adversarial": cfg.adversarial_weight,
            "adversary_head": cfg.adversarial_weight,
        }

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
