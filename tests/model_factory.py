"""Model files for scoring tests, made in a fraction of a second: tiny, untrained cnn.v1 networks.

An untrained network gives probabilities close to 0.5 for every input; ``gain`` scales its last
layer so that probabilities spread over (0, 1) and a wrong segment, mean or model shows.
"""

from __future__ import annotations

from pathlib import Path

import torch

from adfd_core import frontends
from adfd_core.modelfile import ModelFile, save_model
from adfd_core.models import registry

TINY = {"channels": "4,8,8", "dense": "16"}


def tiny_model(path: Path, frontend: str = "stft-lf", seed: int = 0, segment_seconds: float | None = None,
               gain: float = 20.0, full_size: bool = False) -> Path:
    """Save a seeded cnn.v1 on ``frontend`` (with its paper defaults, or ``segment_seconds``) to ``path``."""
    fe = frontends.build(frontend, segment_seconds=segment_seconds)
    config = registry.make_config("cnn.v1", {} if full_size else TINY, input_shape=tuple(fe.output_shape()))
    torch.manual_seed(seed)
    model = registry.build("cnn.v1", config)
    with torch.no_grad():
        model.net.head[-1].weight.mul_(gain)
    info = ModelFile(name="cnn.v1", config=config, frontend=fe.spec.to_dict(), training={})
    return save_model(path, model, info)
