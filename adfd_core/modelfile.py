"""One ``.safetensors`` file per trained model: its tensors, and in the metadata all it takes to rebuild it.

Metadata (safetensors keeps str -> str): ``format`` = "adfd-model", ``format_version`` = "1",
``model`` (registry name, e.g. "cnn.v1"), ``config``, ``frontend``, ``training``, ``calibration``
(JSON or "null") and ``extra`` as JSON, ``adfd_version`` and ``created_at``. Reading never
unpickles anything: a model file from a stranger holds tensors and text, not code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from adfd_core.errors import AdfdError
from adfd_core.models import registry
from adfd_core.models.config import ModelError
from adfd_core.models.weights import load_into, mismatch
from adfd_core.provenance import provenance
from adfd_core.safetensors_io import write_atomically

FORMAT_NAME = "adfd-model"
FORMAT_VERSION = "1"
_JSON_KEYS = ("config", "frontend", "training", "calibration", "extra")
_KEYS = ("format", "format_version", "model", *_JSON_KEYS, "adfd_version", "created_at")


class ModelFileError(AdfdError):
    """A model file that cannot be used (missing, foreign, of an unknown version, or not fitting its model), in one line."""


@dataclass(frozen=True)
class ModelFile:
    """What a model file says about its model, besides the tensors."""

    name: str  # registry name, e.g. "cnn.v1"
    config: Any  # the model's config dataclass
    frontend: dict  # front-end spec as feature files store it: {"name", "version", "params", ...}
    training: dict  # training summary (free-form JSON)
    calibration: dict | None = None  # e.g. {"method": "logreg", ...}
    extra: dict = field(default_factory=dict)  # other JSON metadata, e.g. label maps


def save_model(path: str | Path, model: torch.nn.Module, info: ModelFile) -> Path:
    """Write ``model``'s state dict and ``info`` to ``path`` atomically (a temporary file, then a rename).

    Refuses a model whose tensors do not fit ``info.name`` built with ``info.config``, so every
    file written loads again. Tied (shared) tensors are stored once per name.
    """
    path = Path(path)
    state = model.state_dict()
    try:
        reference = registry.build(info.name, info.config, pretrained=False).state_dict()
    except ModelError as exc:
        raise ModelFileError(f"{path}: cannot save: {exc}") from None
    problem = mismatch(reference, state)
    if problem:
        raise ModelFileError(f"{path}: cannot save: the model does not fit {info.name} with this config: {problem}")
    metadata = _metadata(path, info)
    tensors = {key: value.detach().to("cpu", copy=True).contiguous() for key, value in state.items()}
    write_atomically(path, tensors, metadata)
    return path


def read_model_info(path: str | Path) -> ModelFile:
    """The metadata of a model file, checked (format, version, model name, config); no tensors are loaded."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"{path}: not a safetensors model file ({exc})") from None
    if not meta or meta.get("format") != FORMAT_NAME:
        found = f"format {meta['format']!r}" if meta and "format" in meta else "no adfd metadata"
        raise ModelFileError(f"{path}: not an adfd model file ({found})")
    missing = [key for key in _KEYS if key not in meta]
    if missing:
        raise ModelFileError(f"{path}: model file metadata lacks {', '.join(missing)}")
    if meta["format_version"] != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model file format version {meta['format_version']!r} is not known to this adfd "
            f"(it reads version {FORMAT_VERSION}); use the adfd that wrote it"
        )
    values = {key: _json_object(path, key, meta[key]) for key in _JSON_KEYS}
    try:
        config = registry.config_from_dict(meta["model"], values["config"])
    except ModelError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return ModelFile(meta["model"], config, values["frontend"], values["training"], values["calibration"], values["extra"])


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, ModelFile]:
    """The model of a model file, rebuilt by the registry and loaded strictly, in eval mode on ``device``."""
    info = read_model_info(path)
    model = registry.build(info.name, info.config, pretrained=False)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"{path}: cannot read the tensors ({exc})") from None
    problem = mismatch(model.state_dict(), tensors)
    if problem:
        raise ModelFileError(f"{path}: tensors do not fit {info.name} with the stored config: {problem}")
    load_into(model, tensors)
    return model.to(device).eval(), info


def describe_model(path: str | Path) -> dict[str, Any]:
    """What a model file says, as plain data for `adfd info`: model, config, front-end, training summary."""
    info = read_model_info(path)
    return {
        "path": str(path),
        "model": info.name,
        "config": registry.config_to_dict(info.config),
        "frontend": info.frontend,
        "training": info.training,
        "calibration": info.calibration,
        "extra": info.extra,
    }


def _metadata(path: Path, info: ModelFile) -> dict[str, str]:
    made = provenance()
    values: Mapping[str, Any] = {
        "config": registry.config_to_dict(info.config),
        "frontend": info.frontend,
        "training": info.training,
        "calibration": info.calibration,
        "extra": info.extra,
    }
    try:
        encoded = {key: json.dumps(value) for key, value in values.items()}
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot save: metadata is not JSON-serializable ({exc})") from None
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": info.name,
        **encoded,
        "adfd_version": made["adfd_version"],
        "created_at": made["created_at"],
    }


def _json_object(path: Path, key: str, text: str) -> dict | None:
    """A metadata value as a JSON object; only calibration may be null."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: metadata {key!r} is not valid JSON ({exc})") from None
    if not isinstance(value, dict) and not (key == "calibration" and value is None):
        raise ModelFileError(f"{path}: metadata {key!r} must be a JSON object, got {type(value).__name__}")
    return value
