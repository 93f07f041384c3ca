"""The ensemble paper's CNN, RNN and C-RNN baselines (Pham et al., Table I) for (C, F, T) segment rows.

Table I, as built here, for the default (3, 64, 64) input:

    CNN    3 x {Conv2d 32/64/128, 3x3 - ReLU - AvgPool 2x2 - Dropout 0.2} -> flatten (128*8*8)
           -> Dense 256 - ReLU - Dropout 0.2 -> Dense 2
    RNN    the row read over time: T steps of C*F values -> BiLSTM 128 - ReLU - Dropout 0.2
           -> BiLSTM 64 - ReLU - Dropout 0.2 -> Dense 256 - ReLU - Dropout 0.2 -> Dense 2
    C-RNN  the CNN's conv blocks -> the (128, F/8, T/8) map read over time: T/8 steps of 128*F/8
           values -> BiLSTM 128 - ReLU - Dropout 0.2 -> BiLSTM 64 - ReLU - Dropout 0.2
           -> Dense 256 - ReLU - Dropout 0.2 -> Dense 2

What the paper leaves open, and the choice made here:

- convolution padding: 1 ("same"), so only the pools shrink the map; pools floor odd sizes.
- LSTM units are per direction (a BiLSTM 128 outputs 256 values per step).
- the recurrent read-out: the final hidden state of each direction of the last BiLSTM,
  concatenated (what Keras' ``Bidirectional(LSTM(64))`` returns without return_sequences).
- one ``dropout`` rate per model, 0.2 as Table I lists it after every block: in the RNN after each
  BiLSTM and after Dense 256; in the C-RNN also after each conv block.
- the ReLU and Dropout after a BiLSTM act on its whole output sequence where another BiLSTM reads
  it, and on the read-out (below) after the last one.
- the activation between Dense 256 and Dense 2 is ReLU in all three; no softmax in the model
  (outputs are logits; class 0 = spoof, 1 = bonafide).
- initialization: PyTorch's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adfd_core.models.config import check_input, require


def _check_shape(input_shape: tuple[int, int, int], pools: int = 0) -> None:
    require(all(n >= 1 for n in input_shape), f"input_shape must be positive, got {input_shape}")
    low = 2**pools
    require(
        min(input_shape[1:]) >= low,
        f"input_shape {input_shape}: F and T must be >= {low} to survive {pools} 2x2 pools",
    )


def _check_sizes(key: str, sizes: tuple[int, ...]) -> None:
    require(len(sizes) >= 1 and all(n >= 1 for n in sizes), f"{key} must be one or more positive integers, got {sizes}")


@dataclass(frozen=True)
class CNNConfig:
    """Table I's CNN; input_shape is (C, F, T), set by training from the feature file's rows."""

    input_shape: tuple[int, int, int] = (3, 64, 64)
    channels: tuple[int, ...] = (32, 64, 128)  # one conv block each
    dropout: float = 0.2  # after each conv block and after Dense 256
    dense: int = 256

    def __post_init__(self) -> None:
        _check_sizes("channels", self.channels)
        _check_shape(self.input_shape, len(self.channels))
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        require(self.dense >= 1, f"dense must be >= 1, got {self.dense}")


@dataclass(frozen=True)
class RNNConfig:
    """Table I's RNN; input_shape is (C, F, T), read as T steps of C*F values."""

    input_shape: tuple[int, int, int] = (3, 64, 64)
    lstm: tuple[int, ...] = (128, 64)  # units per direction of each stacked BiLSTM
    dropout: float = 0.2  # after each BiLSTM's ReLU and after Dense 256
    dense: int = 256

    def __post_init__(self) -> None:
        _check_shape(self.input_shape)
        _check_sizes("lstm", self.lstm)
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        require(self.dense >= 1, f"dense must be >= 1, got {self.dense}")


