"""Spectrogram front-ends of the three papers as batched torch modules (CPU or CUDA), by name.

    fe = build("stft-lf")                 # paper defaults: 2-s segments -> (3, 64, 64)
    feats = fe(torch.zeros(8, fe.segment_samples))
    same = from_spec(fe.spec.to_dict())   # what a feature file stores

Importing the package does not import torch (``available`` and the spec types need none); the
modules behind ``Frontend``, ``build``, ``from_spec`` and ``describe_all`` load on first use.
"""

from typing import Any

from adfd_core.frontends.names import available
from adfd_core.frontends.spec import FrontendError, FrontendSpec

__all__ = ["Frontend", "FrontendError", "FrontendSpec", "available", "build", "describe_all", "from_spec"]
_LAZY = {"Frontend": "base", "build": "registry", "describe_all": "registry", "from_spec": "registry"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"adfd_core.frontends.{_LAZY[name]}"), name)
