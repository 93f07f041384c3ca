"""The ensemble paper's last step: a DCT along time, then first and second deltas, as 3 channels.

Both are fixed linear maps along time, precomputed once as (T, T) matrices: DCT-II with
norm='ortho' (as scipy.fft.dct) and librosa.feature.delta(X, width, order=k, mode='interp'), which
is scipy.signal.savgol_filter(X, width, polyorder=k, deriv=k, mode='interp') along time. They are
built here with numpy alone: importing scipy.signal would add about a second to every cold start.
"""

from __future__ import annotations

import numpy as np
import torch

from adfd_core.frontends.spec import FrontendError


def dct_matrix(n: int) -> np.ndarray:
    """(n, n) orthonormal DCT-II: y = D @ x."""
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    d = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    d[0] /= np.sqrt(2.0)
    return d


def savgol_matrix(n: int, width: int, order: int) -> np.ndarray:
    """(n, n) Savitzky-Golay derivative: y = S @ x, the ``order``-th derivative of a degree-``order``
    least-squares polynomial over each ``width``-sample window; near the edges, of the polynomial
    fitted to the first or last window (scipy's mode='interp')."""
    half = width // 2
    positions = np.arange(width) - half
    fit = np.linalg.pinv(np.vander(positions, order + 1, increasing=True))  # (order+1, width) coefficients
    factorial = float(np.prod(np.arange(1, order + 1)))
    # With degree == order, the order-th derivative of the fit is the constant order! * c_order,
    # so every output takes the same weights over its window; only the window moves at the edges.
    weights = factorial * fit[order]
    s = np.zeros((n, n))
    for t in range(n):
        start = min(max(t - half, 0), n - width)
        s[t, start : start + width] = weights
    return s


def dct_delta_operators(n_frames: int, width: int) -> np.ndarray:
    """(3, T, T) float64 matrices A_c with channel_c = X @ A_c for X (..., F, T): [DCT, delta(DCT), delta2(DCT)]."""
    dct_rows = dct_matrix(n_frames)  # column form: y = dct_rows @ x
    ops = [dct_rows] + [savgol_matrix(n_frames, width, order) @ dct_rows for order in (1, 2)]
    return np.stack([op.T for op in ops])


class DctDeltas(torch.nn.Module):
    """(batch, F, T) -> (batch, 3, F, T): [DCT-II along time, its delta, its delta-delta]."""

    def __init__(self, frontend: str, n_frames: int, width: int):
        super().__init__()
        if width < 3 or width % 2 == 0:
            raise FrontendError(f"{frontend}: delta_width must be an odd integer >= 3, got {width}")
        if n_frames < width:
            raise FrontendError(
                f"{frontend}: a segment gives {n_frames} frames but delta_width={width} needs at least {width}; "
                "use longer segments or a smaller delta_width"
            )
        self.register_buffer("ops", torch.from_numpy(dct_delta_operators(n_frames, width)).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, F, T) float32 -> (batch, 3, F, T) float32."""
        return torch.matmul(x.unsqueeze(1), self.ops)
