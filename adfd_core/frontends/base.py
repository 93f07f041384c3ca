"""The Frontend base class: a batched torch module from waveform segments to feature images."""

from __future__ import annotations

import torch

from adfd_core.frontends.batching import CPU_CHUNK_BYTES, in_chunks
from adfd_core.frontends.params import MAX_SEGMENT_SECONDS, positive_float, positive_int
from adfd_core.frontends.spec import FrontendError, FrontendSpec


class Frontend(torch.nn.Module):
    """(batch, samples) float32 waveforms -> (batch, C, F, T) float32 features, on CPU or CUDA.

    Constant matrices and kernels are float32 (complex64 for kernel spectra) buffers built once in
    __init__, so ``.to(device)`` moves everything and forward is pure torch. Subclasses implement
    ``features`` and ``output_shape``.
    """

    spec: FrontendSpec
    sample_rate: int  # Hz
    segment_samples: int | None  # samples per input segment; None = whole utterance
    segment_bytes: int = 0  # largest intermediate for one segment; sizes the CPU chunks (0: no chunking)
    chunk_bytes: int = CPU_CHUNK_BYTES  # that intermediate per CPU chunk; set from the transform, which knows what suits it

    def __init__(self, spec: FrontendSpec):
        super().__init__()
        self.spec = spec
        self.sample_rate = positive_int(spec.name, spec.params, "sample_rate")
        seconds = spec.params.get("segment_seconds")
        if seconds is None:
            self.segment_samples = None
        else:
            seconds = positive_float(spec.name, spec.params, "segment_seconds")
            if seconds > MAX_SEGMENT_SECONDS:
                raise FrontendError(f"{spec.name}: segment_seconds={seconds:g} is longer than {MAX_SEGMENT_SECONDS:g} s")
            self.segment_samples = round(seconds * self.sample_rate)
            if self.segment_samples < 1:
                raise FrontendError(f"{spec.name}: segment_seconds={seconds:g} is shorter than one sample")

    def output_shape(self, n_samples: int | None = None) -> tuple[int, ...]:
        """(C, F, T) of one segment of n_samples (default: segment_samples)."""
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The computation, on a checked float32 (batch, samples) chunk -> (batch, C, F, T)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, samples) float32 -> (batch, C, F, T) float32; on CPU in chunks of ``chunk_bytes``."""
        return in_chunks(self.features, self._checked(x), self.segment_bytes, self.chunk_bytes)

    def _checked(self, x: torch.Tensor) -> torch.Tensor:
        """x as float32 (batch, segment_samples), or a ValueError saying what was wrong."""
        if x.dim() != 2 or (self.segment_samples is not None and x.shape[1] != self.segment_samples):
            want = f"(batch, {self.segment_samples})" if self.segment_samples is not None else "(batch, samples)"
            raise ValueError(f"{self.spec.name}: expected input of shape {want}, got {tuple(x.shape)}")
        return x.to(torch.float32)

    def extra_repr(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.spec.params.items())
        return f"{self.spec.name} v{self.spec.version}: {params}"
