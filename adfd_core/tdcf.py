"""Tandem detection cost (t-DCF) of a countermeasure (CM) in front of a fixed speaker verifier (ASV).

The ASV system is summed up by its error rates at its own EER threshold (targets vs nontargets), read
from an ASV score file. The CM's normalized t-DCF is then a line over its DET curve, and the min
t-DCF the lowest point of that line (scores: higher = more bona fide):

- ``min_tdcf_2019``, ASVspoof 2019's t-DCF (Kinnunen et al., Odyssey 2018; the 2019 evaluation
  plan and package): t-DCF(s) = C1 P_miss_cm(s) + C2 P_fa_cm(s), normalized by min(C1, C2), with
  C1 = P_tar (C_miss_cm - C_miss_asv P_miss_asv) - P_non C_fa_asv P_fa_asv and
  C2 = C_fa_cm P_spoof (1 - P_miss_spoof_asv) = C_fa_cm P_spoof P_fa_spoof_asv.
- ``min_tdcf_2021``, the revised t-DCF of ASVspoof 2021 LA (Kinnunen et al., IEEE/ACM TASLP 2020;
  the 2021 evaluation plan and package): t-DCF(s) = C0 + C1 P_miss_cm(s) + C2 P_fa_cm(s),
  normalized by the cost of the better of the two trivial CMs, C0 + min(C1, C2), with
  C0 = P_tar C_miss P_miss_asv + P_non C_fa P_fa_asv, C1 = P_tar C_miss - C0 and
  C2 = P_spoof C_fa_spoof P_fa_spoof_asv.

Both use the challenges' priors (P_spoof 0.05; P_tar and P_non 0.99 and 0.01 of the rest) and costs
(misses 1, false alarms 10). All rates are fractions.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from adfd_core.metrics import MetricsError, det_curve, eer

P_SPOOF = 0.05  # prior of a spoofing attack
P_TARGET = (1 - P_SPOOF) * 0.99  # 0.9405: prior of a target speaker
P_NONTARGET = (1 - P_SPOOF) * 0.01  # 0.0095: prior of a zero-effort impostor
C_MISS_ASV, C_FA_ASV, C_MISS_CM, C_FA_CM = 1.0, 10.0, 1.0, 10.0  # 2019: costs of the ASV's and the CM's errors
C_MISS, C_FA, C_FA_SPOOF = 1.0, 10.0, 10.0  # 2021: costs of the tandem's errors

ASV_KEYS = ("target", "nontarget", "spoof")


class AsvScoreError(MetricsError):
    """An ASV score file that cannot be read or used; the message names the file (and line)."""


@dataclass(frozen=True)
class AsvOperatingPoint:
    """An ASV system at its EER threshold: how often it rejects targets and accepts nontargets and spoofs."""

    eer: float
    threshold: float
    p_miss: float  # targets rejected (score < threshold)
    p_fa: float  # nontargets accepted (score >= threshold)
    p_fa_spoof: float  # spoofs accepted
    n_target: int
    n_nontarget: int
    n_spoof: int
    source: str = "<scores>"

    def to_dict(self) -> dict:
        return asdict(self)


def asv_operating_point(target, nontarget, spoof, source: str = "<scores>") -> AsvOperatingPoint:
    """The ASV error rates at the EER threshold of ``target`` vs ``nontarget`` scores, as the ASVspoof packages set it."""
    target, nontarget, spoof = (np.asarray(x, dtype=np.float64).ravel() for x in (target, nontarget, spoof))
    for name, x in (("target", target), ("nontarget", nontarget), ("spoof", spoof)):
        if x.size == 0:
            raise AsvScoreError(f"{source}: no {name} trials; the t-DCF needs target, nontarget and spoof ASV scores")
        if not np.isfinite(x).all():
            raise AsvScoreError(f"{source}: a {name} score is not a finite number")
    rate, threshold = eer(target, nontarget)
    return AsvOperatingPoint(
        eer=rate, threshold=threshold, p_miss=float(np.mean(target < threshold)), p_fa=float(np.mean(nontarget >= threshold)),
        p_fa_spoof=float(np.mean(spoof >= threshold)), n_target=target.size, n_nontarget=nontarget.size,
        n_spoof=spoof.size, source=source,
    )


@dataclass(frozen=True)
class AsvTrials:
    """The scores of an ASV score file by key, and the other fields of each spoof trial (speaker, utterance,
    attack, ...: whatever its format has), by which ``operating_point`` finds a group's spoof trials."""

    target: np.ndarray
    nontarget: np.ndarray
    spoof: np.ndarray
    spoof_fields: tuple[frozenset[str], ...]
    source: str

    def operating_point(self, utterances: Collection[str] = (), name: str | None = None) -> AsvOperatingPoint:
        """The ASV at its EER threshold; with ``utterances`` or ``name``, its spoof false-alarm rate over only the
        spoof trials that name one of those utterances or that group name (an attack), as per-attack t-DCFs
        are; over every spoof trial when none does, or when no group is asked for."""
        spoof = self.spoof
        wanted = set(utterances) | ({name} if name else set())
        if wanted:
            mine = np.array([not wanted.isdisjoint(fields) for fields in self.spoof_fields], dtype=bool)
            spoof = self.spoof[mine] if mine.any() else spoof
        return asv_operating_point(self.target, self.nontarget, spoof, source=self.source)


