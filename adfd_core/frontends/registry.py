"""Front-ends by name: the registry, build with paper defaults, and rebuild from a stored spec."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from adfd_core.frontends import names
from adfd_core.frontends.base import Frontend
from adfd_core.frontends.params import check_names
from adfd_core.frontends.spec import FrontendError, FrontendSpec


@dataclass(frozen=True)
class _Entry:
    """One registered front-end: its version, every parameter with its default, and its constructor."""

    version: int
    defaults: Mapping[str, Any]
    make: Callable[[FrontendSpec], Frontend]
    added: Mapping[str, Any] = field(default_factory=dict)  # parameters added later, with the value an older spec means


@cache
def _registry() -> dict[str, _Entry]:
    from adfd_core.frontends.cqt2 import CQT2_DEFAULTS, CqtMagPhase
    from adfd_core.frontends.embeddings import EMBEDDINGS
    from adfd_core.frontends.ensemble import EnsembleFrontend, ensemble_defaults
    from adfd_core.frontends.logspec import LOGSPEC_DEFAULTS, LogSpec
    from adfd_core.frontends.wave import WAVE_DEFAULTS, Waveform

    entries = {}
    for transform in names.TRANSFORMS:
        for bank in names.FILTERBANK_SUFFIXES:
            name = transform if bank is None else f"{transform}-{bank}"
            make = lambda spec, t=transform, b=bank: EnsembleFrontend(spec, t, b)  # noqa: E731
            entries[name] = _Entry(1, ensemble_defaults(transform, bank), make)
    entries["logspec"] = _Entry(1, LOGSPEC_DEFAULTS, LogSpec)
    entries["cqt2"] = _Entry(1, CQT2_DEFAULTS, CqtMagPhase)
    entries["wave"] = _Entry(1, WAVE_DEFAULTS, Waveform)
    for name in names.EMBEDDINGS:
        entries[name] = _Entry(1, EMBEDDINGS[name].DEFAULTS, EMBEDDINGS[name], EMBEDDINGS[name].ADDED)
    return entries


def available() -> list[str]:
    """Every registered front-end name, sorted (names.available(), which needs no torch)."""
    return sorted(_registry())


def _entry(name: str) -> _Entry:
    try:
        return _registry()[name]
    except (KeyError, TypeError):
        raise FrontendError(f"unknown front-end {name!r}; valid names: {', '.join(available())}") from None


def added_params(name: str) -> dict[str, Any]:
    """The parameters ``name`` gained after its specs were first written, with the value a spec without them means."""
    found = _registry().get(name)
    return dict(found.added) if found else {}


def build(name: str, segment_seconds: float | None = None, **params: Any) -> Frontend:
    """The front-end ``name`` with the paper's defaults, any of them overridden by ``params``.

    segment_seconds=None keeps the front-end's own segment length; whole-utterance front-ends
    (``wave``) ignore it (``from_spec`` with a segment_seconds parameter cuts a waveform into windows).
    """
    entry = _entry(name)
    check_names(name, params, entry.defaults)
    merged = {**entry.defaults, **params}
    if segment_seconds is not None and entry.defaults.get("segment_seconds") is not None:
        merged["segment_seconds"] = float(segment_seconds) if isinstance(segment_seconds, int) else segment_seconds
    return entry.make(FrontendSpec(name, entry.version, merged))


def from_spec(spec: FrontendSpec | Mapping[str, Any]) -> Frontend:
    """Rebuild exactly the front-end that produced a stored feature; refuses unknown names, versions and parameters.

    A spec written before a parameter was added gets the value that gives its rows (``added``).
    """
    spec = spec if isinstance(spec, FrontendSpec) else FrontendSpec.from_dict(spec)
    entry = _entry(spec.name)
    spec = FrontendSpec(spec.name, spec.version, {**entry.added, **spec.params})
    if spec.version != entry.version:
        raise FrontendError(
            f"front-end {spec.name!r} version {spec.version} is not known to this adfd (it has version {entry.version}); "
            "recompute the features or use the adfd that made them"
        )
    check_names(spec.name, spec.params, entry.defaults)
    missing = sorted(set(entry.defaults) - set(spec.params))
    if missing:
        raise FrontendError(f"front-end spec {spec.name!r} v{spec.version} lacks parameter(s): {', '.join(missing)}")
    return entry.make(spec)


def describe_all() -> list[dict[str, Any]]:
    """For `adfd info --features`: name, version, default params and row_shape ([] for whole-utterance) of each.

    The spec comes from the registry, not from the built front-end: an embedding front-end's spec
    would hash its network's files.
    """
    rows = []
    for name in available():
        entry, frontend = _entry(name), build(name)
        shape = list(frontend.output_shape()) if frontend.segment_samples else []
        rows.append({**FrontendSpec(name, entry.version, dict(entry.defaults)).to_dict(), "row_shape": shape})
    return rows
