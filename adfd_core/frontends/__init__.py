"""Spectrogram front-ends of the three papers as batched torch modules (CPU or CUDA), by name.

    fe = build("stft-lf")                 # paper defaults: 2-s segments -> (3, 64, 64)
    feats = fe(torch.zeros(8, fe.segment_samples))
    same = from_spec(fe.spec.to_dict())   # what a feature file stores
"""

from adfd_core.frontends.base import Frontend
from adfd_core.frontends.registry import available, build, describe_all, from_spec
from adfd_core.frontends.spec import FrontendError, FrontendSpec

__all__ = ["Frontend", "FrontendError", "FrontendSpec", "available", "build", "describe_all", "from_spec"]
