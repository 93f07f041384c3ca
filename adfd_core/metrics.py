"""Detection metrics for bona fide (target) vs spoof (nontarget) scores, numpy only.

Scores follow the ASVspoof convention: higher = more bona fide. Error rates and thresholds are
those of the ASVspoof 2019/2021/5 evaluation packages (``compute_det_curve``, ``compute_eer``,
``compute_mindcf``): a recording is accepted as bona fide when its score is above the threshold,
and the thresholds are the sorted scores themselves, ties included as the reference code has them.
Cllr and minCllr are in bits and treat scores as natural-log likelihood ratios.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from adfd_core.errors import AdfdError

if TYPE_CHECKING:
    from adfd_core.scoretable import ScoreTable

# ASVspoof 5 evaluation plan, track 1 (and its evaluation package, calculate_metrics.py):
# DCF = C_MISS * (1 - P_SPOOF) * P_miss(bona fide) + C_FA * P_SPOOF * P_fa(spoof),
# normalized by min(C_MISS * (1 - P_SPOOF), C_FA * P_SPOOF).
P_SPOOF = 0.05
C_MISS = 1.0
C_FA = 10.0


class MetricsError(AdfdError):
    """Scores that a metric cannot be computed from (an empty class, NaN)."""


def _classes(bonafide: Sequence[float] | np.ndarray, spoof: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both classes as float64 arrays; a MetricsError if one is empty or holds NaN."""
    bonafide, spoof = np.asarray(bonafide, dtype=np.float64).ravel(), np.asarray(spoof, dtype=np.float64).ravel()
    for name, x in (("bona fide", bonafide), ("spoof", spoof)):
        if x.size == 0:
            raise MetricsError(f"no {name} scores: the metrics compare bona fide with spoof recordings, so both are needed")
        if np.isnan(x).any():
            raise MetricsError(f"NaN among the {name} scores")
    return bonafide, spoof


def det_curve(bonafide, spoof) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(miss rate of bona fide, false-alarm rate of spoof, thresholds), each of length n + 1.

    Point 0 is the threshold just below every score (frr 0, far 1); point k rejects the k lowest
    scores in stable (mergesort) order of [bona fide..., spoof...], as the ASVspoof reference does.
    """
    bonafide, spoof = _classes(bonafide, spoof)
    scores = np.concatenate([bonafide, spoof])
    order = np.argsort(scores, kind="mergesort")
    is_bonafide = np.concatenate([np.ones(bonafide.size), np.zeros(spoof.size)])[order]
    bonafide_rejected = np.cumsum(is_bonafide)
    spoof_accepted = spoof.size - (np.arange(1, scores.size + 1) - bonafide_rejected)
    frr = np.concatenate([[0.0], bonafide_rejected / bonafide.size])
    far = np.concatenate([[1.0], spoof_accepted / spoof.size])
    thresholds = np.concatenate([[scores[order[0]] - 0.001], scores[order]])
    return frr, far, thresholds


def eer(bonafide, spoof) -> tuple[float, float]:
    """(equal error rate as a fraction, its threshold): the mean of frr and far where they are closest."""
    frr, far, thresholds = det_curve(bonafide, spoof)
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2), float(thresholds[i])


def min_dcf(bonafide, spoof, p_spoof: float = P_SPOOF, c_miss: float = C_MISS, c_fa: float = C_FA) -> float:
    """Normalized minimum detection cost over the DET curve's thresholds (ASVspoof 5 costs by default)."""
    frr, far, _ = det_curve(bonafide, spoof)
    cost = c_miss * (1 - p_spoof) * frr + c_fa * p_spoof * far
    return float(cost.min() / min(c_miss * (1 - p_spoof), c_fa * p_spoof))


def act_dcf(bonafide, spoof, p_spoof: float = P_SPOOF, c_miss: float = C_MISS, c_fa: float = C_FA) -> float:
    """Normalized detection cost at the Bayes threshold of calibrated LLRs, -ln(c_miss (1-p) / (c_fa p))."""
    bonafide, spoof = _classes(bonafide, spoof)
    threshold = -np.log(c_miss * (1 - p_spoof) / (c_fa * p_spoof))
    cost = c_miss * (1 - p_spoof) * np.mean(bonafide < threshold) + c_fa * p_spoof * np.mean(spoof >= threshold)
    return float(cost / min(c_miss * (1 - p_spoof), c_fa * p_spoof))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]]))
    ends = np.concatenate([starts[1:], [x.size]])  # exclusive
    mean_rank = (starts + 1 + ends) / 2  # mean of ranks starts+1 .. ends
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auc(bonafide, spoof) -> float:
    """Area under the ROC: P(bona fide score > spoof score), ties counted half (Mann-Whitney U)."""
    bonafide, spoof = _classes(bonafide, spoof)
    ranks = _average_ranks(np.concatenate([bonafide, spoof]))
    u = ranks[: bonafide.size].sum() - bonafide.size * (bonafide.size + 1) / 2
    return float(u / (bonafide.size * spoof.size))


