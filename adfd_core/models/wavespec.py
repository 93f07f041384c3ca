"""WaveSpec (Jin, Lang, Leng, ICASSP 2025): Wav2Vec2 XLS-R waveform features and a CQT U-Net, fused at 3 scales.

    x (B, S) 16 kHz, S = crop_seconds * 16000, normalized per utterance to zero mean, unit variance
    |- Wav2Vec2 XLS-R 300M: outputs of transformer layers ``layers`` = (8, 16, 24)  3 x (B, T, 1024), 50 frames/s
    |- cqt2 front-end (2 x 96 x 251 at 4 s: log|C|, phase) -> light U-Net, one map per level:
    |     level 1 (B, 32, 96, 251), level 2 (B, 64, 48, 125), level 3 = bottleneck (B, 128, 24, 62)
    |- per scale s = 1, 2, 3 (wave layer s with U-Net level s), Cross-Modal Feature Fusion:
    |     channels: wave LayerNorm -> Linear 1024 -> D; spec (C x F) per frame -> Linear -> D   (D = fusion_dim)
    |     time: the spec sequence resampled onto the wave frames (linear interpolation)     -> (B, T, D) each
    |     fusion: gate a = sigmoid(local(w + s) + global(mean_t(w + s))); fused = a * w + (1 - a) * s
    |- aggregation: mean and std over time of each fused scale, concatenated (B, 6D) -> Linear -> embedding (B, E)
    '- classifier: Dropout -> Linear E -> 2 logits (0 = spoof, 1 = bona fide)

    loss = cross-entropy(logits, y) + center_weight * SingleCenterLoss(embedding, y)

The paper's text names the parts (Wav2Vec2 XLS-R, a light U-Net over a 2-channel magnitude/phase
CQT, Cross-Modal Feature Fusion at shallow, middle and deep scales, a single center loss, Adam with
cosine annealing) but not every detail. What it leaves open, and the choice made here:

- waveform scales: the outputs of transformer layers 8, 16 and 24, the ends of the three thirds
  of XLS-R 300M's 24 layers: evenly spread depths, the deepest being the model's final output
  (after its closing LayerNorm), the layer every XLS-R anti-spoofing back-end reads. The encoder
  is built with ``layers[2]`` transformer layers, so no layer above the deepest scale is computed
  or stored (with other ``layers`` the top ones are dropped, and their pretrained weights unused).
- input scaling: each crop is normalized to zero mean and unit variance (what XLS-R's feature
  extractor does, ``do_normalize``) and both branches see the normalized crop, so loudness does
  not shift the log-CQT.
- the encoder runs without LayerDrop and without SpecAugment masking (both pretraining
  regularizers): every layer runs at every step, as partial fine-tuning and DDP need.
- fine-tuning: ``finetune_layers`` = -1 trains all of Wav2Vec2 but, with
  ``freeze_feature_encoder`` (default), its convolutional feature encoder, which wav2vec 2.0 keeps
  frozen when fine-tuning (and which holds the largest activations); k >= 0 trains only the top k
  transformer layers (with the closing LayerNorm of the "stable layer norm" variant), 0 freezes
  the whole encoder. Frozen layers keep their dropout in training mode.
- U-Net: three levels (channels 32/64/128; each a double 3x3 conv - BatchNorm - ReLU), 2x2 max
  pooling down, bilinear upsampling to the skip's size up; the three scales are the final map
  of each level: level 1 and 2 after the decoder (skip plus upsampled deeper level), level 3 the
  bottleneck. So shallow = full resolution, deep = coarsest, as in the waveform branch. A
  BatchNorm over the 2 input channels scales log-magnitude and phase.
- channel alignment keeps the frequency axis: a U-Net map (C, F, T) is read as T frames of C*F
  values (3072 at every level with the defaults) and projected to D; pooling over frequency
  would discard where in the spectrum an artifact lies.
- time alignment is exact, not a stretch: Wav2Vec2 frame k is centred on sample 320 k + 199.5
  (stride and receptive field of its conv stack), CQT frame t on sample 256 t and level-l frame
  j on the centre of the 2^(l-1) CQT frames it pools; each spectrogram scale is linearly
  interpolated at the waveform frames' centres (clamped at the ends), giving 50 frames/s everywhere.
- fusion: attentional feature fusion (multi-scale channel attention, Dai et al., WACV 2021) of the
  two aligned sequences, a per-frame, per-channel soft choice between the modalities with a
  local (per frame) and a global (time mean) context; bottleneck width D / 4.
- aggregation: statistics pooling (mean and standard deviation over time) of each fused scale,
  concatenated and projected to the embedding on which the single center loss acts; a linear
  classifier reads the embedding. fusion_dim = embedding_dim = 256, dropout 0.1 (Wav2Vec2's own).
- single center loss: ``adfd_core.losses.SingleCenterLoss`` (margin 0.3 sqrt(D) and its own hinge
  weight, Li et al. 2021) with its learnable center in this module's state dict; added to the
  cross-entropy with ``center_weight`` = 1.
- crops are 4 s (the cqt2 front-end's 2 x 96 x 251 image).

Weights and the model file: ``pretrained`` names the initial Wav2Vec2 weights, a folder or a
Hugging Face hub id found in the local cache (nothing is downloaded). The built model's
``config`` carries the encoder's architecture as JSON (``encoder_config``), so a model file
rebuilds it with ``pretrained=None`` and random weights, which the file's tensors then replace.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from adfd_core import frontends
from adfd_core.frontends.pretrained import HF_REPO_ID, quiet_transformers
from adfd_core.losses import SingleCenterLoss
from adfd_core.models.config import ModelError, require

if TYPE_CHECKING:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

XLSR_300M = "facebook/wav2vec2-xls-r-300m"
_MIN_SECONDS = 0.1  # s: a few Wav2Vec2 frames and enough CQT frames for two poolings
_NORM_EPS = 1e-7  # added to the crop's variance before the normalization
_GATE_REDUCTION = 4  # fusion gate bottleneck: D -> D / 4 -> D

# Wav2Vec2Config fields that encoder_config holds: every one that shapes Wav2Vec2Model or its training-mode forward.
ENCODER_KEYS = (
    "activation_dropout", "attention_dropout", "conv_bias", "conv_dim", "conv_kernel", "conv_stride",
    "do_stable_layer_norm", "feat_extract_activation", "feat_extract_norm", "feat_proj_dropout", "hidden_act",
    "hidden_dropout", "hidden_size", "intermediate_size", "layer_norm_eps", "num_attention_heads",
    "num_conv_pos_embedding_groups", "num_conv_pos_embeddings", "num_hidden_layers",
)  # fmt: skip
# Set on every encoder WaveSpec builds: no LayerDrop, no SpecAugment masking (no masked_spec_embed), no adapters.
_FIXED = {
    "layerdrop": 0.0, "mask_time_prob": 0.0, "mask_feature_prob": 0.0, "apply_spec_augment": False,
    "add_adapter": False, "adapter_attn_dim": None,
}  # fmt: skip
# facebook/wav2vec2-xls-r-300m's published config.json, the fields of ENCODER_KEYS.
_XLSR_300M = {
    "activation_dropout": 0.0, "attention_dropout": 0.1, "conv_bias": True, "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2], "conv_stride": [5, 2, 2, 2, 2, 2, 2], "do_stable_layer_norm": True,
    "feat_extract_activation": "gelu", "feat_extract_norm": "layer", "feat_proj_dropout": 0.1, "hidden_act": "gelu",
    "hidden_dropout": 0.1, "hidden_size": 1024, "intermediate_size": 4096, "layer_norm_eps": 1e-5,
    "num_attention_heads": 16, "num_conv_pos_embedding_groups": 16, "num_conv_pos_embeddings": 128,
    "num_hidden_layers": 24,
}  # fmt: skip


def _canonical(fields: dict[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def xlsr_300m_encoder_config() -> str:
    """encoder_config of the full XLS-R 300M architecture (24 layers, hidden 1024, 16 heads, FFN 4096)."""
    return _canonical(_XLSR_300M)


def encoder_json(config: Wav2Vec2Config) -> str:
    """The ENCODER_KEYS fields of a Wav2Vec2Config as compact, key-sorted JSON: what encoder_config holds."""
    fields = config.to_dict()
    return _canonical({key: fields[key] for key in ENCODER_KEYS})


def _encoder_fields(text: str) -> dict[str, Any]:
    """encoder_config text -> its fields, or ModelError saying what is wrong."""
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"encoder_config is not JSON ({exc})") from None
    require(isinstance(fields, dict), f"encoder_config must be a JSON object, got {type(fields).__name__}")
    missing, unknown = sorted(set(ENCODER_KEYS) - set(fields)), sorted(set(fields) - set(ENCODER_KEYS))
    require(not missing, f"encoder_config lacks {', '.join(missing)}")
    require(not unknown, f"encoder_config has unknown key(s) {', '.join(unknown)}; it takes {', '.join(ENCODER_KEYS)}")
    depth = fields["num_hidden_layers"]
    require(isinstance(depth, int) and depth >= 1, f"encoder_config num_hidden_layers must be >= 1, got {depth!r}")
    return fields


@dataclass(frozen=True)
class WaveSpecConfig:
    """WaveSpec; the built model's ``config`` has encoder_config filled in from the loaded encoder."""

    crop_seconds: float = 4.0  # s of 16 kHz audio per input
    pretrained: str | None = XLSR_300M  # Wav2Vec2 weights: folder or hub id in the local HF cache; None: random weights
    encoder_config: str = ""  # the encoder's architecture, JSON of ENCODER_KEYS; "" with pretrained none: XLS-R 300M
    layers: tuple[int, int, int] = (8, 16, 24)  # Wav2Vec2 layer outputs (1-based) for the shallow, middle, deep scale
    finetune_layers: int = -1  # top transformer layers trained: -1 all, 0 none (encoder frozen)
    freeze_feature_encoder: bool = True  # keep the conv feature encoder frozen when finetune_layers = -1
    unet_channels: tuple[int, int, int] = (32, 64, 128)  # U-Net level widths
    fusion_dim: int = 256  # D: width of every aligned and fused scale
    embedding_dim: int = 256  # E: utterance embedding (the single center loss's space)
    dropout: float = 0.1  # before the classifier
    center_weight: float = 1.0  # weight of the single center loss beside the cross-entropy
    center_margin: float = 0.3  # single center loss margin m (times sqrt(E))

    def __post_init__(self) -> None:
        require(self.crop_seconds >= _MIN_SECONDS, f"crop_seconds must be >= {_MIN_SECONDS}, got {self.crop_seconds}")
        require(self.pretrained != "", "pretrained must be none, a hub id or a folder, got an empty string")
        shallow, middle, deep = self.layers
        require(1 <= shallow < middle < deep, f"layers must be increasing layer numbers >= 1, got {self.layers}")
        if self.encoder_config:
            depth = _encoder_fields(self.encoder_config)["num_hidden_layers"]
            require(deep <= depth, f"layers {self.layers} go deeper than encoder_config's {depth} layers")
        require(
            -1 <= self.finetune_layers <= deep,
            f"finetune_layers must be -1 (all), 0 (none) or up to {deep} (the deepest layer used), got {self.finetune_layers}",
        )
        require(all(c >= 1 for c in self.unet_channels), f"unet_channels must be positive, got {self.unet_channels}")
        for key in ("fusion_dim", "embedding_dim"):
            require(getattr(self, key) >= 1, f"{key} must be >= 1, got {getattr(self, key)}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        require(self.center_weight >= 0, f"center_weight must be >= 0, got {self.center_weight}")
        require(self.center_margin >= 0, f"center_margin must be >= 0, got {self.center_margin}")


# --------------------------------------------------------------------------- the waveform encoder


def _not_found(name: str, reason: str) -> ModelError:
    return ModelError(
        f"pretrained={name!r}: Wav2Vec2 weights not found locally ({reason}); on a machine with internet run "
        f"`hf download {XLSR_300M}` and copy its Hugging Face cache (~/.cache/huggingface, or $HF_HOME) "
        "here, or download to a folder and pass --set pretrained=/path/to/folder"
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_encoder(name: str, depth: int) -> Wav2Vec2Model:
    """The Wav2Vec2Model of folder or hub id ``name`` (local files only), cut to its first ``depth`` layers."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    folder = Path(name).expanduser()
    if folder.exists() and not (folder / "config.json").is_file():
        raise _not_found(name, f"{folder} has no config.json")
    if not folder.exists() and not HF_REPO_ID.fullmatch(name):  # transformers would call it a malformed repo id
        raise _not_found(name, f"{folder}: no such folder")
    try:
        config = Wav2Vec2Config.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise _not_found(name, _first_line(exc)) from None
    require(
        config.num_hidden_layers >= depth,
        f"pretrained={name!r} has {config.num_hidden_layers} layers; layers asks for layer {depth}",
    )
    config.update({**_FIXED, "num_hidden_layers": depth})
    try:
        with quiet_transformers():
            model, info = Wav2Vec2Model.from_pretrained(name, config=config, local_files_only=True, output_loading_info=True)
    except (OSError, ValueError) as exc:
        raise _not_found(name, _first_line(exc)) from None
    lacking = sorted(info["missing_keys"]) + sorted(str(k) for k in info["mismatched_keys"])
    require(not lacking, f"pretrained={name!r}: weights do not fit its config: {', '.join(lacking[:3])}")
    return model.float()


def build_encoder(text: str, depth: int) -> Wav2Vec2Model:
    """A randomly initialized Wav2Vec2Model of encoder_config ``text``, cut to its first ``depth`` layers."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    fields = {**_encoder_fields(text), **_FIXED, "num_hidden_layers": depth}
    try:
        return Wav2Vec2Model(Wav2Vec2Config(**fields))
    except (ValueError, TypeError) as exc:
        raise ModelError(f"encoder_config does not make a Wav2Vec2 model: {_first_line(exc)}") from None


def set_trainable(encoder: Wav2Vec2Model, finetune_layers: int, freeze_feature_encoder: bool) -> None:
    """requires_grad of the encoder's parameters: all (-1, the conv feature encoder as asked), none (0), or the top k layers."""
    body = encoder.encoder
    encoder.requires_grad_(finetune_layers == -1)
    if finetune_layers > 0:
        body.layers[-finetune_layers:].requires_grad_(True)
        if encoder.config.do_stable_layer_norm:  # the stable variant's LayerNorm closes the stack
            body.layer_norm.requires_grad_(True)
    if finetune_layers != -1 or freeze_feature_encoder:
        encoder.freeze_feature_encoder()  # also stops it from building a graph for its input


def _receptive_field(kernels: list[int], strides: list[int]) -> int:
    """Samples seen by one output frame of a conv stack."""
    field, jump = 1, 1
    for kernel, stride in zip(kernels, strides):
        field += (kernel - 1) * jump
        jump *= stride
    return field


class WaveEncoder(nn.Module):
    """Wav2Vec2 hidden states at chosen depths: (B, S) normalized waveform -> 3 x (B, T, H)."""

    def __init__(self, model: Wav2Vec2Model, layers: tuple[int, int, int]):
        super().__init__()
        self.model = model
        self.layers = layers
        config = model.config
        self.stride = math.prod(config.conv_stride)  # samples between frames (320: 50 frames/s)
        self.centre = (_receptive_field(config.conv_kernel, config.conv_stride) - 1) / 2  # frame 0's centre, samples

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of layers[0], layers[1], layers[2] (the last through the stable variant's closing LayerNorm)."""
        model, body = self.model, self.model.encoder
        h, _ = model.feature_projection(model.feature_extractor(x).transpose(1, 2))
        h = h + body.pos_conv_embed(h)
        if not model.config.do_stable_layer_norm:
            h = body.layer_norm(h)
        h = body.dropout(h)
        outputs = []
        for number, layer in enumerate(body.layers, start=1):
            h = layer(h)
            h = h[0] if isinstance(h, tuple) else h  # transformers < 5 returns a tuple
            if number in self.layers:
                outputs.append(h)
        if model.config.do_stable_layer_norm:
            outputs[-1] = body.layer_norm(outputs[-1])
        return outputs


# --------------------------------------------------------------------------- the spectrogram encoder


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """2 x {Conv 3x3 - BatchNorm - ReLU}: (B, c_in, F, T) -> (B, c_out, F, T)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )  # fmt: skip


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class SpecUNet(nn.Module):
    """Light 3-level U-Net: (B, 2, F, T) -> [(B, c1, F, T), (B, c2, F/2, T/2), (B, c3, F/4, T/4)] (sizes floored)."""

    def __init__(self, channels: tuple[int, int, int]):
        super().__init__()
        c1, c2, c3 = channels
        self.norm = nn.BatchNorm2d(2)
        self.down1, self.down2, self.bottom = _double_conv(2, c1), _double_conv(c1, c2), _double_conv(c2, c3)
        self.up2, self.up1 = _double_conv(c3 + c2, c2), _double_conv(c2 + c1, c1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        e1 = self.down1(self.norm(x))
        e2 = self.down2(F.max_pool2d(e1, 2))
        e3 = self.bottom(F.max_pool2d(e2, 2))
        d2 = self.up2(torch.cat([_up(e3, e2), e2], dim=1))
        d1 = self.up1(torch.cat([_up(d2, e1), e1], dim=1))
        return [d1, d2, e3]


# --------------------------------------------------------------------------- fusion


def frame_positions(n_frames: int, stride: float, centre: float, hop: int, reduction: int) -> torch.Tensor:
    """(n_frames,) fractional frame indices, on a spectrogram level whose frame j pools CQT frames
    reduction*j .. reduction*j + reduction - 1 (CQT frame t centred on sample hop*t), of the
    waveform frames centred on samples stride*k + centre."""
    centres = torch.arange(n_frames, dtype=torch.float32) * stride + centre
    return (centres / hop - (reduction - 1) / 2) / reduction


def resample_frames(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (B, len(positions), D): linear interpolation at fractional frame positions, clamped to the ends."""
    pos = positions.to(x.device).clamp(0, x.shape[1] - 1)
    low = pos.floor().long()
    high = (low + 1).clamp(max=x.shape[1] - 1)
    frac = (pos - low).to(x.dtype)[None, :, None]
    return x[:, low] * (1 - frac) + x[:, high] * frac


def _bottleneck(dim: int) -> nn.Sequential:
    hidden = max(1, dim // _GATE_REDUCTION)
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class CrossModalFusion(nn.Module):
    """One scale: align (B, T, H) wave and (B, C, F, T') spectrogram features to (B, T, D) each, then fuse them."""

    def __init__(self, wave_dim: int, spec_dim: int, dim: int, reduction: int):
        super().__init__()
        self.reduction = reduction  # CQT frames per frame of this spectrogram level
        self.wave = nn.Sequential(nn.LayerNorm(wave_dim), nn.Linear(wave_dim, dim))
        self.spec = nn.Linear(spec_dim, dim)
        self.local, self.context = _bottleneck(dim), _bottleneck(dim)

    def align(self, wave: torch.Tensor, spec: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, H), (B, C, F, T') and (T,) positions of the wave frames on this level -> (B, T, D), (B, T, D)."""
        b, c, f, t = spec.shape
        frames = self.spec(spec.permute(0, 3, 1, 2).reshape(b, t, c * f))
        return self.wave(wave), resample_frames(frames, positions)

    def forward(self, wave: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """Aligned (B, T, D) pair -> (B, T, D): gate * wave + (1 - gate) * spec."""
        both = wave + spec
        gate = torch.sigmoid(self.local(both) + self.context(both.mean(dim=1, keepdim=True)))
        return gate * wave + (1 - gate) * spec


class ScaleFeatures(NamedTuple):
    """One scale, every tensor (B, T, D) on the waveform's frames."""

    wave: torch.Tensor
    spec: torch.Tensor
    fused: torch.Tensor


# --------------------------------------------------------------------------- the model


class WaveSpec(nn.Module):
    """(B, S) or (B, 1, 1, S) 16 kHz waveform, S = round(crop_seconds * 16000) -> (B, 2) logits."""

    def __init__(self, config: WaveSpecConfig):
        super().__init__()
        deep = config.layers[-1]
        if config.pretrained is not None:
            model = load_encoder(config.pretrained, deep)
            loaded = encoder_json(model.config)
            if config.encoder_config:
                given = {**_encoder_fields(config.encoder_config), "num_hidden_layers": deep}
                require(given == json.loads(loaded), f"encoder_config does not describe pretrained={config.pretrained!r}")
            config = dataclasses.replace(config, encoder_config=loaded)
        else:
            model = build_encoder(config.encoder_config or xlsr_300m_encoder_config(), deep)  # random weights
            config = dataclasses.replace(config, encoder_config=encoder_json(model.config))
        self.config = config
        set_trainable(model, config.finetune_layers, config.freeze_feature_encoder)
        self.wave_encoder = WaveEncoder(model, config.layers)
        self.frontend = frontends.build("cqt2", segment_seconds=config.crop_seconds)
        self.samples = self.frontend.segment_samples
        self.hop = self.frontend.hop
        _, bins, _ = self.frontend.output_shape()
        self.unet = SpecUNet(config.unet_channels)
        hidden, d = model.config.hidden_size, config.fusion_dim
        self.fusions = nn.ModuleList(
            CrossModalFusion(hidden, c * (bins // 2**level), d, 2**level) for level, c in enumerate(config.unet_channels)
        )
        self.embed = nn.Linear(2 * d * len(self.fusions), config.embedding_dim)
        self.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.embedding_dim, 2))
        self.center_loss = SingleCenterLoss(config.embedding_dim, margin=config.center_margin)

    def _waveform(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S) or (B, 1, 1, S) -> (B, S) float32, zero mean and unit variance per row."""
        shaped = x.dim() == 2 or (x.dim() == 4 and x.shape[1] == x.shape[2] == 1)
        if not shaped or x.shape[-1] != self.samples:
            raise ModelError(
                f"model expects input of shape (batch, {self.samples}) or (batch, 1, 1, {self.samples}), got {tuple(x.shape)}"
            )
        x = x.reshape(x.shape[0], -1).float()
        centred = x - x.mean(dim=1, keepdim=True)
        return centred / torch.sqrt(centred.square().mean(dim=1, keepdim=True) + _NORM_EPS)

    def scales(self, x: torch.Tensor) -> list[ScaleFeatures]:
        """The shallow, middle and deep scales, each (wave, spec, fused) of shape (B, T, D), T = Wav2Vec2 frames."""
        x = self._waveform(x)
        with torch.autocast(x.device.type, enabled=False):  # the CQT, its log and its angle in float32
            image = self.frontend(x)
        waves = self.wave_encoder(x)
        n_frames = waves[0].shape[1]
        out = []
        for fusion, wave, spec in zip(self.fusions, waves, self.unet(image)):
            positions = frame_positions(n_frames, self.wave_encoder.stride, self.wave_encoder.centre, self.hop, fusion.reduction)
            w, s = fusion.align(wave, spec, positions)
            out.append(ScaleFeatures(w, s, fusion(w, s)))
        return out

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, E): mean and std over time of each fused scale, projected."""
        pooled = [torch.cat([s.fused.mean(dim=1), s.fused.std(dim=1, unbiased=False)], dim=1) for s in self.scales(x)]
        return self.embed(torch.cat(pooled, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S) or (B, 1, 1, S) -> (B, 2) logits."""
        return self.classifier(self.embedding(x))

    def loss(self, logits: torch.Tensor, emb: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """CE(logits (B, 2), y) + center_weight * SingleCenterLoss(emb (B, E), y); with the parts, unweighted."""
        ce = F.cross_entropy(logits.float(), y)
        center = self.center_loss(emb.float(), y)
        return ce + self.config.center_weight * center, {"ce": ce.item(), "center": center.item()}

    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """batch["x"] (B, S) float32 and batch["y"] (B,) int64 (1 = bona fide) -> scalar loss and its parts."""
        emb = self.embedding(batch["x"])
        return self.loss(self.classifier(emb), emb, batch["y"])
