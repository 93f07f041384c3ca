"""Model configs: frozen dataclasses of typed fields, made from ``--set key=value`` text or stored JSON.

Field types understood: int, float, bool, str, tuple[int, ...] (or fixed-length tuples) and
``X | None``. Text is parsed to the field's type (``true``/``false``/``1``/``0`` for bools,
``3,64,64`` for tuples, ``none`` for None); JSON values are checked, lists read as tuples.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from adfd_core.errors import AdfdError

_BOOLS = {"true": True, "false": False, "1": True, "0": False}


class ModelError(AdfdError, ValueError):
    """Unknown model, bad config key or value, wrongly shaped input or weights that do not fit, in one line."""


def require(ok: bool, message: str) -> None:
    """Raise ModelError(message) unless ok: the configs' range checks."""
    if not ok:
        raise ModelError(message)


def check_input(x: Any, input_shape: tuple[int, ...]) -> None:
    """Refuse a batch whose row shape (x.shape[1:]) differs from the config's input_shape."""
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise ModelError(f"model expects input of shape (batch, {', '.join(map(str, input_shape))}), got {tuple(x.shape)}")


def field_types(cls: type) -> dict[str, Any]:
    """Each field of the config dataclass ``cls`` with its resolved type, in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def make(model: str, cls: type, values: Mapping[str, Any], text: bool) -> Any:
    """``cls`` with its defaults overridden by ``values``; text=True parses string values to the field types."""
    types_ = field_types(cls)
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise ModelError(f"{model}: unknown config key {unknown[0]!r}; valid keys: {', '.join(types_)}")
    converted = {key: _convert(model, key, types_[key], value, text) for key, value in values.items()}
    try:
        return cls(**converted)
    except ModelError as exc:
        raise ModelError(f"{model}: {exc}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """A config as a JSON-safe dict (tuples as lists)."""
    return {f.name: _jsonable(getattr(config, f.name)) for f in dataclasses.fields(config)}


def from_dict(model: str, cls: type, d: Any) -> Any:
    """The config stored as ``d`` (from :func:`to_dict`); every field must be present, and no other, but
    those the class lists in ``ADDED`` (a mapping: field -> the value a config stored without it means)."""
    if not isinstance(d, Mapping):
        raise ModelError(f"{model}: config must be a JSON object, got {type(d).__name__}")
    d = {**getattr(cls, "ADDED", {}), **d}  # fields added after files were written, with the value an older file means
    missing = [key for key in field_types(cls) if key not in d]
    if missing:
        raise ModelError(f"{model}: config lacks key(s): {', '.join(missing)}")
    return make(model, cls, d, text=False)


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, tuple) else value


def _convert(model: str, key: str, tp: Any, value: Any, text: bool) -> Any:
    try:
        return _value(tp, value, text)
    except (ValueError, TypeError):
        raise ModelError(f"{model}: {key} must be {_describe(tp)}, got {value!r}") from None


def _value(tp: Any, value: Any, text: bool) -> Any:
    """value as type tp, or ValueError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    is_text = text and isinstance(value, str)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (is_text and value.strip().lower() == "none")):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, text)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if is_text and value.strip().lower() in _BOOLS:
            return _BOOLS[value.strip().lower()]
    elif tp is int:
        if is_text:
            return int(value.strip())
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        number = float(value.strip()) if is_text else value
        if isinstance(number, (int, float)) and not isinstance(number, bool) and math.isfinite(number):
            return float(number)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        items = value.split(",") if is_text else value
        if isinstance(items, (list, tuple)):
            item_types = [args[0]] * len(items) if args[-1] is Ellipsis else list(args)
            if len(item_types) == len(items):
                return tuple(_value(t, v, text) for t, v in zip(item_types, items))
    raise ValueError(value)


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return f"{_describe(inner)} or none"
    if origin is tuple:
        count = "" if args[-1] is Ellipsis else f"{len(args)} "
        return f"{count}comma-separated {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    return {bool: "true or false (1 or 0)", int: "an integer", float: "a finite number", str: "a string"}[tp]
