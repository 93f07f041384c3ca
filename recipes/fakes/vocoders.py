"""Copy synthesis through signal-processing vocoders: analyse a real clip, resynthesize it.

Every vocoder takes a 16 kHz mono wave (samples,) float64 and a seed and returns a wave
(samples',) at 16 kHz, about as long. Parameters sit in VOCODERS so the output README can list them.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

SR = 16_000


@contextlib.contextmanager
def _quiet_pkg_resources() -> Iterator[None]:
    """pyworld 0.3.5 and pysptk 1.0.1 import pkg_resources (hence setuptools<81), which warns on import."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        yield


@dataclass(frozen=True)
class Vocoder:
    """One copy-synthesis system: how to run it and how the manifest names it."""

    key: str
    family: str
    system: str
    run: Callable[[np.ndarray, int], np.ndarray]
    params: dict = field(default_factory=dict)
    requires: tuple[str, ...] = ()


WORLD = {"f0": "dio+stonemask", "f0_floor_hz": 60.0, "f0_ceil_hz": 600.0, "frame_period_ms": 5.0}


def world(x: np.ndarray, seed: int) -> np.ndarray:
    """WORLD: F0 (DIO refined by StoneMask), CheapTrick envelope, D4C aperiodicity, synthesis."""
    with _quiet_pkg_resources():
        import pyworld

    x = np.ascontiguousarray(x, dtype=np.float64)
    period = WORLD["frame_period_ms"]
    f0, t = pyworld.dio(x, SR, f0_floor=WORLD["f0_floor_hz"], f0_ceil=WORLD["f0_ceil_hz"], frame_period=period)
    f0 = pyworld.stonemask(x, f0, t, SR)
    sp = pyworld.cheaptrick(x, f0, t, SR)
    ap = pyworld.d4c(x, f0, t, SR)
    return pyworld.synthesize(f0, sp, ap, SR, frame_period=period)


GL = {"n_fft": 1024, "hop": 256, "window": "hann", "n_iter": 32, "momentum": 0.99, "init": "random"}
GL_MEL = {**GL, "n_mels": 80, "fmin_hz": 0, "fmax_hz": 8000, "mel_inverse": "pseudo-inverse, clipped at 0"}


def griffinlim(x: np.ndarray, seed: int) -> np.ndarray:
    """Griffin-Lim from the magnitude STFT: the phase is thrown away and re-estimated."""
    import librosa

    mag = np.abs(librosa.stft(x, n_fft=GL["n_fft"], hop_length=GL["hop"], window=GL["window"]))
    return _gl(mag, len(x), seed)


def griffinlim_mel(x: np.ndarray, seed: int) -> np.ndarray:
    """Griffin-Lim from an 80-band mel magnitude spectrogram, mapped back to linear bins first.

    The mel-to-linear step is the pseudo-inverse of the filterbank, as in early TTS front-ends:
    it smears the fine harmonic structure the mel bands never held.
    """
    import librosa

    mag = np.abs(librosa.stft(x, n_fft=GL["n_fft"], hop_length=GL["hop"], window=GL["window"]))
    basis = librosa.filters.mel(sr=SR, n_fft=GL["n_fft"], n_mels=GL_MEL["n_mels"],
                                fmin=GL_MEL["fmin_hz"], fmax=GL_MEL["fmax_hz"])
    mel = basis @ mag
    return _gl(np.maximum(np.linalg.pinv(basis) @ mel, 0.0), len(x), seed)


def _gl(mag: np.ndarray, length: int, seed: int) -> np.ndarray:
    import librosa

    return librosa.griffinlim(mag, n_iter=GL["n_iter"], hop_length=GL["hop"], n_fft=GL["n_fft"], window=GL["window"],
                              momentum=GL["momentum"], init=GL["init"], random_state=seed, length=length)


SPTK = {"frame": 1024, "hop": 80, "window": "blackman", "f0": "SWIPE' 60-400 Hz, threshold 0.3",
        "excitation": "pulse train (voiced) / Gaussian noise (unvoiced)"}
