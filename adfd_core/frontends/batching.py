"""Running a transform over a batch in CPU-sized chunks."""

from __future__ import annotations

from collections.abc import Callable

import torch

# Largest intermediate per pass on CPU, unless a transform sets its own (``Frontend.chunk_bytes``).
# Chunks this small stay in cache and reuse heap blocks instead of faulting in fresh pages: 2-4x
# faster than one pass over a batch of 256 segments.
CPU_CHUNK_BYTES = 8 * 2**20


def in_chunks(transform: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, bytes_per_item: int,
              chunk_bytes: int = CPU_CHUNK_BYTES) -> torch.Tensor:
    """transform(x) for (batch, ...) x, computed on CPU in chunks of ``chunk_bytes`` of the largest
    intermediate (``bytes_per_item`` per item), in one pass elsewhere, and concatenated."""
    size = max(1, chunk_bytes // max(1, bytes_per_item))
    if x.device.type != "cpu" or x.shape[0] <= size:
        return transform(x)
    return torch.cat([transform(part) for part in x.split(size)])
