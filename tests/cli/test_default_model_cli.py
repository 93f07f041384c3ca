"""The bundled default model as a user meets it: offline, calibrated, and right about the example clips."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

from adfd_core.calibration import Calibration
from adfd_core.scoretable import read_scores

from .helpers import adfd

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PACKAGE = Path(__file__).resolve().parents[2] / "adfd_core" / "default_model"


def _offline(tmp_path: Path) -> dict[str, str]:
    """An environment with an empty Hugging Face cache and the hub switched off."""
    return {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_the_example_clips_score_spoof_offline_with_calibrated_llrs(tmp_path):
    done = adfd("score", str(EXAMPLES), "--segments", "--provenance", env=_offline(tmp_path))
    assert done.returncode == 0, done.stderr
    table = read_scores(io.StringIO(done.stdout))
    assert sorted(table.ids) == ["espeak-en-gb", "espeak-en-gb-32k", "espeak-en-us"]  # every one is synthetic
    calibration = Calibration.load(PACKAGE / "calibration.json")
    assert table.decisions == ["spoof"] * 3
    assert all(s < calibration.threshold for s in table.scores)
    for score, p in zip(table.scores, table.p_spoof):  # p_spoof is the posterior of the LLR at the stated prior
        assert p == calibration.p_spoof([score])[0]
    for timeline in table.extra["segments"]:
        assert all(0.0 <= float(cell.rsplit(":", 1)[1]) <= 1.0 for cell in timeline.split(";"))
    assert table.provenance["calibration"]["weights"] == list(calibration.weights)


def test_threshold_moves_the_decision_only(tmp_path):
    done = adfd("score", str(EXAMPLES / "espeak-en-us.wav"), "--threshold", "-1000", env=_offline(tmp_path))
    assert done.returncode == 0, done.stderr
    row = read_scores(io.StringIO(done.stdout))
    assert row.decisions == ["bonafide"] and math.isfinite(row.scores[0]) and row.scores[0] < 0
    bad = adfd("score", str(EXAMPLES / "espeak-en-us.wav"), "--threshold", "nan")
    assert bad.returncode == 2 and "--threshold" in bad.stderr


def test_info_shows_the_operating_point_of_the_card(tmp_path):
    done = adfd("info", "--default-model", "--json", env=_offline(tmp_path))
    assert done.returncode == 0, done.stderr
    card = json.loads(done.stdout)
    assert card["calibration"]["members"] == [m["path"].rsplit("/", 1)[-1] for m in card["members"]]
    assert card["calibration"]["target_false_alarm"] == 0.05
    assert "leave-one-source-out" in card["card"]
