"""Calibration: member scores -> LLR, the operating point, and how score tables use them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from adfd_core.calibration import Calibration, CalibrationError, fit, threshold_for
from adfd_core.corpus import Utterance
from adfd_core.scoring import RecordingScore, to_table


def test_gaussian_scores_map_to_their_true_log_likelihood_ratio():
    # Bona fide scores ~ N(2, 1), spoof ~ N(-1, 1): the true LLR is 3 s - 1.5, whatever the class balance.
    rng = np.random.default_rng(0)
    bona, spoof = rng.normal(2.0, 1.0, 20000), rng.normal(-1.0, 1.0, 5000)
    x = np.concatenate([bona, spoof])[:, None]
    cal = fit(x, np.arange(len(x)) < len(bona), target_false_alarm=0.05)
    assert cal.weights[0] == pytest.approx(3.0, abs=0.1)
    assert cal.bias == pytest.approx(-1.5, abs=0.1)
    # The threshold calls 5 % of the bona fide spoof: the 5th percentile of 3 s - 1.5 for s ~ N(2, 1).
    assert cal.threshold == pytest.approx(3 * (2 - 1.6449) - 1.5, abs=0.15)
    assert np.mean(cal.llr(bona[:, None]) < cal.threshold) == pytest.approx(0.05, abs=0.002)


def test_threshold_allows_at_most_the_target_share_of_false_alarms():
    bona = np.arange(100, dtype=float)  # 0 .. 99
    t = threshold_for(bona, 0.05)
    assert np.sum(bona < t) == 5 and t == 5.0
    assert np.sum(bona < threshold_for(bona, 0.0)) == 0
    assert np.sum(bona < threshold_for(bona, 1.0)) == 100


def test_p_spoof_is_the_posterior_at_the_stated_prior():
    even = Calibration((1.0,), 0.0, threshold=0.0, prior_spoof=0.5)
    assert even.p_spoof(np.array([0.0]))[0] == pytest.approx(0.5)
    assert even.p_spoof(np.array([math.log(3)]))[0] == pytest.approx(0.25)  # 3:1 for bona fide
    rare = Calibration((1.0,), 0.0, threshold=0.0, prior_spoof=0.1)
    assert rare.p_spoof(np.array([0.0]))[0] == pytest.approx(0.1)


def test_a_file_round_trips_and_a_damaged_one_is_refused_by_name(tmp_path):
    cal = Calibration((0.5, 1.5), -0.25, 1.0, 0.5, 0.05, ("a.safetensors", "b.safetensors"), {"pooled_eer": 9.0})
    cal.save(tmp_path / "c.json")
    assert Calibration.load(tmp_path / "c.json") == cal
    (tmp_path / "bad.json").write_text('{"format": "adfd-calibration", "format_version": 1, "weights": [NaN], "bias": 0, '
                                       '"threshold": 0, "prior_spoof": 0.5, "target_false_alarm": 0.05, "members": ["a"]}')
    with pytest.raises(CalibrationError, match="bad.json"):
        Calibration.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(CalibrationError, match="other.json: not an adfd-calibration"):
        Calibration.load(tmp_path / "other.json")


class _Model:
    """What to_table reads of a loaded model."""

    def __init__(self, name: str):
        self.path = Path(name)
        self.sha256 = "0" * 64
        self.info = type("Info", (), {"name": "cnn.v1"})()


def _result(utt_id: str, member_p: list[float], segments: list[list[float]]) -> RecordingScore:
    seg = np.array(segments)
    spans = [(2.0 * k, 2.0 * k + 2, float(q)) for k, q in enumerate(seg.mean(axis=1))]
    return RecordingScore(Utterance(utt_id, Path(f"/x/{utt_id}.wav"), "unknown"), float(np.mean(member_p)), spans,
                          member_p=np.array(member_p), member_segments=seg)


def test_a_calibrated_table_gives_llrs_decides_at_the_threshold_and_calibrates_the_timeline():
    cal = Calibration((1.0, 2.0), 0.5, threshold=-1.0)
    results = [_result("a", [0.5, 0.5], [[0.5, 0.5]]), _result("b", [0.8, 0.6], [[0.9, 0.5], [0.7, 0.7]])]
    models = [_Model("m1.safetensors"), _Model("m2.safetensors")]
    table = to_table(results, models, segments=True, calibration=cal)
    lo = lambda p: math.log((1 - p) / p)  # noqa: E731
    assert table.scores[0] == pytest.approx(0.5)
    assert table.scores[1] == pytest.approx(lo(0.8) + 2 * lo(0.6) + 0.5)   # -1.0 - 0.81 + 0.5 = -1.70
    assert table.decisions == ["bonafide", "spoof"]
    assert table.p_spoof[0] == pytest.approx(1 / (1 + math.exp(0.5)))
    first, second = table.extra["segments"][1].split(";")
    assert first == f"0.00-2.00:{1 / (1 + math.exp(lo(0.9) + 2 * lo(0.5) + 0.5)):.4f}"
    assert second.startswith("2.00-4.00:")
    assert to_table(results, models, calibration=cal, threshold=-3.0).decisions == ["bonafide", "bonafide"]
    plain = to_table(results, models)
    assert plain.scores[1] == pytest.approx(lo(0.7)) and plain.decisions == ["bonafide", "spoof"]


def _bundle_folder(tmp_path: Path, files: list[str], members: tuple[str, ...]) -> Path:
    for name in files:
        (tmp_path / name).write_bytes(b"")
    Calibration((1.0,) * len(members), 0.0, threshold=0.0, members=members).save(tmp_path / "calibration.json")
    return tmp_path


def test_default_model_members_come_in_the_order_the_calibration_weighs_them(tmp_path, monkeypatch):
    from adfd_core import scoring

    folder = _bundle_folder(tmp_path, ["a-cnn.safetensors", "b-whisper.safetensors"], ("b-whisper.safetensors", "a-cnn.safetensors"))
    monkeypatch.setattr(scoring.resources, "files", lambda package: folder)
    assert [p.name for p in scoring.default_model_paths()] == ["b-whisper.safetensors", "a-cnn.safetensors"]


def test_default_model_refuses_files_its_calibration_does_not_name(tmp_path, monkeypatch):
    from adfd_core import scoring

    folder = _bundle_folder(tmp_path, ["a-cnn.safetensors", "stray.safetensors"], ("a-cnn.safetensors",))
    monkeypatch.setattr(scoring.resources, "files", lambda package: folder)
    with pytest.raises(scoring.ScoringError, match="stray.safetensors"):
        scoring.default_model_paths()
