"""Writing .safetensors files (model files, checkpoints) so that a crash never leaves half a file.

The tensors go to disk straight from their own memory (``safetensors.torch.save_file``): writing a
file costs no second copy of its tensors, where serializing to bytes first (``save``) held two.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from adfd_core.outputs import storage_errors

_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how safetensors' Rust I/O errors name the errno


def storable(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` as safetensors writes them: detached, on the CPU, contiguous, each with memory of its own.
    Copies only what must be copied: a tensor on another device, a non-contiguous one, and every tensor
    after the first that shares memory with another (tied weights; safetensors refuses shared memory)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in tensors.items():
        t = value.detach().cpu().contiguous()
        where = t.untyped_storage().data_ptr()
        if where in seen:
            t = t.clone()
            where = t.untyped_storage().data_ptr()
        seen.add(where)
        out[key] = t
    return out


def write_atomically(path: Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write ``storable(tensors)`` to a temporary file beside ``path``, flush it to disk, then rename it
    over ``path``: readers see the old file or the new one, never a torn one. Permissions follow the
    umask. A full disk or read-only folder is an OutputError naming ``path``."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with storage_errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                save_file(storable(tensors), tmp, metadata=metadata)
            except SafetensorError as exc:  # its I/O errors carry the OS error only in their text
                found = _OS_ERROR.search(str(exc))
                if found is None:
                    raise
                raise OSError(int(found.group(1)), str(exc)) from None
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
                os.fchmod(f.fileno(), 0o666 & ~_umask())  # safetensors makes its file owner-only (0600)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
