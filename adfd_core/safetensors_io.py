"""Writing .safetensors files (model files, checkpoints) so that a crash never leaves half a file."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from adfd_core.outputs import storage_errors


def write_atomically(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Serialize to a temporary file beside ``path``, flush it to disk, then rename it over ``path``:
    readers see the old file or the new one, never a torn one. Permissions follow the umask. A full
    disk or read-only folder is an OutputError naming ``path``."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with storage_errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
