"""A self-contained Whisper detector: the whisper front-end's log-mel and encoder, its pooling, and a back-end head.

    x (B, S) 16 kHz, S = crop_seconds * 16000 (the front-end's segment)
    -> log-mel (Whisper's, zero-padded to the encoder's positions x 320 samples)
    -> Whisper encoder, cut after the deepest of ``layers``        (its weights in the model file)
    -> hidden states ``layers`` pooled over the frames covering x  (B, D | 2D) or (B, L, D | 2D)
       (``frames``: not pooled, the T frames covering x            (B, T, D) or (B, L, T, D))
    -> the head: a registered segment model (``mlp.v1``, ``logreg.v1``, ``layerweight.v1``,
       ``attentive.v1``) with its input standardization            (B, 2) logits

It computes exactly what the whisper front-end (adfd_core.frontends.embeddings) and a back-end
trained on its rows compute in two steps, from one model file, with no Whisper folder: ``bundle``
(adfd_core.bundle) makes it from such a back-end and the network it was trained on. The model is a
``wave`` model, so ``score`` cuts a recording into the front-end's 2-s segments as before.

The encoder's architecture travels in the config (``encoder_config``: the WhisperConfig fields of
the encoder as cut: blocks kept, positions kept), its weights in the file. ``storage_dtype`` =
float16 stores the encoder's tensors in half precision (half the file), float32 as they are;
either way the model computes in float32: loading casts them back.

Fine-tuning: ``pretrained`` names a whisper-probe.v1 model file to start from (the bundled default
model, an ``adfd bundle`` output, an earlier fine-tune). Its architecture (ARCHITECTURE) and, unless
set, its storage_dtype become this config's (``from_start``; a field set to something else is an
error), and its weights the model's initial ones; a model file records the path as provenance and
is rebuilt without it. ``finetune_blocks`` says what training changes: -1 every weight; 0 the head
only; k the head and the last k kept blocks (with the closing LayerNorm where the encoder ends in
it). The rest (convolutions, positions, earlier blocks) is frozen: out of the optimizer, in eval
mode, and, its parameters needing no gradient and its input none either, run without a graph, so a
step stores activations for the tuned blocks and the head only.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from adfd_core.frontends.whisper_net import CONFIG_KEYS
from adfd_core.models.config import ModelError, require

if TYPE_CHECKING:
    from adfd_core.modelfile import ModelFile

SAMPLE_RATE = 16_000  # Hz
# openai/whisper-base's encoder cut to 2-s segments (100 positions), all 6 blocks: the default.
_WHISPER_BASE_2S = {
    "activation_dropout": 0.0, "activation_function": "gelu", "attention_dropout": 0.0, "d_model": 512, "dropout": 0.0,
    "encoder_attention_heads": 8, "encoder_ffn_dim": 2048, "encoder_layers": 6, "max_source_positions": 100, "num_mel_bins": 80,
}  # fmt: skip
STORAGE_DTYPES = {"float16": torch.float16, "float32": torch.float32}
# The fields a start model file (``pretrained``) fixes: what the network is, so that its weights fit.
ARCHITECTURE = ("crop_seconds", "encoder_config", "full_depth", "layers", "pooling", "pad_to_30s", "head", "head_config")


def encoder_json(fields: dict[str, Any]) -> str:
    """The CONFIG_KEYS fields of an encoder (whisper_net.Encoder.fields) as compact, key-sorted JSON."""
    return json.dumps({key: fields[key] for key in CONFIG_KEYS}, sort_keys=True, separators=(",", ":"))


def _encoder_fields(text: str) -> dict[str, Any]:
    try:
        fields = json.loads(text) if text else dict(_WHISPER_BASE_2S)
    except json.JSONDecodeError as exc:
        raise ModelError(f"encoder_config is not JSON ({exc})") from None
    require(isinstance(fields, dict) and set(fields) == set(CONFIG_KEYS), f"encoder_config must hold exactly {', '.join(CONFIG_KEYS)}")
    return fields


@dataclass(frozen=True)
class WhisperProbeConfig:
    """The Whisper encoder as cut, the front-end's pooling, and the head: registry name and config (JSON)."""

    crop_seconds: float = 2.0  # s: the whisper front-end's segment_seconds
    encoder_config: str = ""  # JSON of CONFIG_KEYS for the encoder as cut; "": whisper-base for 2-s segments
    full_depth: int = 6  # blocks of the whole network: its last hidden state goes through the closing LayerNorm
    layers: tuple[int, ...] = ()  # hidden states pooled (the front-end's ``layers``); (): the last, full_depth
    pooling: str = "mean"  # the front-end's pooling: mean, mean+std or frames
    pad_to_30s: bool = False  # the front-end's pad_to_30s: encoder positions for 30 s, pooled over the segment's
    head: str = "mlp.v1"  # a registered segment model
    head_config: str = ""  # its config as JSON; "": its defaults with input_shape from the encoder and pooling
    storage_dtype: str = "float16"  # the encoder's tensors in the model file: float16 or float32
    pretrained: str | None = None  # a whisper-probe.v1 model file training starts from (architecture and weights)
    finetune_blocks: int = -1  # what training changes: -1 every weight, 0 the head only, k the head and the last k blocks

    ADDED: ClassVar[dict[str, Any]] = {"pretrained": None, "finetune_blocks": -1}  # what files written before them mean

    def __post_init__(self) -> None:
        from adfd_core.frontends.embeddings import POOLINGS

        require(self.crop_seconds > 0, f"crop_seconds must be > 0, got {self.crop_seconds}")
        depth = _encoder_fields(self.encoder_config)["encoder_layers"]
        want = self.layers or (self.full_depth,)
        require(list(want) == sorted(set(want)) and want[0] >= 0, f"layers must be increasing numbers >= 0, got {self.layers}")
        require(want[-1] == depth <= self.full_depth, f"the encoder keeps {depth} blocks; layers {want} (of {self.full_depth}) need {want[-1]}")
        require(self.pooling in POOLINGS, f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        require(self.storage_dtype in STORAGE_DTYPES, f"storage_dtype must be one of {', '.join(STORAGE_DTYPES)}, got {self.storage_dtype!r}")
        require(self.pretrained != "", "pretrained must be none or a whisper-probe.v1 model file, got an empty string")
        if self.pretrained is None or self.encoder_config:  # else the blocks kept are the start file's, known after from_start
            require(-1 <= self.finetune_blocks <= depth,
                    f"finetune_blocks must be -1 (every weight), 0 (the head only) or up to {depth} (the blocks kept), "
                    f"got {self.finetune_blocks}")

    def from_start(self, given: Collection[str]) -> WhisperProbeConfig:
        """This config with the ARCHITECTURE of the model file ``pretrained`` names, and its storage_dtype unless
        ``given`` (the fields set explicitly) holds it; ModelError naming the file where it is no whisper-probe.v1
        model, a given field contradicts it, or the rest does not fit it (finetune_blocks beyond its blocks)."""
        if self.pretrained is None:
            return self
        start = read_start(self.pretrained).config
        for key in ARCHITECTURE:
            if key in given and not _same(key, getattr(self, key), getattr(start, key)):
                raise ModelError(f"pretrained {self.pretrained}: {key}={getattr(self, key)!r} contradicts the model it starts from "
                                 f"({key}={getattr(start, key)!r}); leave {key} unset, the start file fixes it")
        taken = [*ARCHITECTURE, *(["storage_dtype"] if "storage_dtype" not in given else [])]
        try:
            return dataclasses.replace(self, **{key: getattr(start, key) for key in taken})
        except ModelError as exc:
            raise ModelError(f"pretrained {self.pretrained}: {exc}") from None


def _same(key: str, mine: Any, theirs: Any) -> bool:
    """Whether two values of config field ``key`` mean the same (JSON fields compared as parsed)."""
    if key == "encoder_config":
        return _encoder_fields(mine) == _encoder_fields(theirs)
    if key == "head_config" and mine and theirs:
        return json.loads(mine) == json.loads(theirs)
    return mine == theirs


def read_start(path: str) -> ModelFile:
    """The metadata of the whisper-probe.v1 model file ``path`` (no tensors read); ModelError naming it otherwise."""
    from adfd_core.modelfile import ModelFileError, read_model_info

    file = Path(path).expanduser()
    if file.is_dir():
        raise ModelError(f"pretrained {path}: a folder; whisper-probe.v1 starts from a whisper-probe.v1 model file "
                         "(`adfd bundle` makes one from a back-end trained on whisper rows and its Whisper folder)")
    try:
        info = read_model_info(file)
    except ModelFileError as exc:
        raise ModelError(f"pretrained {exc}") from None
    require(info.name == "whisper-probe.v1",
            f"pretrained {path}: a {info.name} model; whisper-probe.v1 starts from a whisper-probe.v1 model file "
            "(the default model, or one `adfd bundle` made)")
    return info


def _head(config: WhisperProbeConfig, row_shape: tuple[int, ...]) -> tuple[nn.Module, Any]:
    """The head model (registry-built, standardized) for rows of ``row_shape``, and its config."""
    from adfd_core.models import registry

    entry = registry.entry(config.head)
    require(entry.input_kind == "segments", f"head must be a segment model, got {config.head} ({entry.input_kind})")
    if config.head_config:
        try:
            head_config = registry.config_from_dict(config.head, json.loads(config.head_config))
        except json.JSONDecodeError as exc:
            raise ModelError(f"head_config is not JSON ({exc})") from None
    else:
        head_config = registry.make_config(config.head, input_shape=row_shape)
    require(tuple(head_config.input_shape) == row_shape, f"head takes rows of {tuple(head_config.input_shape)}; the encoder gives {row_shape}")
    return registry.build(config.head, head_config, pretrained=False), head_config


class WhisperProbe(nn.Module):
    """(B, S) or (B, 1, 1, S) 16 kHz waveform, S = round(crop_seconds * 16000) -> (B, 2) logits."""

    def __init__(self, config: WhisperProbeConfig):
        super().__init__()
        from adfd_core.frontends.embeddings import WhisperEncoderPool, pooled_row_shape
        from adfd_core.frontends.whisper_net import Encoder, LogMel

        config = config.from_start(given=_set_fields(config))  # (training has done so already, knowing what was set)
        fields = _encoder_fields(config.encoder_config)
        encoder = Encoder(fields)
        log_mel = LogMel(fields["num_mel_bins"])
        frame = log_mel.hop_length * encoder.conv1.stride[0] * encoder.conv2.stride[0]  # samples per position
        self.samples = round(config.crop_seconds * SAMPLE_RATE)
        n_real = math.ceil(self.samples / frame)
        require(n_real <= fields["max_source_positions"], f"crop_seconds={config.crop_seconds} is longer than the encoder's positions")
        layers = config.layers or None
        self.pool = WhisperEncoderPool(log_mel, encoder, fields["max_source_positions"] * frame, n_real, config.full_depth, layers, config.pooling)
        row_shape = pooled_row_shape(fields["d_model"], n_real, 1 if layers is None else len(layers), config.pooling)
        self.head, head_config = _head(config, row_shape)
        self.config = config
        self.head_config = head_config
        self.storage = STORAGE_DTYPES[config.storage_dtype]
        self.register_state_dict_post_hook(_store_encoder_as(self.storage))
        if config.pretrained is not None:
            self._load_start(config.pretrained)
        for module in self.frozen():
            module.requires_grad_(False)

    def _load_start(self, path: str) -> None:
        from adfd_core.modelfile import ModelFileError, load_model

        try:
            start, _ = load_model(Path(path).expanduser())
        except ModelFileError as exc:
            raise ModelError(f"pretrained {exc}") from None
        with torch.no_grad():
            self.load_state_dict(start.state_dict())

    def frozen(self) -> list[nn.Module]:
        """The parts training leaves as they are (see finetune_blocks): none for -1; else the log-mel, the
        convolutions and positions, the blocks before the last finetune_blocks, and the closing LayerNorm
        unless it follows a tuned block."""
        k = self.config.finetune_blocks
        if k == -1:
            return []
        encoder = self.pool.encoder
        blocks = len(encoder.layers)
        closing = [] if k > 0 and blocks == self.config.full_depth else [encoder.layer_norm]  # used after the full depth only
        return [self.pool.to_mel, encoder.conv1, encoder.conv2, encoder.embed_positions, *encoder.layers[: blocks - k], *closing]

    def train(self, mode: bool = True) -> WhisperProbe:
        """As nn.Module.train, but the frozen parts stay in eval mode."""
        super().train(mode)
        for module in self.frozen():
            module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S) or (B, 1, 1, S) -> (B, 2) logits."""
        shaped = x.dim() == 2 or (x.dim() == 4 and x.shape[1] == x.shape[2] == 1)
        if not shaped or x.shape[-1] != self.samples:
            raise ModelError(
                f"model expects input of shape (batch, {self.samples}) or (batch, 1, 1, {self.samples}), got {tuple(x.shape)}"
            )
        return self.head(self.pool(x.reshape(x.shape[0], -1).float()))


def _set_fields(config: WhisperProbeConfig) -> set[str]:
    """The fields of ``config`` that differ from their defaults."""
    return {f.name for f in dataclasses.fields(config) if getattr(config, f.name) != f.default}


def _store_encoder_as(dtype: torch.dtype):
    """A state-dict hook that gives the encoder's floating tensors in ``dtype`` (loading casts them back)."""

    def hook(module: nn.Module, state: dict[str, torch.Tensor], prefix: str, local_metadata: Any) -> None:
        if dtype == torch.float32:
            return
        for key in [k for k in state if k.startswith(prefix + "pool.encoder.")]:
            if state[key].is_floating_point():
                state[key] = state[key].to(dtype)

    return hook
