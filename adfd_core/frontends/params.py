"""Checking front-end parameters; every failure is a one-line FrontendError naming the parameter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adfd_core.frontends.spec import FrontendError

MAX_SEGMENT_SECONDS = 60.0  # s; one network input. Two 60-s segments through cqt, then stft-lf, peak at 2.2 GB of memory


def check_names(frontend: str, given: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    """Refuse parameters the front-end does not have, naming the valid ones."""
    unknown = sorted(set(given) - set(expected))
    if unknown:
        raise FrontendError(
            f"{frontend}: unknown parameter {unknown[0]!r}; valid parameters: {', '.join(sorted(expected))}"
        )


def positive_int(frontend: str, params: Mapping[str, Any], key: str, minimum: int = 1) -> int:
    """params[key] as an int >= minimum."""
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FrontendError(f"{frontend}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def positive_float(frontend: str, params: Mapping[str, Any], key: str, allow_zero: bool = False) -> float:
    """params[key] as a float > 0 (or >= 0 with allow_zero)."""
    value = params[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok or value != value or value == float("inf"):
        bound = ">= 0" if allow_zero else "> 0"
        raise FrontendError(f"{frontend}: {key} must be a finite number {bound}, got {value!r}")
    return float(value)


def frequency_range(frontend: str, params: Mapping[str, Any], low: str, high: str, nyquist: float) -> tuple[float, float]:
    """(params[low], params[high]) in Hz with 0 <= low < high <= nyquist."""
    fmin = positive_float(frontend, params, low, allow_zero=True)
    fmax = positive_float(frontend, params, high)
    if not fmin < fmax <= nyquist:
        raise FrontendError(f"{frontend}: need 0 <= {low} < {high} <= {nyquist:g} Hz (Nyquist), got {fmin:g} and {fmax:g}")
    return fmin, fmax