LPC = {**SPTK, "order": 20}
MLSA = {**SPTK, "order": 24, "alpha": 0.41, "pade": 5, "mel_cepstrum": "sp2mc of the frame periodogram",
        "floor_db": 100}


def _pysptk():
    """Import pysptk and its synthesis filters."""
    with _quiet_pkg_resources():
        import pysptk
        import pysptk.synthesis

    return pysptk


def _frames_and_excitation(x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windowed frames (frames, frame) and the pulse/noise excitation (samples,) from SWIPE' F0."""
    import librosa

    sptk = _pysptk()
    hop, n = SPTK["hop"], SPTK["frame"]
    frames = librosa.util.frame(np.pad(x, (n // 2, n // 2)), frame_length=n, hop_length=hop).T.copy()
    frames *= sptk.blackman(n)
    pitch = sptk.swipe(x, fs=SR, hopsize=hop, min=60, max=400, threshold=0.3, otype="pitch")
    pitch = np.pad(pitch, (0, max(0, len(frames) - len(pitch))), mode="edge")[: len(frames)].astype(np.float64)
    return frames, sptk.excite(pitch, hop, gaussian=True, seed=seed)


def lpc(x: np.ndarray, seed: int) -> np.ndarray:
    """LPC vocoder: order-20 all-pole envelope per frame driving an all-pole filter with pulse/noise."""
    sptk = _pysptk()
    frames, excitation = _frames_and_excitation(x, seed)
    # A trace of dither keeps the autocorrelation solvable on digitally silent frames.
    coef = sptk.lpc(frames + 1e-8 * np.random.default_rng(seed).standard_normal(frames.shape), order=LPC["order"])
    coef[:, 0] = np.log(np.maximum(coef[:, 0], 1e-10))
    synth = sptk.synthesis.Synthesizer(sptk.synthesis.AllPoleDF(order=LPC["order"]), LPC["hop"])
    return synth.synthesis(excitation, coef)[: len(x)]


def mlsa(x: np.ndarray, seed: int) -> np.ndarray:
    """MLSA vocoder: order-24 mel-cepstrum per frame driving an MLSA filter with pulse/noise.

    The mel-cepstrum comes from each frame's periodogram (sp2mc), six times faster here than
    the iterative estimate (mcep) and as close to the input in log-mel distance.
    """
    sptk = _pysptk()
    frames, excitation = _frames_and_excitation(x, seed)
    power = np.square(np.abs(np.fft.rfft(frames)))
    # A floor 100 dB below the clip's loudest bin: without it, near-silent frames give mel-cepstra
    # extreme enough to make the MLSA filter unstable (one 8 kHz-sourced train-set clip of 100 did).
    power = np.maximum(power, 10 ** (-MLSA["floor_db"] / 10) * power.max()) + 1e-20
    mc = sptk.sp2mc(power, MLSA["order"], MLSA["alpha"])
    b = sptk.mc2b(mc, MLSA["alpha"])
    synth = sptk.synthesis.Synthesizer(sptk.synthesis.MLSADF(order=MLSA["order"], alpha=MLSA["alpha"], pd=MLSA["pade"]),
                                       MLSA["hop"])
    return synth.synthesis(excitation, b)[: len(x)]


VOCODERS = {
    v.key: v
    for v in (
        Vocoder("world", "world-vocoder", "WORLD copy synthesis (DIO+StoneMask, CheapTrick, D4C)", world, WORLD, ("pyworld",)),
        Vocoder("griffinlim", "griffinlim", "Griffin-Lim copy synthesis (linear STFT, 32 iterations)", griffinlim, GL),
        Vocoder("griffinlim-mel", "griffinlim", "Griffin-Lim copy synthesis (80-band mel, 32 iterations)", griffinlim_mel,
                GL_MEL),
        Vocoder("lpc", "lpc-vocoder", "LPC copy synthesis (order 20, pulse/noise excitation)", lpc, LPC, ("pysptk",)),
        Vocoder("mlsa", "mlsa-vocoder", "MLSA copy synthesis (mel-cepstrum order 24, pulse/noise excitation)", mlsa, MLSA,
                ("pysptk",)),
    )
}
