"""Score fusion: the mean of spoof probabilities (paper 1, eq. 2), and logistic-regression fusion
that also calibrates (Brümmer's linear fusion, as in FoCal/BOSARIS) trained on labelled dev scores.

Every function takes tables that list the same recordings in the same order: pass them
through ``align`` first. The fused table carries labels, attacks and paths through, and an
``error`` column naming the inputs without a score for a row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adfd_core import __version__, jsontext
from adfd_core.errors import AdfdError
from adfd_core.provenance import provenance
from adfd_core.scoretable import ScoreTable, log_odds, spoof_probability

WEIGHTS_FORMAT = "adfd-fusion"
WEIGHTS_VERSION = 1
L2 = 1e-4  # logistic regression: penalty on the weights (not the bias), against separable dev data
MAX_TRAINING_SCORE = 1e6  # |score| beyond this is no log-odds (nor a raw detector score): a damaged or foreign table
_SHOWN = 10  # ids named in a mismatch error


class FusionError(AdfdError):
    """Inputs that cannot be fused: different recordings, conflicting labels, a bad weights file."""


def align(tables: Sequence[ScoreTable], allow_missing: bool = False) -> tuple[list[ScoreTable], int]:
    """The tables restricted to, and ordered by, the ids they all list; and how many ids were dropped.

    Without ``allow_missing``, ids that some tables lack are a FusionError naming up to 10 of them.
    """
    common = set(tables[0].ids).intersection(*(t.ids for t in tables[1:]))
    everywhere = [i for i in tables[0].ids if i in common]
    partial = list(dict.fromkeys(i for t in tables for i in t.ids if i not in common))
    if partial and not allow_missing:
        listed = [set(t.ids) for t in tables]
        named = [f"{i} (not in {', '.join(t.source for t, ids in zip(tables, listed) if i not in ids)})" for i in partial[:_SHOWN]]
        more = f" and {len(partial) - _SHOWN} more" if len(partial) > _SHOWN else ""
        raise FusionError(
            f"the inputs list different recordings: {'; '.join(named)}{more}. "
            f"{len(everywhere)} are in all of them; --allow-missing fuses just those"
        )
    if not everywhere:
        raise FusionError(f"no recording is in all of {', '.join(t.source for t in tables)}")
    aligned = []
    for t in tables:
        if t.ids == everywhere:
            aligned.append(t)
            continue
        row = {id_: i for i, id_ in enumerate(t.ids)}
        aligned.append(t.take([row[i] for i in everywhere]))
    return aligned, len(partial)


def _same_rows(tables: Sequence[ScoreTable]) -> None:
    if any(t.ids != tables[0].ids for t in tables[1:]):
        raise ValueError("fusion needs aligned tables; pass them through align() first")


def _first_known(columns: list[list[str]], unknown: str) -> np.ndarray:
    """Per row, the first of ``columns`` whose value is not ``unknown`` (else ``unknown``)."""
    merged = np.array(columns[0], dtype=object)
    for column in columns[1:]:
        missing = merged == unknown
        merged[missing] = np.array(column, dtype=object)[missing]
    return merged


def _carried(tables: Sequence[ScoreTable]) -> tuple[list[str], list[str], list[str]]:
    """Per row: the first known path, the one known label (a FusionError if tables disagree), the first known attack."""
    labels = _first_known([t.labels for t in tables], "unknown")
    for t in tables:
        own = np.array(t.labels, dtype=object)
        clash = np.flatnonzero((own != "unknown") & (own != labels))
        if clash.size:
            i = clash[0]
            first = next(u for u in tables if u.labels[i] == labels[i])
            raise FusionError(f"{t.ids[i]}: labelled {labels[i]} in {first.source} but {own[i]} in {t.source}")
    return (_first_known([t.paths for t in tables], "-").tolist(), labels.tolist(),
            _first_known([t.attacks for t in tables], "-").tolist())


def _errors(tables: Sequence[ScoreTable]) -> dict[str, list[str]]:
    """An ``error`` column naming, per row, the inputs without a score (and why, where they say); {} if none."""
    unscored = np.isnan([t.scores for t in tables])
    if not unscored.any():
        return {}
    errors = [""] * len(tables[0])
    for i in np.flatnonzero(unscored.any(axis=0)):
        missing = [t for t, gap in zip(tables, unscored[:, i]) if gap]
        errors[i] = "; ".join(f"{t.source}: {t.extra.get('error', [''] * len(t))[i] or 'no score'}" for t in missing)
    return {"error": errors}


def _fused(tables: Sequence[ScoreTable], scores: np.ndarray, p_spoof: np.ndarray, **details: Any) -> ScoreTable:
    paths, labels, attacks = _carried(tables)
    inputs = [{"source": t.source, "sha256": t.sha256} for t in tables]
    return ScoreTable.build(tables[0].ids, scores, p_spoof=p_spoof, paths=paths, labels=labels, attacks=attacks,
                            extra=_errors(tables), provenance=provenance(inputs=inputs, **details))


def mean_fusion(tables: Sequence[ScoreTable]) -> ScoreTable:
    """p_spoof = the mean of the inputs' p_spoof; score = ln((1 - p) / p), capped at +-SCORE_LIMIT.

    A row that some input has no score for has none either.
    """
    _same_rows(tables)
    p = np.mean([t.p_spoof for t in tables], axis=0)
    p[np.isnan([t.scores for t in tables]).any(axis=0)] = np.nan
    return _fused(tables, log_odds(p), p, fusion="mean")


@dataclass
class LogRegFusion:
    """llr = weights . (each system's score) + bias, a calibrated log-likelihood ratio (bona fide : spoof)."""

    systems: list[str]
    weights: np.ndarray
    bias: float
    prior: float = 0.5
    trained_on: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, tables: Sequence[ScoreTable]) -> ScoreTable:
        """Fuse aligned tables, given in the order of ``systems``; p_spoof is the posterior at ``prior``."""
        _same_rows(tables)
        if len(tables) != len(self.systems):
            raise FusionError(
                f"the fusion was trained on {len(self.systems)} systems ({', '.join(self.systems)}), "
                f"but {len(tables)} score tables were given; give one per system, in that order"
            )
        llr = np.column_stack([t.scores for t in tables]) @ self.weights + self.bias
        p_spoof = spoof_probability(llr + np.log(self.prior / (1 - self.prior)))
        return _fused(tables, llr, p_spoof, fusion=self.describe())

    def describe(self) -> dict[str, Any]:
        """The fusion's parameters as JSON-ready data."""
        return {"method": "logreg", "systems": self.systems, "weights": self.weights.tolist(), "bias": self.bias,
                "prior": self.prior, "trained_on": self.trained_on}

    def save(self, path: str | Path) -> None:
        """Write the weights as JSON, with the adfd version and the training tables' hashes."""
        data = {"format": WEIGHTS_FORMAT, "format_version": WEIGHTS_VERSION, "adfd_version": __version__,
                **self.describe(), "provenance": provenance()}
        try:
            Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise FusionError(f"{path}: cannot write ({exc.strerror or exc})") from None

    @classmethod
    def load(cls, path: str | Path) -> LogRegFusion:
        """Read weights that ``save`` wrote; a FusionError naming the file for anything else."""
        try:
            data = jsontext.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FusionError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FusionError(f"{path}: not a fusion weights file ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != WEIGHTS_FORMAT:
            raise FusionError(f"{path}: not a fusion weights file (written by `adfd fuse --save-weights`)")
        if data.get("format_version") != WEIGHTS_VERSION:
            raise FusionError(f"{path}: weights format version {data.get('format_version')}; this adfd reads {WEIGHTS_VERSION}")
        try:
            fusion = cls(list(map(str, data["systems"])), np.asarray(data["weights"], dtype=np.float64),
                         float(data["bias"]), float(data["prior"]), list(data.get("trained_on", [])))
        except (KeyError, TypeError, ValueError) as exc:
            raise FusionError(f"{path}: incomplete fusion weights ({type(exc).__name__}: {exc})") from None
        if fusion.weights.shape != (len(fusion.systems),) or not 0 < fusion.prior < 1:
            raise FusionError(f"{path}: inconsistent fusion weights (one weight per system, prior in (0, 1))")
        return fusion


def _cost_and_gradient(theta: np.ndarray, x: np.ndarray, is_bonafide: np.ndarray, row_weight: np.ndarray,
                       prior_logit: float, l2: float) -> tuple[float, np.ndarray]:
    """Prior-weighted cross-entropy (nats) of llr = x @ w + b, plus l2/2 |w|^2, and its gradient in (w, b)."""
    w, b = theta[:-1], theta[-1]
    sign = np.where(is_bonafide, 1.0, -1.0)
    margin = sign * (x @ w + b + prior_logit)
    cost = row_weight @ np.logaddexp(0.0, -margin) + 0.5 * l2 * (w @ w)
    d_llr = -sign * row_weight * np.exp(-np.logaddexp(0.0, margin))  # d cost / d llr = -sign * w_i * sigmoid(-margin)
    return float(cost), np.concatenate([x.T @ d_llr + l2 * w, [d_llr.sum()]])


def train_logreg(tables: Sequence[ScoreTable], prior: float = 0.5, l2: float = L2) -> LogRegFusion:
    """Fit the fusion on aligned, labelled dev tables (one per system) by L-BFGS.

    Each class's rows are weighted to total ``prior`` (bona fide) and 1 - ``prior`` (spoof), as
    in Brümmer's FoCal, so the output is an LLR whatever the dev set's class balance. Rows
    without a label or without a score in some table are left out.
    """
    _same_rows(tables)
    _, labels, _ = _carried(tables)
    x = np.column_stack([t.scores for t in tables])
    labels_ = np.asarray(labels)
    usable = ~np.isnan(x).any(axis=1) & (labels_ != "unknown")
    _check_training_scores(tables, x, usable)
    x, is_bonafide = x[usable], labels_[usable] == "bonafide"
    n_bonafide, n_spoof = int(is_bonafide.sum()), int((~is_bonafide).sum())
    if not n_bonafide or not n_spoof:
        raise FusionError(
            f"training the fusion needs labelled bona fide and spoof rows scored by every system; "
            f"{', '.join(t.source for t in tables)} have {n_bonafide} bona fide and {n_spoof} spoof"
        )
    try:
        weights, bias = fit_logreg(x, is_bonafide, prior, l2)
    except FusionError as exc:
        raise FusionError(f"training the fusion on {', '.join(t.source for t in tables)}: {exc}") from None
    trained_on = [{"source": t.source, "sha256": t.sha256, "rows": len(t)} for t in tables]
    return LogRegFusion([t.source for t in tables], weights, bias, prior, trained_on)


def fit_logreg(x: np.ndarray, is_bonafide: np.ndarray, prior: float = 0.5, l2: float = L2) -> tuple[np.ndarray, float]:
    """(weights (M,), bias) of llr = x @ weights + bias for x (n, M) scores of both classes, by L-BFGS on the
    prior-weighted cross-entropy: each class's rows weigh ``prior`` (bona fide) and 1 - ``prior`` in total."""
    from scipy.optimize import minimize

    n_bonafide, n_spoof = int(is_bonafide.sum()), int((~is_bonafide).sum())
    row_weight = np.where(is_bonafide, prior / n_bonafide, (1 - prior) / n_spoof)
    spread = x.std(axis=0)
    scale = np.where(spread > 0, spread, 1.0)  # fit on unit-spread inputs: L-BFGS stalls on scores in the thousands
    result = minimize(_cost_and_gradient, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                      args=(x / scale, is_bonafide, row_weight, float(np.log(prior / (1 - prior))), l2))
    if not result.success:
        raise FusionError(f"the logistic regression did not converge ({result.message})")
    return result.x[:-1] / scale, float(result.x[-1])


def _check_training_scores(tables: Sequence[ScoreTable], x: np.ndarray, usable: np.ndarray) -> None:
    """Refuse infinite or absurdly large scores among the rows a fusion would be trained on (they make the
    fit's cost infinite, and L-BFGS then stops at all-zero weights without a word)."""
    bad = np.argwhere(usable[:, None] & ~(np.abs(x) <= MAX_TRAINING_SCORE))
    if bad.size:
        row, system = bad[0]
        t = tables[system]
        raise FusionError(f"{t.source}: {t.ids[row]} has score {x[row, system]:g}; training the fusion needs finite "
                          f"scores within +-{MAX_TRAINING_SCORE:g}")
