"""Detection metrics for bona fide (target) vs spoof (nontarget) scores, numpy only.

Scores follow the ASVspoof convention: higher = more bona fide. Error rates and thresholds are
those of the ASVspoof 2019/2021/5 evaluation packages (``compute_det_curve``, ``compute_eer``,
``compute_mindcf``): a recording is accepted as bona fide when its score is above the threshold,
and the thresholds are the sorted scores themselves, ties included as the reference code has them.
Cllr and minCllr are in bits and treat scores as natural-log likelihood ratios.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from adfd_core.errors import AdfdError

if TYPE_CHECKING:
    from adfd_core.scoretable import ScoreTable
    from adfd_core.tdcf import AsvOperatingPoint, AsvTrials

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
    frr, far = _det_rates(order < bonafide.size)
    thresholds = np.concatenate([[scores[order[0]] - 0.001], scores[order]])
    return frr, far, thresholds


def _det_rates(sorted_is_bonafide: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frr, far) of ``det_curve`` from the (n,) class of each score in ascending order (True: bona fide)."""
    n_bonafide = int(sorted_is_bonafide.sum())
    n_spoof = sorted_is_bonafide.size - n_bonafide
    bonafide_rejected = np.cumsum(sorted_is_bonafide)
    spoof_accepted = n_spoof - (np.arange(1, sorted_is_bonafide.size + 1) - bonafide_rejected)
    return np.concatenate([[0.0], bonafide_rejected / n_bonafide]), np.concatenate([[1.0], spoof_accepted / n_spoof])


def _equal_point(frr: np.ndarray, far: np.ndarray) -> int:
    """The DET point where frr and far are closest (the first of equals): the EER's."""
    return int(np.argmin(np.abs(frr - far)))


def eer(bonafide, spoof) -> tuple[float, float]:
    """(equal error rate as a fraction, its threshold): the mean of frr and far where they are closest."""
    frr, far, thresholds = det_curve(bonafide, spoof)
    i = _equal_point(frr, far)
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


def _mistakes(bonafide, spoof, threshold: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bona fide called spoof, spoof called bona fide) per score, deciding spoof where score < ``threshold``:
    one value, or one per score of [bona fide..., spoof...]."""
    bonafide, spoof = np.asarray(bonafide, dtype=np.float64).ravel(), np.asarray(spoof, dtype=np.float64).ravel()
    called_spoof = np.concatenate([bonafide, spoof]) < threshold
    return called_spoof[: bonafide.size], ~called_spoof[bonafide.size :]


def error_rates(bonafide, spoof, threshold: float | np.ndarray = 0.0) -> tuple[float, float]:
    """(bona fide error rate: bona fide called spoof, spoof error rate: spoof called bona fide), deciding spoof
    where score < ``threshold`` (one value, or one per score of [bona fide..., spoof...]). NaN for an empty class."""
    rejected, accepted = _mistakes(bonafide, spoof, threshold)
    return (float(rejected.mean()) if rejected.size else float("nan"), float(accepted.mean()) if accepted.size else float("nan"))


def accuracy_f1(bonafide, spoof, threshold: float | np.ndarray = 0.0) -> tuple[float, float]:
    """(accuracy, F1 with spoof as the positive class) deciding spoof where score < threshold."""
    bonafide, spoof = _classes(bonafide, spoof)
    rejected, accepted = _mistakes(bonafide, spoof, threshold)
    false_pos, false_neg = int(rejected.sum()), int(accepted.sum())  # bona fide rejected, spoofs let through
    true_pos = spoof.size - false_neg  # spoofs caught
    accuracy = (true_pos + bonafide.size - false_pos) / (bonafide.size + spoof.size)
    f1 = 2 * true_pos / (2 * true_pos + false_pos + false_neg)
    return float(accuracy), float(f1)


def balanced_accuracy(bonafide, spoof, threshold: float | np.ndarray = 0.0) -> float:
    """The mean of the two classes' accuracies: 0.5 for a system that calls everything spoof, whatever the class sizes."""
    bonafide, spoof = _classes(bonafide, spoof)
    return float(1 - np.mean(error_rates(bonafide, spoof, threshold)))


@dataclass(frozen=True)
class Bootstrap:
    """How ``eer_interval`` resamples, within each class: recordings drawn with replacement, or with ``by`` (the
    name of a column, such as speaker) whole groups of recordings, so that recordings of one speaker do not
    count as independent evidence (the recording-level interval is too narrow where they are not)."""

    resamples: int = 1000
    seed: int = 0
    level: float = 0.95
    by: str | None = None

    def describe(self) -> dict[str, Any]:
        unit = f"values of {self.by} (each with all its recordings)" if self.by else "recordings"
        return {"level": self.level, "resamples": self.resamples, "seed": self.seed,
                "resampled": f"{unit}, with replacement, within each class", "by": self.by}


