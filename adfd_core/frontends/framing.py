"""Framing shared by every front-end, and FFT sizes.

Convention (librosa's ``center=True, pad_mode='constant'``): frame t is centred on sample
t * hop; the signal is zero outside [0, n). With ``pad_to_hop`` the segment is first zero-padded
at the end to a multiple of hop, so the frame count is 1 + ceil(n / hop) (2 s at 16 kHz, hop 512:
32000 -> 32256 samples -> 64 frames); without it, 1 + n // hop (librosa's count).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def padded_length(n_samples: int, hop: int, pad_to_hop: bool) -> int:
    """Samples after the optional end padding to a multiple of hop."""
    return -(-n_samples // hop) * hop if pad_to_hop else n_samples


def frame_count(n_samples: int, hop: int, pad_to_hop: bool) -> int:
    """Frames of a segment of n_samples."""
    return 1 + padded_length(n_samples, hop, pad_to_hop) // hop


def pad_end(x: torch.Tensor, hop: int, pad_to_hop: bool) -> torch.Tensor:
    """(..., n) -> (..., padded_length(n)): zeros appended."""
    return F.pad(x, (0, padded_length(x.shape[-1], hop, pad_to_hop) - x.shape[-1]))


def _centred(x: torch.Tensor, win: int, hop: int, pad_to_hop: bool) -> torch.Tensor:
    """(..., n) -> (..., padded_length(n) + win): win // 2 zeros on each side of the end-padded signal,
    in one copy."""
    end = padded_length(x.shape[-1], hop, pad_to_hop) - x.shape[-1]
    return F.pad(x, (win // 2, win // 2 + end))


def frames(x: torch.Tensor, win: int, hop: int, pad_to_hop: bool) -> torch.Tensor:
    """(..., n) -> (..., T, win), frame t = samples [t*hop - win//2, t*hop + win//2); a strided view. win even."""
    return _centred(x, win, hop, pad_to_hop).unfold(-1, win, hop)


def pooled(x: torch.Tensor, weights: torch.Tensor, hop: int, pad_to_hop: bool) -> torch.Tensor:
    """(..., n) -> (..., T): each frame's weighted sum, sum_k weights[k] * frame_t[k]. weights: (win,)."""
    lead = x.shape[:-1]
    padded = _centred(x, weights.shape[-1], hop, pad_to_hop)
    out = F.conv1d(padded.reshape(-1, 1, padded.shape[-1]), weights.view(1, 1, -1), stride=hop)
    return out.reshape(*lead, out.shape[-1])


def next_fast_size(min_size: int, multiple: int = 1) -> int:
    """Smallest multiple * k >= min_size with k having no prime factor above 5 (fast FFT lengths)."""
    k = max(1, -(-min_size // multiple))
    while True:
        rest = k
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return k * multiple
        k += 1
