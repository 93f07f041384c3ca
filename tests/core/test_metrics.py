"""Metrics against hand-computed cases: EER as the ASVspoof reference, AUC, accuracy/F1, Cllr, minCllr, DCF, PAV."""

from __future__ import annotations

import numpy as np
import pytest

from adfd_core import metrics as m
from adfd_core.errors import AdfdError
from adfd_core.scoretable import ScoreTable

# A small case with ties, worked by hand. Stable order of [bona fide..., spoof...] by score:
#   0 s | 1 b | 2 b | 2 s | 2 s | 3 b   (tied bona fide sort before tied spoof)
# frr (bona fide rejected) 0, 0, 1/3, 2/3, 2/3, 2/3, 1 ; far (spoof accepted) 1, 2/3, 2/3, 2/3, 1/3, 0, 0
TIED_BONA, TIED_SPOOF = [1.0, 2.0, 3.0], [0.0, 2.0, 2.0]


def test_det_curve_follows_the_reference_order_with_ties():
    frr, far, thr = m.det_curve(TIED_BONA, TIED_SPOOF)
    np.testing.assert_allclose(frr, [0, 0, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 1])
    np.testing.assert_allclose(far, [1, 2 / 3, 2 / 3, 2 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(thr, [-0.001, 0, 1, 2, 2, 2, 3])


@pytest.mark.parametrize(
    "bona, spoof, expected_eer, expected_threshold",
    [
        (TIED_BONA, TIED_SPOOF, 2 / 3, 2.0),  # |frr - far| is 0 at point 3
        ([0.2, 0.6, 0.9], [0.1, 0.4, 0.7], 1 / 3, 0.4),  # interleaved, no ties
        ([3.0, 4.0], [1.0, 2.0], 0.0, 2.0),  # perfect separation
        ([1.0, 2.0], [3.0, 4.0], 1.0, 2.0),  # fully inverted: 100 %
        ([2.0], [2.0], 1.0, 2.0),  # a tie counts against the system: bona fide sorts first
    ],
)
def test_eer_hand_cases(bona, spoof, expected_eer, expected_threshold):
    rate, threshold = m.eer(bona, spoof)
    assert rate == pytest.approx(expected_eer)
    assert threshold == pytest.approx(expected_threshold)


@pytest.mark.parametrize("metric", [m.eer, m.auc, m.cllr, m.min_cllr, m.min_dcf, m.act_dcf, m.accuracy_f1])
def test_an_empty_class_or_nan_is_a_clear_error(metric):
    with pytest.raises(m.MetricsError, match="no spoof scores"):
        metric([1.0, 2.0], [])
    with pytest.raises(m.MetricsError, match="no bona fide scores"):
        metric([], [1.0])
    with pytest.raises(m.MetricsError, match="NaN"):
        metric([1.0, float("nan")], [0.0])
    assert issubclass(m.MetricsError, AdfdError)


def test_auc_counts_ties_half_and_matches_pairwise_counting():
    assert m.auc(TIED_BONA, TIED_SPOOF) == pytest.approx(6 / 9)  # 1 + (1 + .5 + .5) + 3 of 9 pairs
    assert m.auc([3, 4], [1, 2]) == 1.0 and m.auc([1, 2], [3, 4]) == 0.0 and m.auc([5, 5], [5]) == 0.5
    rng = np.random.default_rng(0)
    bona, spoof = rng.integers(0, 8, 300).astype(float), rng.integers(-2, 6, 200).astype(float)
    pairwise = ((bona[:, None] > spoof[None, :]) + 0.5 * (bona[:, None] == spoof[None, :])).mean()
    assert m.auc(bona, spoof) == pytest.approx(pairwise)


def test_accuracy_and_f1_take_spoof_as_positive_below_the_threshold():
    bona, spoof = [1.0, -1.0, 0.0], [-2.0, 0.5, 0.7]  # 0.0 is not below 0: accepted as bona fide
    accuracy, f1 = m.accuracy_f1(bona, spoof)
    # 1 spoof caught (TP), 1 bona fide rejected (FP), 2 spoofs missed (FN), 2 bona fide accepted
    assert accuracy == pytest.approx(3 / 6)
    assert f1 == pytest.approx(2 * 1 / (2 * 1 + 1 + 2))
    assert m.accuracy_f1(bona, spoof, threshold=1.0) == pytest.approx((4 / 6, 2 * 3 / (2 * 3 + 2 + 0)))


def test_cllr_hand_values():
    assert m.cllr([0.0], [0.0]) == pytest.approx(1.0)  # a system that always says "no idea"
    assert m.cllr([np.log(3)], [-np.log(3)]) == pytest.approx(np.log2(4 / 3))
    assert m.cllr([50.0], [-50.0]) == pytest.approx(0.0, abs=1e-12)
    assert m.cllr([-50.0], [50.0]) > 70  # confidently wrong costs without bound


def test_calibrated_llrs_reach_min_cllr_and_miscalibrated_ones_do_not():
    rng = np.random.default_rng(1)
    x_bona, x_spoof = rng.normal(1, 1, 20000), rng.normal(-1, 1, 20000)
    llr_bona, llr_spoof = 2 * x_bona, 2 * x_spoof  # the exact LLR of N(1, 1) vs N(-1, 1)
    calibrated = m.cllr(llr_bona, llr_spoof)
    floor = m.min_cllr(llr_bona, llr_spoof)
    assert floor <= calibrated < floor + 0.01
    for a, b in [(5, 0), (0.3, 0), (2, 3)]:  # overconfident, underconfident, shifted
        assert m.cllr(a * x_bona + b, a * x_spoof + b) > floor + 0.05
        assert m.min_cllr(a * x_bona + b, a * x_spoof + b) == pytest.approx(floor)  # order is all minCllr sees
    assert m.min_cllr([3, 4], [1, 2]) == 0.0


def test_min_cllr_treats_tied_scores_alike():
    # every score tied: PAV pools all into the base rate, whose LLR (after removing the prior) is 0
    assert m.min_cllr([1.0, 1.0, 1.0], [1.0]) == pytest.approx(1.0)
    bona_llr, spoof_llr = m.optimal_llrs(TIED_BONA, TIED_SPOOF)
    assert bona_llr[1] == spoof_llr[1] == spoof_llr[2]  # the three scores of 2.0 get one LLR


def test_min_dcf_and_act_dcf_hand_cases():
    # cost_k = 0.95 frr_k + 0.5 far_k; least at point 1: 0.5 * 2/3; normalized by min(0.95, 0.5)
    assert m.min_dcf(TIED_BONA, TIED_SPOOF) == pytest.approx((0.5 * 2 / 3) / 0.5)
    assert m.min_dcf([3.0, 4.0], [1.0, 2.0]) == 0.0
    assert m.min_dcf([1.0, 2.0], [3.0, 4.0]) == pytest.approx(1.0)  # accept everything: 0.5 / 0.5
    # the Bayes threshold is -ln(0.95 / 0.5) = -0.642: no bona fide below it, 2 of 3 spoofs at or above
    assert m.act_dcf(TIED_BONA, [-1.0, 2.0, 2.0]) == pytest.approx(0.5 * (2 / 3) / 0.5)
    assert m.act_dcf([-0.7, 1.0], [-0.7, -1.0]) == pytest.approx((0.95 * 0.5 + 0.5 * 0) / 0.5)


def test_pav_gives_the_isotonic_least_squares_fit():
    from scipy.optimize import isotonic_regression

    np.testing.assert_allclose(m.pav(np.array([1, 3, 2, 4, 0.0])), [1, 2.25, 2.25, 2.25, 2.25])
    np.testing.assert_allclose(m.pav(np.array([3.0, 1.0]), np.array([1.0, 3.0])), [1.5, 1.5])
    np.testing.assert_array_equal(m.pav(np.arange(5.0)), np.arange(5.0))
    rng = np.random.default_rng(2)
    y, w = rng.normal(size=500), rng.uniform(0.1, 2, 500)
    np.testing.assert_allclose(m.pav(y, w), isotonic_regression(y, weights=w).x)


def _table(scores, labels, attacks):
    return ScoreTable.build([f"u{i}" for i in range(len(scores))], scores, labels=labels, attacks=attacks, source="t.tsv")


def test_evaluate_leaves_out_unscored_and_unlabelled_rows_and_breaks_down_by_attack():
    scores = [1.0, 2.0, 3.0, 0.0, 2.0, 2.0, np.nan, 5.0, -4.0]
    labels = ["bonafide"] * 3 + ["spoof"] * 3 + ["spoof", "unknown", "spoof"]
    attacks = ["-"] * 3 + ["A01", "A02", "A02", "A01", "-", "-"]
    r = m.evaluate(_table(scores, labels, attacks))
    assert (r["n_bonafide"], r["n_spoof"], r["n_unscored"], r["n_unlabelled"]) == (3, 4, 1, 1)
    spoof = [0.0, 2.0, 2.0, -4.0]
    assert r["eer"] == pytest.approx(m.eer(TIED_BONA, spoof)[0])
    assert r["min_dcf"] == pytest.approx(m.min_dcf(TIED_BONA, spoof))
    assert r["by"] == "attack" and list(r["groups"]) == ["A01", "A02"]  # a spoof without an attack counts in pooled only
    # bona fide 1 2 3 vs A02 2 2: frr 0 1/3 2/3 2/3 2/3 1, far 1 1 1 1/2 0 0: closest at point 3
    a02 = r["groups"]["A02"]
    assert (a02["versus"], a02["n_bonafide"], a02["n_spoof"]) == ("all bona fide", 3, 2)
    assert a02["eer"] == pytest.approx((2 / 3 + 1 / 2) / 2) and a02["auc"] == pytest.approx(3 / 6)
    assert r["groups"]["A01"]["n_spoof"] == 1


def test_evaluate_needs_both_classes_and_names_the_table():
    with pytest.raises(m.MetricsError, match=r"t\.tsv: no scored spoof"):
        m.evaluate(_table([1.0, np.nan], ["bonafide", "spoof"], ["-", "A01"]))


def test_balanced_accuracy_exposes_a_model_that_calls_everything_spoof():
    # 9 spoofs per bona fide, every score below 0: accuracy 90 %, but the bona fide class is always wrong
    bona, spoof = [-1.0], [-2.0] * 9
    accuracy, _ = m.accuracy_f1(bona, spoof)
    assert accuracy == pytest.approx(0.9)
    assert m.error_rates(bona, spoof) == (1.0, 0.0)
    assert m.balanced_accuracy(bona, spoof) == pytest.approx(0.5)
    # a threshold per score of [bona fide..., spoof...]: the bona fide at -2 passes, one spoof is let through
    assert m.error_rates([-1.0, 1.0], [-2.0, 0.5], np.array([-2.0, 0.0, 0.0, 0.0])) == (0.0, 0.5)
    assert all(np.isnan(m.error_rates([], [1.0]))[:1])


def test_the_eer_interval_is_seeded_holds_the_eer_and_narrows_with_more_recordings():
    rng = np.random.default_rng(0)

    def sample(n):
        return rng.normal(1.0, 1.0, n), rng.normal(-1.0, 1.0, n)

    small, large = sample(40), sample(1000)
    boot = m.Bootstrap(resamples=200, seed=3)
    low, high = m.eer_interval(*small, boot)
    assert (low, high) == m.eer_interval(*small, boot)  # the same seed, the same interval
    assert m.eer_interval(*small, m.Bootstrap(resamples=200, seed=4)) != (low, high)
    assert low <= m.eer(*small)[0] <= high
    large_low, large_high = m.eer_interval(*large, boot)
    assert large_high - large_low < (high - low) / 2
    assert m.eer_interval([3.0, 4.0], [1.0, 2.0], boot) == (0.0, 0.0)  # separated in every resample
    assert boot.describe()["resampled"] == "recordings, with replacement, within each class"


def test_resampling_whole_speakers_widens_the_interval_when_their_recordings_agree():
    # 12 speakers per class, 25 recordings each; a speaker's recordings share a large offset, so there are
    # 24 independent pieces of evidence, not 600
    rng = np.random.default_rng(1)
    offsets = rng.normal(0, 1.5, 24)
    speakers = np.repeat([f"spk{k}" for k in range(24)], 25)
    scores = np.repeat(offsets, 25) + rng.normal(0, 0.3, 600) + np.repeat([1.0] * 12 + [-1.0] * 12, 25)
    bona, spoof = scores[:300], scores[300:]
    boot = m.Bootstrap(resamples=300, seed=0)
    by_recording = m.eer_interval(bona, spoof, boot)
    by_speaker = m.eer_interval(bona, spoof, m.Bootstrap(resamples=300, seed=0, by="speaker"), (speakers[:300], speakers[300:]))
    assert by_speaker[1] - by_speaker[0] > 2 * (by_recording[1] - by_recording[0])
    assert m.Bootstrap(by="speaker").describe()["resampled"].startswith("values of speaker (each with all its recordings)")


def test_groups_of_both_classes_stand_alone_and_single_class_groups_meet_the_whole_other_class():
    scores = np.array([2.0, 1.0, -1.0, 3.0, -2.0, -3.0, 0.5])
    is_bona = np.array([True, True, False, True, False, False, False])
    groups = np.array(["s1", "s1", "s1", "s2", "s3", "s3", "-"])
    out = m.by_group(scores, is_bona, groups)
    assert list(out) == ["s1", "s2", "s3"]  # "-" is no group
    assert out["s1"]["versus"] == "own" and (out["s1"]["n_bonafide"], out["s1"]["n_spoof"]) == (2, 1)
    assert out["s2"]["versus"] == "all spoof" and out["s2"]["n_spoof"] == 4
    assert out["s3"]["versus"] == "all bona fide" and out["s3"]["n_bonafide"] == 3
    alone = m.by_group(scores, is_bona, groups, threshold=np.full(7, 2.5), against_all=False)
    # s2's one bona fide (3.0) passes 2.5; s3 has no bona fide, and its spoofs are all caught
    assert alone["s2"] == {"versus": None, "n_bonafide": 1, "n_spoof": 0, "bonafide_error": 0.0, "spoof_error": None}
    assert alone["s3"]["spoof_error"] == 0.0 and "eer" not in alone["s3"]
    assert alone["s1"]["bonafide_error"] == 1.0  # 2.0 and 1.0 are below 2.5


def test_evaluate_groups_by_any_column_and_refuses_an_unknown_one():
    t = ScoreTable.build(["a", "b", "c", "d"], [2.0, -1.0, 1.0, -2.0], labels=["bonafide", "spoof"] * 2,
                         extra={"source": ["x", "x", "y", "y"]}, source="t.tsv")
    r = m.evaluate(t, by="source")
    assert r["by"] == "source" and list(r["groups"]) == ["x", "y"] and r["groups"]["x"]["eer"] == 0.0
    with pytest.raises(m.MetricsError, match="no column 'family'.*source"):
        m.evaluate(t, by="family")


def test_each_bootstrap_eer_is_the_eer_of_the_resampled_scores_ties_included():
    rng = np.random.default_rng(0)
    bona, spoof = rng.normal(1, 1, 30).round(), rng.normal(-1, 1, 45).round()  # many ties across the classes
    draws = np.random.default_rng(5)  # the draws eer_interval makes: bona fide indices, then spoof, per resample
    rates = [m.eer(bona[draws.integers(0, 30, 30)], spoof[draws.integers(0, 45, 45)])[0] for _ in range(40)]
    interval = m.eer_interval(bona, spoof, m.Bootstrap(resamples=40, seed=5, level=0.5))
    assert interval == pytest.approx(tuple(np.quantile(rates, [0.25, 0.75])), abs=1e-12)
