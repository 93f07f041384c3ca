"""Whisper's log-mel front-end and audio encoder in plain torch.

Numerically what transformers' WhisperFeatureExtractor (its torch path) and WhisperEncoder compute,
with transformers' parameter names, so a state dict moves between the two unchanged. Scoring with a
bundled Whisper detector (whisper-probe.v1) builds these and never imports transformers, whose
Whisper modules take about 2.5 s to import.

    LogMel:   (B, S) 16 kHz -> (B, n_mels, S / 160) log10 mel power, floored 8 below the maximum, (x + 4) / 4
    Encoder:  (B, n_mels, 2P) -> conv1, conv2 (stride 2) with GELU -> + positions -> blocks -> (B, P, D)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 16_000  # Hz
N_FFT = 400  # samples: 25 ms
HOP_LENGTH = 160  # samples: 10 ms
LOG_FLOOR_RANGE = 8.0  # log10 units below the maximum of each example
# WhisperConfig fields that shape the encoder (the dropouts are kept for the record; inference uses none).
CONFIG_KEYS = (
    "activation_dropout", "activation_function", "attention_dropout", "d_model", "dropout", "encoder_attention_heads",
    "encoder_ffn_dim", "encoder_layers", "max_source_positions", "num_mel_bins",
)  # fmt: skip


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    log_step = 27.0 / np.log(6.4)
    return np.where(hz < 1000.0, 3.0 * hz / 200.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) * log_step)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(mel < 15.0, 200.0 * mel / 3.0, 1000.0 * np.exp(log_step * (mel - 15.0)))


def mel_filters(n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangular filters on Slaney's mel scale from 0 Hz to Nyquist, each
    scaled to unit area (Slaney normalization), as Whisper's feature extractor makes them."""
    fft_hz = np.linspace(0, sample_rate // 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    slopes = edges[None, :] - fft_hz[:, None]
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))


class LogMel(nn.Module):
    """(B, S) -> (B, n_mels, S // 160): Whisper's log-mel spectrogram of each example."""

    hop_length = HOP_LENGTH

    def __init__(self, n_mels: int):
        super().__init__()
        # Constants made on the CPU even where modules are built on the meta device (as model files are):
        # they are not in any state dict, and window functions on meta import torch._dynamo (1.4 s).
        self.register_buffer("filters", torch.from_numpy(mel_filters(n_mels)).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT, device="cpu"), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stft = torch.stft(x.float(), N_FFT, HOP_LENGTH, window=self.window, return_complex=True)
        power = stft[..., :-1].abs() ** 2
        log = (self.filters.T @ power).clamp(min=1e-10).log10()
        log = torch.maximum(log, log.amax(dim=(1, 2), keepdim=True) - LOG_FLOOR_RANGE)
        return (log + 4.0) / 4.0


class SelfAttention(nn.Module):
    """(B, T, D) -> (B, T, D): multi-head self-attention, no mask; the key projection has no bias."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        q, k, v = (proj(h).view(b, t, self.heads, d // self.heads).transpose(1, 2) for proj in (self.q_proj, self.k_proj, self.v_proj))
        return self.out_proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """(B, T, D) -> (B, T, D): pre-norm attention and a GELU feed-forward, each with a residual."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int):
        super().__init__()
        self.self_attn = SelfAttention(d_model, heads)
        self.self_attn_layer_norm = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, d_model)
        self.final_layer_norm = nn.LayerNorm(d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.self_attn(self.self_attn_layer_norm(h))
        return h + self.fc2(F.gelu(self.fc1(self.final_layer_norm(h))))


class Encoder(nn.Module):
    """Whisper's audio encoder: (B, n_mels, 2P) -> (B, P, D) hidden states, block by block (see ``states``)."""

    def __init__(self, fields: dict[str, Any]):
        super().__init__()
        self.fields = dict(fields)  # the WhisperConfig fields that shape it, as cut (see ``keep``)
        d, mels = fields["d_model"], fields["num_mel_bins"]
        if fields.get("activation_function", "gelu") != "gelu":
            raise ValueError(f"Whisper encoder with activation {fields['activation_function']!r}: only gelu is implemented")
        self.max_source_positions = fields["max_source_positions"]
        self.conv1 = nn.Conv1d(mels, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        # Given storage, not drawn: a random init on the meta device (model files are built there first)
        # goes through torch._refs, which imports torch._dynamo (1.4 s).
        self.embed_positions = nn.Embedding(self.max_source_positions, d, _weight=torch.zeros(self.max_source_positions, d))
        self.layers = nn.ModuleList(
            Block(d, fields["encoder_attention_heads"], fields["encoder_ffn_dim"]) for _ in range(fields["encoder_layers"])
        )
        self.layer_norm = nn.LayerNorm(d)

    @classmethod
    def from_transformers(cls, encoder: nn.Module) -> Encoder:
        """The same network as a transformers WhisperEncoder (its weights copied)."""
        c = encoder.config.to_dict()
        fields = {key: c[key] for key in CONFIG_KEYS}
        fields.update(max_source_positions=encoder.embed_positions.weight.shape[0], encoder_layers=len(encoder.layers))
        plain = cls(fields)
        plain.load_state_dict(encoder.state_dict())
        return plain.to(encoder.conv1.weight.dtype)

    def keep(self, blocks: int, positions: int) -> None:
        """Cut the encoder to its first ``blocks`` blocks and ``positions`` positions (2 * positions mel frames)."""
        self.layers = self.layers[:blocks]
        table = self.embed_positions.weight[:positions].detach().clone()
        self.embed_positions = nn.Embedding.from_pretrained(table, freeze=True)
        self.max_source_positions = positions
        self.fields.update(encoder_layers=len(self.layers), max_source_positions=positions)

    def states(self, mel: torch.Tensor, wanted: tuple[int, ...], full_depth: int) -> list[torch.Tensor]:
        """(B, n_mels, 2P) -> the hidden states numbered in ``wanted`` (0: the embeddings, k: after block k),
        each (B, P, D); state ``full_depth`` (the whole network's last) goes through the closing LayerNorm."""
        h = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).permute(0, 2, 1) + self.embed_positions.weight
        out = [h] if wanted[0] == 0 else []
        for number, block in enumerate(self.layers, start=1):
            h = block(h)
            if number in wanted:
                out.append(self.layer_norm(h) if number == full_depth else h)
        return out
