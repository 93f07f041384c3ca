"""Evaluation plots judged by what they show, read off the matplotlib figure: tick labels clear of each
other, the ROC in the DET's units, histograms in counts with both thresholds, a title, narrow score ranges."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from adfd_core import metrics
from adfd_core.plots import evaluation_figure, evaluation_title, plot_evaluation
from adfd_core.scoretable import ScoreTable

RNG = np.random.default_rng(0)
WIDE = (RNG.normal(1.0, 1.0, 300), RNG.normal(-1.0, 1.0, 2700))  # a 9:1 spoof-heavy set
NARROW = (0.99995 + RNG.normal(0, 2e-6, 50), 0.99993 + RNG.normal(0, 2e-6, 50))  # scores over a span of 1e-4


MIN_GAP_PX = 6  # closer labels read as one (the old DET had "0.5", "1" and "2" less than 6 px apart)


def _axes(fig):
    det, roc, hist = fig.axes[:3]
    assert (det.get_title(), hist.get_title()) == ("DET", "scores") and roc.get_title().startswith("ROC")
    return det, roc, hist


def _shown_tick_labels(axis):
    return [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]


@pytest.mark.parametrize("scores", [WIDE, NARROW], ids=["wide", "narrow"])
def test_tick_labels_keep_clear_of_each_other(scores):
    fig = evaluation_figure(*scores, title="t")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in _axes(fig):
        for axis in (ax.xaxis, ax.yaxis):
            labels = _shown_tick_labels(axis)
            assert len(labels) >= 3, (ax.get_title(), axis.axis_name)
            boxes = [label.get_window_extent(renderer).padded(MIN_GAP_PX / 2) for label in labels]
            for (a, box_a), (b, box_b) in itertools.combinations(zip(labels, boxes), 2):
                assert not box_a.overlaps(box_b), (ax.get_title(), a.get_text(), b.get_text())


def test_the_roc_shares_the_det_units_and_its_x_axis():
    det, roc, _ = _axes(evaluation_figure(*WIDE))
    assert det.get_xlabel() == roc.get_xlabel() == "spoof accepted (%)"
    assert det.get_ylabel() == "bona fide rejected (%)" and roc.get_ylabel() == "bona fide accepted (%)"
    assert roc.get_xlim() == (0, 100) and roc.get_ylim() == (0, 100)
    frr, far, _ = metrics.det_curve(*WIDE)
    curve = roc.get_lines()[0]
    np.testing.assert_allclose(curve.get_xdata(), 100 * far)
    np.testing.assert_allclose(curve.get_ydata(), 100 * (1 - frr))
    det_labels = [t.get_text() for t in _shown_tick_labels(det.xaxis)]
    assert "1" in det_labels and "10" in det_labels  # in %, not fractions


def test_histograms_count_recordings_and_mark_both_thresholds():
    _, _, hist = _axes(evaluation_figure(*WIDE, threshold=0.5))
    assert hist.get_ylabel() == "recordings"
    bars = hist.patches
    heights = np.array([bar.get_height() for bar in bars])
    assert heights.sum() == pytest.approx(300 + 2700)  # counts, not densities
    eer_threshold = metrics.eer(*WIDE)[1]
    vertical = {line.get_label().split(" ", 1)[0]: line.get_xdata()[0] for line in hist.get_lines() if line.get_xdata()}
    assert vertical["EER"] == pytest.approx(eer_threshold) and vertical["decision"] == 0.5
    legend = [t.get_text() for t in hist.get_legend().get_texts()]
    assert any(t.startswith("EER threshold") for t in legend) and "decision threshold 0.5" in legend


def test_a_narrow_score_range_gets_distinct_ticks_without_an_offset_and_an_outside_threshold_is_named():
    fig = evaluation_figure(*NARROW, threshold=0.0)
    fig.canvas.draw()
    _, _, hist = _axes(fig)
    labels = [t.get_text() for t in _shown_tick_labels(hist.xaxis)]
    assert len(set(labels)) == len(labels) >= 3
    assert all(label.startswith("0.9999") for label in labels)
    assert hist.xaxis.get_offset_text().get_text() == ""
    low, high = hist.get_xlim()
    assert high - low < 1e-3  # the threshold at 0 does not stretch the axis
    assert any("decision threshold 0 (left of the scores)" == t.get_text() for t in hist.get_legend().get_texts())


def test_the_title_names_the_system_and_the_data(tmp_path):
    table = ScoreTable.build(["a", "b"], [1.0, -1.0], labels=["bonafide", "spoof"], source="runs/eval.tsv",
                             provenance={"models": [{"path": "m.safetensors", "model": "cnn.v1"}]})
    title = evaluation_title(table, key="ASVspoof2019.LA.cm.eval.trl.txt")
    assert title == "cnn.v1 on eval.tsv (labels of ASVspoof2019.LA.cm.eval.trl.txt): 1 bona fide, 1 spoof"
    fig = evaluation_figure(*WIDE, title=title)
    assert fig._suptitle.get_text() == title
    png = tmp_path / "e.png"
    plot_evaluation(*WIDE, png, title=title)
    from PIL import Image

    assert Image.open(png).text["Title"] == title