def read_asv_scores(path: str | Path) -> AsvTrials:
    """The trials of an ASV score file: whitespace-separated lines whose last field is the score and whose key
    (target, nontarget or spoof) is the last field before it that is one of those words, as in
    ``SPEAKER UTTERANCE KEY SCORE`` (also ASVspoof 2019's ``SOURCE KEY SCORE`` and its 6-column files)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        why = "no such file" if isinstance(exc, FileNotFoundError) else getattr(exc, "strerror", None) or str(exc)
        raise AsvScoreError(f"{path}: {why}") from None
    scores: dict[str, list[float]] = {key: [] for key in ASV_KEYS}
    spoof_fields: list[frozenset[str]] = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        at = next((i for i in range(len(fields) - 2, -1, -1) if fields[i] in ASV_KEYS), None)
        if at is None:
            raise AsvScoreError(f"{path}:{number}: no target, nontarget or spoof field before the score; expected "
                                "SPEAKER UTTERANCE KEY SCORE")
        try:
            scores[fields[at]].append(float(fields[-1]))
        except ValueError:
            raise AsvScoreError(f"{path}:{number}: score {fields[-1]!r} is not a number") from None
        if fields[at] == "spoof":
            spoof_fields.append(frozenset(fields[:at] + fields[at + 1 : -1]))
    trials = AsvTrials(*(np.array(scores[key], dtype=np.float64) for key in ASV_KEYS), tuple(spoof_fields), str(path))
    trials.operating_point()  # refuses a file that lacks a kind of trial, or holds a non-finite score
    return trials


def min_tdcf_2019(bonafide, spoof, asv: AsvOperatingPoint) -> float:
    """Minimum normalized t-DCF of CM scores with ASVspoof 2019's formulation and cost model."""
    c1 = P_TARGET * (C_MISS_CM - C_MISS_ASV * asv.p_miss) - P_NONTARGET * C_FA_ASV * asv.p_fa
    c2 = C_FA_CM * P_SPOOF * asv.p_fa_spoof
    return _min_normalized(bonafide, spoof, 0.0, c1, c2, min(c1, c2), asv)


def min_tdcf_2021(bonafide, spoof, asv: AsvOperatingPoint) -> float:
    """Minimum normalized t-DCF of CM scores with the revised formulation of ASVspoof 2021 LA."""
    c0 = P_TARGET * C_MISS * asv.p_miss + P_NONTARGET * C_FA * asv.p_fa
    c1 = P_TARGET * C_MISS - c0
    c2 = P_SPOOF * C_FA_SPOOF * asv.p_fa_spoof
    return _min_normalized(bonafide, spoof, c0, c1, c2, c0 + min(c1, c2), asv)


def _min_normalized(bonafide, spoof, c0: float, c1: float, c2: float, norm: float, asv: AsvOperatingPoint) -> float:
    """min over the CM's DET curve of (c0 + c1 P_miss_cm + c2 P_fa_cm) / norm."""
    if min(c0, c1, c2) < 0 or norm <= 0:
        raise AsvScoreError(f"{asv.source}: the ASV error rates give the t-DCF negative or zero weights "
                            f"(miss {asv.p_miss:.3g}, false alarm {asv.p_fa:.3g}, spoof false alarm {asv.p_fa_spoof:.3g})")
    p_miss_cm, p_fa_cm, _ = det_curve(bonafide, spoof)
    return float(np.min(c0 + c1 * p_miss_cm + c2 * p_fa_cm) / norm)
