"""Writing .safetensors files (model files, checkpoints) so that a crash never leaves half a file."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def write_atomically(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Serialize to a temporary file beside ``path``, flush it to disk, then rename it over ``path``:
    readers see the old file or the new one, never a torn one. Permissions follow the umask."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
