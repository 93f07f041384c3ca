"""Choosing the torch device from the ``--device auto|cpu|cuda`` convention."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from adfd_core.errors import AdfdError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> "torch.device":
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error, not a silent fallback."""
    import torch

    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise AdfdError(f"unknown device {name!r}: use one of {', '.join(DEVICE_CHOICES)} or cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AdfdError(f"device {name!r} requested but torch sees no CUDA GPU; use --device cpu or auto")
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)
    log.debug("device %s (--device %s); torch %s, %d CPU threads", device, name, torch.__version__, torch.get_num_threads())
    return device
