"""Fusion: alignment, mean of probabilities, logistic-regression fusion that calibrates, weights files."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from adfd_core import metrics
from adfd_core.fusion import FusionError, LogRegFusion, align, mean_fusion, train_logreg
from adfd_core.scoretable import SCORE_LIMIT, ScoreTable, log_odds


def table(ids, p_spoof, source, labels=None, **kw) -> ScoreTable:
    return ScoreTable.build(ids, log_odds(p_spoof), p_spoof=np.asarray(p_spoof), labels=labels, source=source, **kw)


def test_mean_fusion_averages_probabilities_and_carries_labels():
    a = table(["x", "y", "z"], [0.2, 0.9, 0.5], "a.tsv", labels=["bonafide", "unknown", "spoof"], attacks=["-", "-", "A01"])
    b = table(["x", "y", "z"], [0.4, 0.7, 1e-3], "b.tsv", labels=["unknown", "spoof", "spoof"], paths=["/x.wav", "-", "-"])
    fused = mean_fusion([a, b])
    np.testing.assert_allclose(fused.p_spoof, [0.3, 0.8, 0.2505])
    np.testing.assert_allclose(fused.scores, np.log([0.7 / 0.3, 0.2 / 0.8, 0.7495 / 0.2505]))
    assert fused.labels == ["bonafide", "spoof", "spoof"] and fused.attacks == ["-", "-", "A01"]
    assert fused.paths == ["/x.wav", "-", "-"] and fused.decisions == ["bonafide", "spoof", "bonafide"]
    assert fused.extra == {}
    assert fused.provenance["inputs"] == [{"source": "a.tsv", "sha256": ""}, {"source": "b.tsv", "sha256": ""}]


def test_mean_fusion_caps_certainty_to_finite_scores_and_names_missing_scores():
    a = ScoreTable.build(["x", "y", "z"], [50.0, -50.0, 0.0], p_spoof=[0.0, 1.0, 0.5], source="a.tsv")
    b = ScoreTable.build(["x", "y", "z"], [np.nan, np.nan, 0.0], source="b.tsv", extra={"error": ["cannot decode", "", ""]})
    b.p_spoof[1] = 1.0  # y: b has a probability but no score: still a row without a score
    fused = mean_fusion([a, a])
    np.testing.assert_array_equal(fused.scores, [SCORE_LIMIT, -SCORE_LIMIT, 0.0])
    with_gap = mean_fusion([a, b])
    assert np.isnan(with_gap.scores[:2]).all() and with_gap.decisions == ["-", "-", "bonafide"]
    assert with_gap.extra["error"] == ["b.tsv: cannot decode", "b.tsv: no score", ""]


def test_conflicting_labels_are_refused():
    a = table(["x"], [0.5], "a.tsv", labels=["bonafide"])
    b = table(["x"], [0.5], "b.tsv", labels=["spoof"])
    with pytest.raises(FusionError, match="x: labelled bonafide in a.tsv but spoof in b.tsv"):
        mean_fusion([a, b])


def test_align_names_at_most_ten_differing_ids_or_keeps_the_common_ones():
    a = table([f"u{i}" for i in range(30)], np.full(30, 0.5), "a.tsv")
    b = table([f"u{i}" for i in range(29, -1, -1) if i not in (3, 4)] + [f"v{i}" for i in range(12)], np.full(40, 0.5), "b.tsv")
    with pytest.raises(FusionError) as info:
        align([a, b])
    message = str(info.value)
    assert "u3 (not in b.tsv); u4 (not in b.tsv); v0 (not in a.tsv)" in message
    assert message.count("(not in") == 10 and "and 4 more" in message and "28 are in all of them" in message
    (a2, b2), dropped = align([a, b], allow_missing=True)
    assert dropped == 14 and a2.ids == b2.ids == [f"u{i}" for i in range(30) if i not in (3, 4)]
    with pytest.raises(FusionError, match="no recording is in all of a.tsv, c.tsv"):
        align([a, table(["w"], [0.5], "c.tsv")], allow_missing=True)


def gaussian_systems(n_bona: int, n_spoof: int, seed: int) -> list[ScoreTable]:
    """System a: informative (LLR 3x before the affine warp 10x + 5); b: label-blind noise."""
    rng = np.random.default_rng(seed)
    labels = np.array(["bonafide"] * n_bona + ["spoof"] * n_spoof)
    x = np.where(labels == "bonafide", 1.5, -1.5) + rng.normal(size=labels.size)
    ids = [f"u{i}" for i in range(labels.size)]
    return [ScoreTable.build(ids, 10 * x + 5, labels=labels, source="a.tsv"),
            ScoreTable.build(ids, rng.normal(size=labels.size), labels=labels, source="b.tsv")]


def test_logreg_upweights_the_informative_system_and_calibrates():
    fusion = train_logreg(gaussian_systems(2000, 6000, seed=0))  # 1:3 classes: the prior weighting undoes it
    assert fusion.weights[0] == pytest.approx(0.3, abs=0.03) and fusion.bias == pytest.approx(-1.5, abs=0.2)
    assert abs(fusion.weights[1]) < 0.1 * fusion.weights[0] * 10  # per unit of each input's spread (1 and 10)
    fused = fusion.apply(gaussian_systems(3000, 3000, seed=1))
    bona, spoof = metrics.class_scores(fused)
    assert metrics.cllr(bona, spoof) < metrics.min_cllr(bona, spoof) + 0.02
    raw_bona, raw_spoof = metrics.class_scores(gaussian_systems(3000, 3000, seed=1)[0])
    assert metrics.cllr(raw_bona, raw_spoof) > metrics.min_cllr(bona, spoof) + 0.3  # the input itself is not calibrated
    np.testing.assert_allclose(fused.p_spoof, 1 / (1 + np.exp(fused.scores)))


@pytest.mark.parametrize("bad", [np.inf, -np.inf, 1e308, -2e6])
def test_logreg_refuses_infinite_or_absurd_training_scores(bad):
    a, b = gaussian_systems(20, 20, seed=0)
    b.scores[7] = bad
    with pytest.raises(FusionError, match=rf"^b\.tsv: u7 has score {re.escape(f'{bad:g}')}; training the fusion needs finite scores within \+-1e\+06$"):
        train_logreg([a, b])


def test_logreg_fits_the_same_fusion_whatever_the_scale_of_the_scores():
    a, b = gaussian_systems(500, 500, seed=4)
    fusion = train_logreg([a, b])
    big = ScoreTable.build(a.ids, a.scores * 1000, labels=a.labels, source="a.tsv")  # L-BFGS stalled on these: bias 0
    scaled = train_logreg([big, b])
    np.testing.assert_allclose(scaled.weights * [1000, 1], fusion.weights, rtol=1e-4)
    assert scaled.bias == pytest.approx(fusion.bias, rel=1e-4) and abs(fusion.bias) > 0.5


def test_logreg_that_does_not_converge_is_refused(monkeypatch):
    import scipy.optimize

    real = scipy.optimize.minimize

    def stalled(*args, **kwargs):
        result = real(*args, **kwargs)
        result.success, result.message = False, "ABNORMAL_TERMINATION_IN_LNSRCH"
        return result

    monkeypatch.setattr(scipy.optimize, "minimize", stalled)
    with pytest.raises(FusionError, match=r"^training the fusion on a\.tsv, b\.tsv: the logistic regression did not converge \(ABNORMAL"):
        train_logreg(gaussian_systems(20, 20, seed=0))


def test_logreg_needs_both_classes():
    a, b = gaussian_systems(5, 0, seed=0)
    with pytest.raises(FusionError, match="needs labelled bona fide and spoof rows.*5 bona fide and 0 spoof"):
        train_logreg([a, b])


def test_weights_round_trip_and_refuse_the_wrong_number_of_systems(tmp_path):
    dev = gaussian_systems(200, 200, seed=2)
    dev[0].sha256 = "f" * 64
    fusion = train_logreg(dev)
    path = tmp_path / "w.json"
    fusion.save(path)
    saved = json.loads(path.read_text())
    assert saved["format"] == "adfd-fusion" and saved["systems"] == ["a.tsv", "b.tsv"] and saved["adfd_version"]
    assert saved["trained_on"][0] == {"source": "a.tsv", "sha256": "f" * 64, "rows": 400}
    back = LogRegFusion.load(path)
    evaluation = gaussian_systems(50, 50, seed=3)
    np.testing.assert_array_equal(back.apply(evaluation).scores, fusion.apply(evaluation).scores)
    with pytest.raises(FusionError, match=r"trained on 2 systems \(a.tsv, b.tsv\), but 1 score tables"):
        back.apply(evaluation[:1])


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not a fusion weights file"),
        ('{"format": "something else"}', "not a fusion weights file"),
        ('{"format": "adfd-fusion", "format_version": 99}', "weights format version 99"),
        ('{"format": "adfd-fusion", "format_version": 1, "systems": ["a"]}', "incomplete fusion weights"),
        ('{"format": "adfd-fusion", "format_version": 1, "systems": ["a"], "weights": [1, 2], "bias": 0, "prior": 0.5}',
         "inconsistent fusion weights"),
        ('{"format": "adfd-fusion", "trained_on": ' + "[" * 100_000, r"not a fusion weights file \(nested deeper than 64 levels"),
    ],
)
def test_bad_weights_files_are_named(tmp_path, text, message):
    path = tmp_path / "w.json"
    path.write_text(text)
    with pytest.raises(FusionError, match=f"{path}: {message}"):
        LogRegFusion.load(path)
    with pytest.raises(FusionError, match="no such file"):
        LogRegFusion.load(tmp_path / "missing.json")
