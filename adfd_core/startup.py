"""Importing torch for the commands users wait on (featurize, score) at the least cost.

Two costs of ``import torch`` are not torch's own work, and this module avoids both:

- Python's cyclic garbage collector. Torch creates about half a million long-lived objects; with
  the default thresholds, a featurize run of the devset spent 0.24 s in collections, 0.17 s of it
  in three full ones walking torch's objects again. With the collector paused during the import
  and those objects frozen afterwards, 0.02 s. The price: the cyclic garbage the import leaves
  (about 7,000 objects) is frozen with the rest and never freed.
- Looking for out-of-tree device backends (``TORCH_DEVICE_BACKEND_AUTOLOAD``), which reads the
  metadata of every installed distribution: 0.04 s with 150 of them. adfd runs on cpu and cuda,
  which need no such backend; a value the user has set is kept.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def heavy_imports() -> Iterator[None]:
    """Wrap the imports that bring torch in. The first time only (torch not yet imported, the
    collector on), the collector is paused for the body and what exists after it is frozen
    (``gc.freeze``: later collections skip it); a test suite running commands in-process pays this
    once and keeps its collector as it was."""
    if "torch" in sys.modules or not gc.isenabled():
        yield
        return
    os.environ.setdefault("TORCH_DEVICE_BACKEND_AUTOLOAD", "0")
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
