"""Training checkpoints without pickle: tensors in a .safetensors file, everything else as JSON.

Any nest of dicts, lists and scalars with tensor leaves (model and optimizer state dicts, RNG
states, the training history) is split into named tensors and a JSON skeleton that points at
them, and joined back on load. Nothing in a checkpoint can run code when it is read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from adfd_core.errors import AdfdError

FORMAT = "adfd-checkpoint"
_TENSOR, _PAIRS = "__tensor__", "__pairs__"


class CheckpointError(AdfdError):
    """A checkpoint that is missing, damaged, or from another run."""


def _split(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``obj`` with each tensor moved into ``tensors`` under a path-like name and replaced by a reference."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj  # not copied: write_atomically writes it from its own memory
        return {_TENSOR: prefix}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _split(v, f"{prefix}/{k}", tensors) for k, v in obj.items()}
        return {_PAIRS: [[k, _split(v, f"{prefix}/{k}", tensors)] for k, v in obj.items()]}  # e.g. optimizer's int keys
    if isinstance(obj, (list, tuple)):
        return [_split(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    return obj


def _join(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of _split."""
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR}:
            return tensors[obj[_TENSOR]]
        if set(obj) == {_PAIRS}:
            return {k: _join(v, tensors) for k, v in obj[_PAIRS]}
        return {k: _join(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    return obj


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a crash mid-write leaves the previous checkpoint)."""
    from adfd_core.safetensors_io import write_atomically

    tensors: dict[str, torch.Tensor] = {}
    skeleton = _split(state, "", tensors)
    write_atomically(path, tensors, {"format": FORMAT, "state": json.dumps(skeleton)})


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The state saved by save_checkpoint; a CheckpointError when it is not one."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({err})") from err
    if meta.get("format") != FORMAT or "state" not in meta:
        raise CheckpointError(f"{path}: not an adfd training checkpoint")
    return _join(json.loads(meta["state"]), tensors)
