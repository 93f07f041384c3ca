"""Detectors by versioned name: the ensemble paper's baselines and vision backbones (more families to come).

    from adfd_core.models import build, make_config
    model = build("cnn.v1", make_config("cnn.v1", input_shape=(3, 64, 64)))
"""

from adfd_core.models.config import ModelError
from adfd_core.models.registry import (
    ModelEntry,
    available,
    build,
    config_from_dict,
    config_to_dict,
    describe_all,
    entry,
    make_config,
    parameter_count,
)

__all__ = [
    "ModelEntry",
    "ModelError",
    "available",
    "build",
    "config_from_dict",
    "config_to_dict",
    "describe_all",
    "entry",
    "make_config",
    "parameter_count",
]