def eer_interval(bonafide, spoof, bootstrap: Bootstrap = Bootstrap(),
                 clusters: tuple[Sequence[str], Sequence[str]] | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval (low, high) of the EER at ``bootstrap.level``; the same seed gives the same
    interval. Without ``clusters``, each resample draws as many recordings as each class has; with them (the
    group of each bona fide and of each spoof score), as many groups as each class has, keeping all their rows.

    The scores are sorted once: a resample is a count of draws per score, and its sorted order is each
    score repeated that many times (ties keep bona fide first), so each EER is that of ``eer`` on the
    resampled scores without sorting them again.
    """
    bonafide, spoof = _classes(bonafide, spoof)
    if bootstrap.resamples < 1 or not 0 < bootstrap.level < 1:
        raise ValueError(f"need resamples >= 1 and 0 < level < 1, got {bootstrap}")
    rng = np.random.default_rng(bootstrap.seed)
    order = np.argsort(np.concatenate([bonafide, spoof]), kind="mergesort")
    sorted_is_bonafide = order < bonafide.size
    count_bonafide, count_spoof = (_draw_counts(x.size, None if clusters is None else c)
                                   for x, c in zip((bonafide, spoof), clusters or (None, None)))
    rates = np.empty(bootstrap.resamples)
    for k in range(bootstrap.resamples):
        counts = np.concatenate([count_bonafide(rng), count_spoof(rng)])[order]
        frr, far = _det_rates(np.repeat(sorted_is_bonafide, counts))
        i = _equal_point(frr, far)
        rates[k] = (frr[i] + far[i]) / 2
    tail = (1 - bootstrap.level) / 2
    low, high = np.quantile(rates, [tail, 1 - tail])
    return float(low), float(high)


def _draw_counts(n: int, clusters: Sequence[str] | None):
    """rng -> how often each of ``n`` rows is drawn in one bootstrap resample: n draws of rows, or as many
    draws of the rows' clusters as there are clusters (a drawn cluster brings all its rows)."""
    if clusters is None:
        return lambda rng: np.bincount(rng.integers(0, n, n), minlength=n)
    names, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    return lambda rng: np.bincount(rng.integers(0, names.size, names.size), minlength=names.size)[inverse]


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


def pair_metrics(bonafide, spoof, threshold: float | np.ndarray = 0.0, bootstrap: Bootstrap | None = None,
                 asv: AsvOperatingPoint | None = None,
                 clusters: tuple[Sequence[str], Sequence[str]] | None = None) -> dict[str, Any]:
    """Every metric of bona fide vs spoof scores (rates as fractions): counts, EER (and, with ``bootstrap``, its
    interval ``eer_ci``), AUC, the decisions at ``threshold`` (spoof where score < threshold; one value or one per
    score of [bona fide..., spoof...]), Cllr, minCllr, minDCF, actDCF and, with ``asv``, the min t-DCFs.
    ``clusters``: the bootstrap's group of each bona fide and each spoof score (see ``eer_interval``)."""
    from adfd_core import tdcf

    bonafide, spoof = _classes(bonafide, spoof)
    rate, at = eer(bonafide, spoof)
    accuracy, f1 = accuracy_f1(bonafide, spoof, threshold)
    bonafide_error, spoof_error = error_rates(bonafide, spoof, threshold)
    out: dict[str, Any] = {"n_bonafide": int(bonafide.size), "n_spoof": int(spoof.size), "eer": rate, "eer_threshold": at}
    if bootstrap is not None:
        out["eer_ci"] = list(eer_interval(bonafide, spoof, bootstrap, clusters))
    out |= {
        "auc": auc(bonafide, spoof),
        "accuracy": accuracy,
        "balanced_accuracy": balanced_accuracy(bonafide, spoof, threshold),
        "bonafide_error": bonafide_error,
        "spoof_error": spoof_error,
        "f1": f1,
        "cllr": cllr(bonafide, spoof),
        "min_cllr": min_cllr(bonafide, spoof),
        "min_dcf": min_dcf(bonafide, spoof),
        "act_dcf": act_dcf(bonafide, spoof),
    }
    if asv is not None:
        out["min_tdcf_2019"] = tdcf.min_tdcf_2019(bonafide, spoof, asv)
        out["min_tdcf_2021"] = tdcf.min_tdcf_2021(bonafide, spoof, asv)
    return out


def by_group(scores: np.ndarray, is_bonafide: np.ndarray, groups: Sequence[str] | np.ndarray,
             threshold: float | np.ndarray = 0.0, against_all: bool = True, bootstrap: Bootstrap | None = None,
             clusters: Sequence[str] | np.ndarray | None = None, asv: AsvTrials | None = None,
             ids: Sequence[str] | np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """``pair_metrics`` of each group (in sorted order; rows whose group is "-" or empty belong to none).

    (N,) scores, is_bonafide and groups; ``threshold`` one value or (N,), one per row. A group holding both
    classes is measured on its own rows (``versus``: "own"). With ``against_all``, a group of one class is
    measured against every row of the other class ("all bona fide", as ASVspoof's per-attack EERs are, or
    "all spoof"); without it, it gets only its counts and its one class's error rate. ``clusters`` (N,): the
    bootstrap's group of each row. With ``asv`` and the (N,) ``ids``, each group's t-DCF counts the ASV's
    spoof trials of its own spoofs (``asv_n_spoof`` of them; see ``AsvTrials.operating_point``).
    """
    scores, is_bonafide, groups = np.asarray(scores, dtype=np.float64), np.asarray(is_bonafide, dtype=bool), np.asarray(groups)
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=np.float64), scores.shape)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(groups.tolist()) - {"-", ""}):
        own = groups == name
        bona, spoof, versus = own & is_bonafide, own & ~is_bonafide, "own"
        if against_all and not bona.any():
            bona, versus = is_bonafide, "all bona fide"
        elif against_all and not spoof.any():
            spoof, versus = ~is_bonafide, "all spoof"
        rows_threshold = np.concatenate([thresholds[bona], thresholds[spoof]])
        if not (bona.any() and spoof.any()):
            bonafide_error, spoof_error = error_rates(scores[bona], scores[spoof], rows_threshold)
            out[name] = {"versus": None, "n_bonafide": int(bona.sum()), "n_spoof": int(spoof.sum()),
                         "bonafide_error": None if np.isnan(bonafide_error) else bonafide_error,
                         "spoof_error": None if np.isnan(spoof_error) else spoof_error}
            continue
        pairs = None if clusters is None else (np.asarray(clusters)[bona], np.asarray(clusters)[spoof])
        point = None if asv is None else asv.operating_point(() if ids is None else np.asarray(ids)[spoof].tolist(), name)
        out[name] = {"versus": versus, **pair_metrics(scores[bona], scores[spoof], rows_threshold, bootstrap, point, pairs)}
        if point is not None:
            out[name]["asv_n_spoof"] = point.n_spoof
    return out


