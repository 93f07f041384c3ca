"""Calibration and operating point of a scoring system: member scores -> one log-likelihood ratio.

A system of M member models gives each recording M raw scores, s_m = ln((1 - p_m) / p_m) of each
member's mean probability of spoof over the recording's segments. Calibration maps them to

    llr = w . s + b        (natural log, bona fide over spoof)

fitted by prior-weighted logistic regression (adfd_core.fusion.fit_logreg) on scores of sources
the members never saw. ``p_spoof`` is then the posterior at the stated prior P(spoof) =
``prior_spoof``, and ``decision`` is spoof where llr < ``threshold``: the threshold that called
``target_false_alarm`` of held-out bona fide speech spoof. Stored as JSON (``adfd-calibration``
version 1), for instance beside the bundled default model.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adfd_core.errors import AdfdError

FORMAT = "adfd-calibration"
VERSION = 1


class CalibrationError(AdfdError):
    """A calibration file that cannot be read, or that does not fit the models it is used with."""


@dataclass(frozen=True)
class Calibration:
    """llr = weights . member scores + bias; p_spoof at ``prior_spoof``; spoof where llr < ``threshold``."""

    weights: tuple[float, ...]
    bias: float
    threshold: float
    prior_spoof: float = 0.5
    target_false_alarm: float = 0.05
    members: tuple[str, ...] = ()  # the member model files' names, in the order of ``weights``
    measured: dict[str, Any] = field(default_factory=dict)  # how it was fitted and what it gave on held-out data

    def llr(self, scores: np.ndarray) -> np.ndarray:
        """(n,) calibrated LLRs of (n, M) member scores; NaN where any member has none."""
        scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
        if scores.shape[1] != len(self.weights):
            raise CalibrationError(f"the calibration weighs {len(self.weights)} models, but {scores.shape[1]} scored")
        return scores @ np.asarray(self.weights) + self.bias

    def p_spoof(self, llr: np.ndarray) -> np.ndarray:
        """The posterior probability of spoof of each LLR at the prior P(spoof) = ``prior_spoof``."""
        log_prior_odds = math.log((1 - self.prior_spoof) / self.prior_spoof)  # bona fide : spoof
        with np.errstate(invalid="ignore"):
            return np.exp(-np.logaddexp(0.0, np.asarray(llr, dtype=np.float64) + log_prior_odds))

    def describe(self) -> dict[str, Any]:
        """JSON-ready fields, as the file stores them."""
        return {"format": FORMAT, "format_version": VERSION, **asdict(self)}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.describe(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read a file ``save`` wrote; a CalibrationError naming the file for anything else."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CalibrationError(f"{path}: not a calibration file ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("format_version") != VERSION:
            raise CalibrationError(f"{path}: not an {FORMAT} version {VERSION} file")
        try:
            cal = cls(tuple(float(w) for w in data["weights"]), float(data["bias"]), float(data["threshold"]),
                      float(data["prior_spoof"]), float(data["target_false_alarm"]), tuple(map(str, data["members"])),
                      dict(data.get("measured", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"{path}: incomplete calibration ({type(exc).__name__}: {exc})") from None
        numbers = [*cal.weights, cal.bias, cal.threshold]
        if not all(math.isfinite(x) for x in numbers) or not 0 < cal.prior_spoof < 1 or not cal.weights:
            raise CalibrationError(f"{path}: calibration values out of range (finite weights, 0 < prior_spoof < 1)")
        return cal


def threshold_for(bonafide_llr: np.ndarray, target_false_alarm: float) -> float:
    """The highest threshold that calls at most ``target_false_alarm`` of ``bonafide_llr`` spoof (llr < threshold)."""
    ordered = np.sort(np.asarray(bonafide_llr, dtype=np.float64))
    allowed = int(math.floor(target_false_alarm * len(ordered)))  # how many bona fide may fall below
    return float(ordered[allowed]) if allowed < len(ordered) else float(ordered[-1]) + 1e-6


def fit(scores: np.ndarray, is_bonafide: np.ndarray, target_false_alarm: float = 0.05, prior_spoof: float = 0.5,
        members: tuple[str, ...] = (), measured: dict[str, Any] | None = None) -> Calibration:
    """Calibrate (n, M) member scores of held-out recordings with labels ``is_bonafide`` (n,) bool."""
    from adfd_core.fusion import fit_logreg

    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    is_bonafide = np.asarray(is_bonafide, dtype=bool)
    if not is_bonafide.any() or is_bonafide.all():
        raise CalibrationError("calibration needs held-out scores of both bona fide and spoof recordings")
    weights, bias = fit_logreg(scores, is_bonafide, prior=0.5)
    llr = scores @ weights + bias
    return Calibration(tuple(map(float, weights)), bias, threshold_for(llr[is_bonafide], target_false_alarm), prior_spoof,
                       target_false_alarm, members, dict(measured or {}))
