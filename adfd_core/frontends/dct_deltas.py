"""The ensemble paper's last step: a DCT along time, then first and second deltas, as 3 channels.

Both are fixed linear maps along time, precomputed once as (T, T) matrices: DCT-II with
norm='ortho' (scipy.fft.dct) and librosa.feature.delta(X, width, order=k, mode='interp'), which
is scipy.signal.savgol_filter(X, width, polyorder=k, deriv=k, mode='interp') along time.
"""

from __future__ import annotations

import numpy as np
import torch

from adfd_core.frontends.spec import FrontendError


def dct_delta_operators(n_frames: int, width: int) -> np.ndarray:
    """(3, T, T) float64 matrices A_c with channel_c = X @ A_c for X (..., F, T): [DCT, delta(DCT), delta2(DCT)]."""
    from scipy.fft import dct
    from scipy.signal import savgol_filter

    eye = np.eye(n_frames)
    dct_rows = dct(eye, type=2, norm="ortho", axis=0)  # column form: y = dct_rows @ x
    ops = [dct_rows] + [
        savgol_filter(eye, width, polyorder=order, deriv=order, axis=0, mode="interp") @ dct_rows for order in (1, 2)
    ]
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