def group_columns(table: ScoreTable) -> dict[str, list[str]]:
    """The columns of a ScoreTable a breakdown can group by: attack, label, decision and its extra columns."""
    return {"attack": table.attacks, "label": table.labels, "decision": table.decisions, **table.extra}


def evaluate(table: ScoreTable, threshold: float = 0.0, by: str = "attack", bootstrap: Bootstrap | None = None,
             asv: AsvTrials | None = None) -> dict[str, Any]:
    """Every metric of a labelled ScoreTable, pooled and per group of column ``by``; rates are fractions (not %).

    Rows without a score or a label are left out and counted (n_unscored, n_unlabelled). The pooled
    metrics are at the top level (see ``pair_metrics``), ``groups`` holds those of each value of ``by``
    (see ``by_group``: a group of spoofs only, such as an attack, is measured against all bona fide).
    With ``bootstrap``, EER intervals and how they were drawn (``ci``; ``bootstrap.by`` names the column
    whose groups are resampled); with ``asv``, min t-DCFs and the ASV's pooled operating point (``asv``).
    """
    from adfd_core.scoretable import utterance_name

    columns = group_columns(table)
    for name in (by, bootstrap.by if bootstrap is not None else None):
        if name is not None and name not in columns:
            raise MetricsError(f"{table.source}: no column {name!r} to group by; columns: {', '.join(columns)}")
    bonafide, spoof = class_scores(table)
    if not bonafide.size or not spoof.size:
        missing = "bona fide" if not bonafide.size else "spoof"
        raise MetricsError(f"{table.source}: no scored {missing} recordings; the metrics need both classes")
    scored = ~np.isnan(table.scores)
    labels = np.asarray(table.labels)
    usable = scored & (labels != "unknown")
    clusters = np.asarray(columns[bootstrap.by])[usable] if bootstrap is not None and bootstrap.by else None
    is_bonafide = labels[usable] == "bonafide"
    ids = [utterance_name(i) for i in np.asarray(table.ids)[usable]]
    groups = by_group(table.scores[usable], is_bonafide, np.asarray(columns[by])[usable], threshold, bootstrap=bootstrap,
                      clusters=clusters, asv=asv, ids=ids)
    pooled_clusters = None if clusters is None else (clusters[is_bonafide], clusters[~is_bonafide])
    point = asv.operating_point() if asv is not None else None
    return {
        "n_unscored": int((~scored).sum()),
        "n_unlabelled": int((scored & (labels == "unknown")).sum()),
        "threshold": threshold,
        **pair_metrics(bonafide, spoof, threshold, bootstrap, point, pooled_clusters),
        **({"ci": bootstrap.describe()} if bootstrap is not None else {}),
        **({"asv": point.to_dict()} if point is not None else {}),
        "by": by,
        "groups": groups,
    }
