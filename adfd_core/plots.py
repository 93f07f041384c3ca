"""Evaluation plots: DET curve (normal-deviate axes), ROC and per-class score histograms in one PNG.

The DET and the ROC share their units (% of recordings) and their x axis (spoof accepted); the
histograms count recordings and mark the EER threshold and the decision threshold. Tick labels that
would overlap are thinned after layout, and score ticks carry as many decimals as their spacing needs,
so a narrow range of scores (say 0.99990 to 0.99999) reads without an offset.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adfd_core.errors import AdfdError
from adfd_core.metrics import auc, class_scores, det_curve, eer

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from adfd_core.scoretable import ScoreTable

# Candidate DET ticks (fractions); those whose labels would collide at the plotted size are dropped.
_DET_TICKS = (0.001, 0.002, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99)
_DET_LIMITS = (0.0005, 0.995)  # rates plotted on the probit scale are clipped here (0 and 1 are infinite)
_DPI = 120
_SCORE_TICKS = 6  # at most this many ticks on a score axis
_TICK_GAP_PX = 8.0  # least space between two tick labels, in pixels at the saved resolution


class PlotError(AdfdError):
    """A plot that could not be written."""


def evaluation_figure(bonafide: np.ndarray, spoof: np.ndarray, threshold: float = 0.0, title: str = "") -> Figure:
    """The DET, the ROC and the score histograms of bona fide and spoof scores, side by side (not yet saved).

    ``threshold`` is the decision threshold (spoof where score < threshold), marked on the histograms
    beside the EER threshold.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frr, far, _ = det_curve(bonafide, spoof)
    rate, eer_threshold = eer(bonafide, spoof)
    fig = Figure(figsize=(15, 5.2), dpi=_DPI)
    FigureCanvasAgg(fig)
    det, roc, hist = fig.subplots(1, 3)
    _det_axes(det, frr, far, rate)
    _roc_axes(roc, frr, far, rate, auc(bonafide, spoof))
    _histogram_axes(hist, np.asarray(bonafide, dtype=np.float64), np.asarray(spoof, dtype=np.float64),
                    eer_threshold, threshold)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    for ax in (det, roc, hist):
        _thin_tick_labels(ax)
    return fig


def plot_evaluation(bonafide: np.ndarray, spoof: np.ndarray, path: str | Path, title: str = "", threshold: float = 0.0) -> None:
    """Write ``evaluation_figure`` as a PNG; PlotError naming the file if it cannot be written."""
    fig = evaluation_figure(bonafide, spoof, threshold, title)
    try:
        fig.savefig(path, dpi=_DPI, format="png", metadata={"Title": title})
    except OSError as exc:
        raise PlotError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None


def evaluation_title(table: ScoreTable, key: str | Path | None = None) -> str:
    """"SYSTEM on DATA": the models (or fused tables) that made ``table`` as its provenance names them, else
    its file name; the labels' source and the class counts."""
    bonafide, spoof = class_scores(table)
    system, data = _system(table.provenance), Path(table.source).name
    labels = f"labels of {Path(key).name}" if key is not None else "its own labels"
    return f"{system + ' on ' if system else ''}{data} ({labels}): {bonafide.size} bona fide, {spoof.size} spoof"


def _system(provenance: dict[str, Any]) -> str:
    """The model names (``models``) or fused inputs (``inputs``) a table's provenance lists, joined by +."""
    for name in ("models", "inputs"):
        if name in provenance:
            try:
                return " + ".join(str(i.get("model") or Path(str(i.get("source") or i.get("path"))).name)
                                  for i in provenance[name])
            except (AttributeError, TypeError):
                return ""
    return ""


def _probit(p):
    from scipy.stats import norm

    return norm.ppf(np.clip(p, *_DET_LIMITS))