@dataclass(frozen=True)
class CRNNConfig:
    """Table I's C-RNN: the CNN's conv blocks, then the RNN's BiLSTMs over the map's time axis."""

    input_shape: tuple[int, int, int] = (3, 64, 64)
    channels: tuple[int, ...] = (32, 64, 128)
    dropout: float = 0.2  # after each conv block, each BiLSTM's ReLU and Dense 256
    lstm: tuple[int, ...] = (128, 64)
    dense: int = 256

    def __post_init__(self) -> None:
        _check_sizes("channels", self.channels)
        _check_shape(self.input_shape, len(self.channels))
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        _check_sizes("lstm", self.lstm)
        require(self.dense >= 1, f"dense must be >= 1, got {self.dense}")


def _conv_blocks(in_channels: int, channels: tuple[int, ...], dropout: float) -> nn.Sequential:
    """{Conv 3x3 - ReLU - AvgPool 2x2 - Dropout} per entry of channels: (B, C, F, T) -> (B, channels[-1], F/2^n, T/2^n)."""
    layers: list[nn.Module] = []
    for out_channels in channels:
        layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Dropout(dropout)]
        in_channels = out_channels
    return nn.Sequential(*layers)


def _head(in_features: int, dense: int, dropout: float) -> nn.Sequential:
    """Dense - ReLU - Dropout - Dense 2: (B, in_features) -> (B, 2) logits."""
    return nn.Sequential(nn.Linear(in_features, dense), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dense, 2))


class _BiLSTMStack(nn.Module):
    """Stacked BiLSTMs, each followed by ReLU - Dropout: (B, steps, features) -> (B, 2 * sizes[-1]), the last
    layer's final state of each direction through its ReLU - Dropout."""

    def __init__(self, in_features: int, sizes: tuple[int, ...], dropout: float):
        super().__init__()
        dims = (in_features, *(2 * n for n in sizes[:-1]))
        self.layers = nn.ModuleList(nn.LSTM(d, n, batch_first=True, bidirectional=True) for d, n in zip(dims, sizes))
        self.after = nn.Sequential(nn.ReLU(), nn.Dropout(dropout))  # no weights: one module serves every layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x, (h, _) = layer(x)
            x = self.after(x)
        return self.after(torch.cat([h[0], h[1]], dim=1))  # forward direction after the last step, backward after the first


class CNN(nn.Module):
    """(B, C, F, T) -> (B, 2) logits."""

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.input_shape = config.input_shape
        c, f, t = config.input_shape
        shrink = 2 ** len(config.channels)
        self.features = _conv_blocks(c, config.channels, config.dropout)
        self.head = _head(config.channels[-1] * (f // shrink) * (t // shrink), config.dense, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.input_shape)
        return self.head(self.features(x).flatten(1))


class RNN(nn.Module):
    """(B, C, F, T) -> (B, 2) logits; the BiLSTMs run over T."""

    def __init__(self, config: RNNConfig):
        super().__init__()
        self.input_shape = config.input_shape
        c, f, _ = config.input_shape
        self.lstm = _BiLSTMStack(c * f, config.lstm, config.dropout)
        self.head = _head(2 * config.lstm[-1], config.dense, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.input_shape)
        return self.head(self.lstm(_over_time(x)))


class CRNN(nn.Module):
    """(B, C, F, T) -> (B, 2) logits; the BiLSTMs run over the conv map's time axis (T / 2^blocks steps)."""

    def __init__(self, config: CRNNConfig):
        super().__init__()
        self.input_shape = config.input_shape
        c, f, _ = config.input_shape
        self.features = _conv_blocks(c, config.channels, config.dropout)
        self.lstm = _BiLSTMStack(config.channels[-1] * (f // 2 ** len(config.channels)), config.lstm, config.dropout)
        self.head = _head(2 * config.lstm[-1], config.dense, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.input_shape)
        return self.head(self.lstm(_over_time(self.features(x))))


def _over_time(x: torch.Tensor) -> torch.Tensor:
    """(B, C, F, T) -> (B, T, C*F): one step per time frame."""
    b, c, f, t = x.shape
    return x.permute(0, 3, 1, 2).reshape(b, t, c * f)
