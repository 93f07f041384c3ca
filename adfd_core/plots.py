"""Evaluation plots: DET curve (normal-deviate axes), ROC and per-class score histograms in one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adfd_core.errors import AdfdError
from adfd_core.metrics import auc, det_curve, eer

_DET_TICKS = np.array([0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99])
_DET_LIMITS = (0.0005, 0.995)  # rates plotted on the probit scale are clipped here (0 and 1 are infinite)


class PlotError(AdfdError):
    """A plot that could not be written."""


def plot_evaluation(bonafide: np.ndarray, spoof: np.ndarray, path: str | Path, title: str = "") -> None:
    """Write a PNG with the DET curve, the ROC and histograms of the bona fide and spoof scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frr, far, _ = det_curve(bonafide, spoof)
    rate, threshold = eer(bonafide, spoof)
    fig, (det, roc, hist) = plt.subplots(1, 3, figsize=(15, 4.8))
    _det_axes(det, frr, far, rate)
    roc.plot(far, 1 - frr, color="C0")
    roc.plot([0, 1], [0, 1], color="0.7", linestyle=":")
    roc.set(xlabel="spoof accepted (false-alarm rate)", ylabel="bona fide accepted", xlim=(0, 1), ylim=(0, 1),
            title=f"ROC, AUC {auc(bonafide, spoof):.4f}")
    both = np.concatenate([bonafide, spoof])
    bins = np.histogram_bin_edges(both[np.isfinite(both)], bins=60)
    hist.hist(bonafide, bins=bins, alpha=0.6, density=True, label=f"bona fide ({bonafide.size})", color="C2")
    hist.hist(spoof, bins=bins, alpha=0.6, density=True, label=f"spoof ({spoof.size})", color="C3")
    hist.axvline(threshold, color="k", linestyle="--", linewidth=1, label=f"EER threshold {threshold:.3g}")
    hist.set(xlabel="score (higher = more bona fide)", ylabel="density", title="scores")
    hist.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120, format="png")
    except OSError as exc:
        raise PlotError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)


def _det_axes(ax, frr: np.ndarray, far: np.ndarray, rate: float) -> None:
    """The DET curve on normal-deviate (probit) axes, labelled in %."""
    from scipy.stats import norm

    def probit(p):
        return norm.ppf(np.clip(p, *_DET_LIMITS))

    ax.plot(probit(far), probit(frr), color="C0")
    ax.plot(probit(rate), probit(rate), "o", color="C1", label=f"EER {100 * rate:.2f} %")
    ticks = probit(_DET_TICKS)
    labels = [f"{100 * t:g}" for t in _DET_TICKS]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set(xlim=probit(_DET_LIMITS), ylim=probit(_DET_LIMITS), xlabel="spoof accepted (%)",
           ylabel="bona fide rejected (%)", title="DET")
    ax.grid(True, color="0.9")
    ax.legend(fontsize="small")