def _det_axes(ax: Axes, frr: np.ndarray, far: np.ndarray, rate: float) -> None:
    """The DET curve on normal-deviate (probit) axes, labelled in %."""
    ax.plot(_probit(far), _probit(frr), color="C0")
    ax.plot(_probit(rate), _probit(rate), "o", color="C1", label=f"EER {100 * rate:.2f} %")
    ticks = _probit(np.array(_DET_TICKS))
    labels = [f"{100 * t:g}" for t in _DET_TICKS]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set(xlim=_probit(_DET_LIMITS), ylim=_probit(_DET_LIMITS), xlabel="spoof accepted (%)",
           ylabel="bona fide rejected (%)", title="DET")
    ax.grid(True, color="0.9")
    ax.legend(fontsize="small")


def _roc_axes(ax: Axes, frr: np.ndarray, far: np.ndarray, rate: float, area: float) -> None:
    """The ROC in the DET's units: spoof accepted (%) against bona fide accepted (%)."""
    ax.plot(100 * far, 100 * (1 - frr), color="C0")
    ax.plot([0, 100], [0, 100], color="0.7", linestyle=":")
    ax.plot(100 * rate, 100 * (1 - rate), "o", color="C1", label=f"EER {100 * rate:.2f} %")
    ax.set(xlabel="spoof accepted (%)", ylabel="bona fide accepted (%)", xlim=(0, 100), ylim=(0, 100),
           title=f"ROC, AUC {area:.4f}")
    ax.grid(True, color="0.9")
    ax.legend(fontsize="small", loc="lower right")


def _histogram_axes(ax: Axes, bonafide: np.ndarray, spoof: np.ndarray, eer_threshold: float, threshold: float) -> None:
    """Counts of each class's scores in shared bins, with the EER and the decision thresholds marked."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    both = np.concatenate([bonafide, spoof])
    finite = both[np.isfinite(both)]
    bins = np.histogram_bin_edges(finite, bins=60)
    ax.hist(bonafide, bins=bins, alpha=0.6, label=f"bona fide ({bonafide.size})", color="C2")
    ax.hist(spoof, bins=bins, alpha=0.6, label=f"spoof ({spoof.size})", color="C3")
    low, high = bins[0], bins[-1]
    ax.set_xlim(low, high)
    locator = MaxNLocator(nbins=_SCORE_TICKS - 1)
    ticks = [t for t in locator.tick_values(low, high) if low <= t <= high]
    decimals = _decimals(np.diff(ticks).min() if len(ticks) > 1 else high - low)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:.{decimals}f}"))
    marks = ((eer_threshold, "EER threshold", {"color": "k", "linestyle": "--"}),
             (threshold, "decision threshold", {"color": "C0", "linestyle": "-"}))
    for value, name, style in marks:
        text = f"{name} {_number(value, decimals + 3)}"
        if low <= value <= high:
            ax.axvline(value, linewidth=1.2, label=text, **style)
        else:  # drawn, it would stretch the axis until the scores are a sliver; named instead
            ax.plot([], [], linewidth=1.2, label=f"{text} ({'left' if value < low else 'right'} of the scores)", **style)
    ax.set(xlabel="score (higher = more bona fide)", ylabel="recordings", title="scores")
    ax.legend(fontsize="small")


def _decimals(step: float) -> int:
    """Decimals that tell apart ticks ``step`` apart (0 for steps of 1 and more)."""
    if not math.isfinite(step) or step <= 0:
        return 3
    return max(0, -math.floor(math.log10(step) + 1e-9))


def _number(value: float, decimals: int) -> str:
    """``value`` with at most ``decimals`` decimals, trailing zeros dropped."""
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _thin_tick_labels(ax: Axes) -> None:
    """Keep only the ticks whose labels clear the label before them (after layout, so sizes are final)."""
    renderer = ax.figure.canvas.get_renderer()
    for axis in (ax.xaxis, ax.yaxis):
        low, high = sorted(axis.get_view_interval())
        kept, last = [], None
        for tick in axis.get_major_ticks():
            label, loc = tick.label1, tick.get_loc()
            if not (low <= loc <= high and label.get_visible() and label.get_text()):
                continue
            box = label.get_window_extent(renderer).padded(_TICK_GAP_PX / 2)
            if last is None or not box.overlaps(last):
                kept.append((loc, label.get_text()))
                last = box
        axis.set_ticks([loc for loc, _ in kept], [text for _, text in kept])
