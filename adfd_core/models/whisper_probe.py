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
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adfd_core.frontends.whisper_net import CONFIG_KEYS
from adfd_core.models.config import ModelError, require

SAMPLE_RATE = 16_000  # Hz
# openai/whisper-base's encoder cut to 2-s segments (100 positions), all 6 blocks: the default.
_WHISPER_BASE_2S = {
    "activation_dropout": 0.0, "activation_function": "gelu", "attention_dropout": 0.0, "d_model": 512, "dropout": 0.0,
    "encoder_attention_heads": 8, "encoder_ffn_dim": 2048, "encoder_layers": 6, "max_source_positions": 100, "num_mel_bins": 80,
}  # fmt: skip
STORAGE_DTYPES = {"float16": torch.float16, "float32": torch.float32}


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

    def __post_init__(self) -> None:
        from adfd_core.frontends.embeddings import POOLINGS

        require(self.crop_seconds > 0, f"crop_seconds must be > 0, got {self.crop_seconds}")
        depth = _encoder_fields(self.encoder_config)["encoder_layers"]
        want = self.layers or (self.full_depth,)
        require(list(want) == sorted(set(want)) and want[0] >= 0, f"layers must be increasing numbers >= 0, got {self.layers}")
        require(want[-1] == depth <= self.full_depth, f"the encoder keeps {depth} blocks; layers {want} (of {self.full_depth}) need {want[-1]}")
        require(self.pooling in POOLINGS, f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        require(self.storage_dtype in STORAGE_DTYPES, f"storage_dtype must be one of {', '.join(STORAGE_DTYPES)}, got {self.storage_dtype!r}")


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S) or (B, 1, 1, S) -> (B, 2) logits."""
        shaped = x.dim() == 2 or (x.dim() == 4 and x.shape[1] == x.shape[2] == 1)
        if not shaped or x.shape[-1] != self.samples:
            raise ModelError(
                f"model expects input of shape (batch, {self.samples}) or (batch, 1, 1, {self.samples}), got {tuple(x.shape)}"
            )
        return self.head(self.pool(x.reshape(x.shape[0], -1).float()))


def _store_encoder_as(dtype: torch.dtype):
    """A state-dict hook that gives the encoder's floating tensors in ``dtype`` (loading casts them back)."""

    def hook(module: nn.Module, state: dict[str, torch.Tensor], prefix: str, local_metadata: Any) -> None:
        if dtype == torch.float32:
            return
        for key in [k for k in state if k.startswith(prefix + "pool.encoder.")]:
            if state[key].is_floating_point():
                state[key] = state[key].to(dtype)

    return hook