def accuracy_f1(bonafide, spoof, threshold: float = 0.0) -> tuple[float, float]:
    """(accuracy, F1 with spoof as the positive class) deciding spoof where score < threshold."""
    bonafide, spoof = _classes(bonafide, spoof)
    true_pos = np.sum(spoof < threshold)  # spoofs caught
    false_pos = np.sum(bonafide < threshold)  # bona fide rejected
    false_neg = spoof.size - true_pos
    accuracy = (true_pos + bonafide.size - false_pos) / (bonafide.size + spoof.size)
    f1 = 2 * true_pos / (2 * true_pos + false_pos + false_neg)
    return float(accuracy), float(f1)


def cllr(bonafide, spoof) -> float:
    """Log-likelihood-ratio cost in bits: 0 is perfect, 1 is a system that always says LLR 0."""
    bonafide, spoof = _classes(bonafide, spoof)
    return float((np.mean(np.logaddexp(0, -bonafide)) + np.mean(np.logaddexp(0, spoof))) / (2 * np.log(2)))


def pav(y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The non-decreasing sequence closest to ``y`` in weighted least squares (pool adjacent violators)."""
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    means: list[float] = []
    sizes: list[float] = []
    counts: list[int] = []
    for value, weight in zip(y.tolist(), w.tolist()):
        means.append(value)
        sizes.append(weight)
        counts.append(1)
        while len(means) > 1 and means[-2] > means[-1]:  # pool the last two blocks
            total = sizes[-2] + sizes[-1]
            means[-2] = (means[-2] * sizes[-2] + means[-1] * sizes[-1]) / total
            sizes[-2] = total
            counts[-2] += counts[-1]
            del means[-1], sizes[-1], counts[-1]
    return np.repeat(means, counts)


def optimal_llrs(bonafide, spoof) -> tuple[np.ndarray, np.ndarray]:
    """The LLRs of the best monotonic recalibration of the scores (PAV), for bona fide and spoof.

    Tied scores get one value: among ties bona fide comes first, so PAV pools them (as BOSARIS does).
    """
    bonafide, spoof = _classes(bonafide, spoof)
    scores = np.concatenate([bonafide, spoof])
    order = np.argsort(scores, kind="mergesort")
    posterior = np.empty(scores.size)
    posterior[order] = pav(np.concatenate([np.ones(bonafide.size), np.zeros(spoof.size)])[order])
    with np.errstate(divide="ignore"):
        llr = np.log(posterior) - np.log1p(-posterior) - np.log(bonafide.size / spoof.size)
    return llr[: bonafide.size], llr[bonafide.size :]


def min_cllr(bonafide, spoof) -> float:
    """Cllr after the best monotonic recalibration: the discrimination part of Cllr (bits)."""
    return cllr(*optimal_llrs(bonafide, spoof))


def class_scores(table: ScoreTable) -> tuple[np.ndarray, np.ndarray]:
    """Scores of a ScoreTable's labelled, scored rows: (bona fide, spoof)."""
    labels = np.asarray(table.labels)
    scored = ~np.isnan(table.scores)
    return table.scores[scored & (labels == "bonafide")], table.scores[scored & (labels == "spoof")]


def _pair_metrics(bonafide: np.ndarray, spoof: np.ndarray) -> dict[str, Any]:
    rate, _ = eer(bonafide, spoof)
    return {"n_spoof": int(spoof.size), "eer": rate, "auc": auc(bonafide, spoof)}


def evaluate(table: ScoreTable, threshold: float = 0.0) -> dict[str, Any]:
    """Every metric of a labelled ScoreTable; rates are fractions (not %).

    Rows without a score or a label are left out and counted (n_unscored, n_unlabelled).
    Accuracy and F1 (spoof = positive class) decide spoof where score < ``threshold`` (0 for
    log-odds). ``by_attack`` holds EER and AUC of all bona fide vs each attack's spoofs, pooled first.
    """
    bonafide, spoof = class_scores(table)
    if not bonafide.size or not spoof.size:
        missing = "bona fide" if not bonafide.size else "spoof"
        raise MetricsError(f"{table.source}: no scored {missing} recordings; the metrics need both classes")
    rate, at = eer(bonafide, spoof)
    accuracy, f1 = accuracy_f1(bonafide, spoof, threshold)
    scored = ~np.isnan(table.scores)
    labels = np.asarray(table.labels)
    attacks = np.asarray(table.attacks)
    by_attack = {"pooled": _pair_metrics(bonafide, spoof)}
    for attack in sorted(set(attacks[scored & (labels == "spoof")]) - {"-"}):
        by_attack[attack] = _pair_metrics(bonafide, table.scores[scored & (labels == "spoof") & (attacks == attack)])
    return {
        "n_bonafide": int(bonafide.size),
        "n_spoof": int(spoof.size),
        "n_unscored": int((~scored).sum()),
        "n_unlabelled": int((scored & (labels == "unknown")).sum()),
        "eer": rate,
        "eer_threshold": at,
        "auc": auc(bonafide, spoof),
        "threshold": threshold,
        "accuracy": accuracy,
        "f1": f1,
        "cllr": cllr(bonafide, spoof),
        "min_cllr": min_cllr(bonafide, spoof),
        "min_dcf": min_dcf(bonafide, spoof),
        "act_dcf": act_dcf(bonafide, spoof),
        "by_attack": by_attack,
    }
