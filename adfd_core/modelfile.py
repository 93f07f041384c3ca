"""One ``.safetensors`` file per trained model: its tensors, and in the metadata all it takes to rebuild it.

Metadata (safetensors keeps str -> str): ``format`` = "adfd-model", ``format_version`` = "1",
``model`` (registry name, e.g. "cnn.v1"), ``config``, ``frontend``, ``training``, ``calibration``
(JSON or "null") and ``extra`` as JSON, ``adfd_version`` and ``created_at``. Reading never
unpickles anything: a model file from a stranger holds tensors and text, not code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from adfd_core import jsontext
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
_DTYPES = {  # safetensors' dtype names -> torch's, for the dtypes a model's state dict can hold
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
    "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool, "C64": torch.complex64,
}  # fmt: skip


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
        reference = registry.build_skeleton(info.name, info.config).state_dict()
    except ModelError as exc:
        raise ModelFileError(f"{path}: cannot save: {exc}") from None
    problem = mismatch(reference, state, dtypes=True)
    if problem:
        raise ModelFileError(f"{path}: cannot save: the model does not fit {info.name} with this config: {problem}")
    write_atomically(path, state, _metadata(path, info))
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
    """The model of a model file, rebuilt by the registry and loaded strictly, in eval mode on ``device``.

    Nothing the file declares is allocated before it is checked: the model is built on the meta
    device and every tensor's shape and dtype in the file's header is compared with it; only then are
    the tensors read, and they must be finite (a standardization std positive).
    """
    path = Path(path)
    info = read_model_info(path)
    declared = _declared_tensors(path)
    statistics = {key: t for key, t in _input_statistics(info).items() if key in declared}
    _check_fit(path, info, statistics, {key: declared[key] for key in statistics})  # before a CPU-built skeleton allocates them
    skeleton = registry.build_skeleton(info.name, info.config)
    _check_fit(path, info, skeleton.state_dict(), declared)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"{path}: cannot read the tensors ({exc})") from None
    _check_values(path, tensors)
    return _materialized(info, skeleton, tensors).to(device).eval(), info


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


def _declared_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The file's tensors as its header declares them: meta tensors of their shapes and dtypes, no data read."""
    declared = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                tensor = f.get_slice(key)
                dtype = _DTYPES.get(tensor.get_dtype())
                if dtype is None:
                    raise ModelFileError(f"{path}: tensor {key} has dtype {tensor.get_dtype()}, which no adfd model holds")
                declared[key] = torch.empty(tensor.get_shape(), dtype=dtype, device="meta")
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"{path}: cannot read the tensors ({exc})") from None
    return declared


def _input_statistics(info: ModelFile) -> dict[str, torch.Tensor]:
    """A ``segments`` model's standardization buffers, (C, F, T) of the config's input_shape (1 on axes whose
    statistics are shared), as meta tensors."""
    if registry.entry(info.name).input_kind != "segments":
        return {}
    shape = registry.statistics_shape(info.name, info.config)
    return {key: torch.empty(shape, device="meta") for key in ("mean", "std")}


def _check_fit(path: Path, info: ModelFile, expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> None:
    """Refuse tensors that differ from ``expected`` in name, shape or dtype."""
    problem = mismatch(expected, given, dtypes=True)
    if problem:
        raise ModelFileError(f"{path}: tensors do not fit {info.name} with the stored config: {problem}")


def _check_values(path: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """Refuse NaN or infinite weights, and a standardization std that is not positive (it divides the rows)."""
    bad = [key for key, t in tensors.items() if _non_finite(t)]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise ModelFileError(f"{path}: NaN or infinite values in {', '.join(bad[:3])}{more}; the model cannot score")
    std = tensors.get("std")
    if std is not None and not bool((std > 0).all()):
        raise ModelFileError(f"{path}: the input standardization std has values <= 0 (smallest {float(std.min()):g}); it must be positive")


def _non_finite(t: torch.Tensor) -> bool:
    """Whether ``t`` holds NaN or an infinity; a finite sum settles it at a tenth of isfinite's cost."""
    return t.is_floating_point() and not math.isfinite(float(t.sum())) and not bool(torch.isfinite(t).all())


def _materialized(info: ModelFile, skeleton: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The skeleton with the file's tensors as its own, in the dtypes of its own tensors (as copying into
    them would cast: a model may store some in float16). A constant its constructor computes with
    torch (not from the file) is only a placeholder on the meta device: such a model is built for real."""
    if _placeholders(skeleton):
        own = {**dict(skeleton.named_parameters(remove_duplicate=False)), **dict(skeleton.named_buffers(remove_duplicate=False))}
        load_into(skeleton, {key: t.to(own[key].dtype) if key in own else t for key, t in tensors.items()}, assign=True)
        if not _placeholders(skeleton):
            return skeleton
        skeleton = registry.build(info.name, info.config, pretrained=False)
    load_into(skeleton, tensors)
    return skeleton


def _placeholders(model: torch.nn.Module) -> bool:
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def _json_object(path: Path, key: str, text: str) -> dict | None:
    """A metadata value as a JSON object; only calibration may be null."""
    try:
        value = jsontext.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: metadata {key!r} is not valid JSON ({exc})") from None
    if not isinstance(value, dict) and not (key == "calibration" and value is None):
        raise ModelFileError(f"{path}: metadata {key!r} must be a JSON object, got {type(value).__name__}")
    return value
