"""Channel degradations for training: lossy codecs, band-limiting, additive noise, reverberation,
gain with mild clipping, and leading/trailing silence changes.

Applied to both classes alike, they teach a detector that a degraded channel does not mean "fake".
Waves are (samples,) float32 numpy arrays at 16 kHz; nothing here imports torch, so it runs in
decoding and DataLoader worker processes.

A degradation is drawn first (``ChannelAugment.draw``: a tuple of ``Step``, each a kind and its
parameters) and applied second (``apply_steps``), so the parameters are known before the audio is
touched: a featurized copy's metadata names them, and a test checks the audio against them. Every
draw comes from a numpy Generator the caller seeds (``item_rng``), so the same seed gives the same
audio bit for bit, in any worker process and after a resume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from adfd_core.audio import TARGET_SR

KINDS = ("codec", "band", "noise", "reverb", "gain", "silence")
CODECS = ("mp3", "aac", "opus")
CODEC_KBPS = (16, 24, 32, 48, 64)
BAND_RATES_HZ = (8000, 11025, 22050)  # resampled through: 8 and 11.025 kHz cut the band to 4 and 5.5 kHz
NOISE_COLOURS = ("white", "pink", "brown")  # power falling by 0, 3 and 6 dB per octave
SILENCE_FLOOR_DBFS = -70.0  # RMS of the noise an added silence holds (a quiet recording, not digital zero)
SILENCE_THRESHOLD_DB = -40.0  # a sample this far below the peak counts as silence when trimming
RIR_DIRECT_SECONDS = 0.0025  # the reflections of a synthetic room response start this long after the direct path
_APPLY_STREAM = 1  # the Generator a Recipe applies its steps with, beside the one that drew them


@dataclass(frozen=True)
class Step:
    """One degradation: its kind (one of KINDS) and parameters, as (name, value) pairs."""

    kind: str
    params: tuple[tuple[str, Any], ...]

    def __str__(self) -> str:
        """e.g. "noise(colour=pink,snr_db=12.3)"."""
        values = ",".join(f"{k}={round(v, 3) if isinstance(v, float) else v}" for k, v in self.params)
        return f"{self.kind}({values})"

    def apply(self, wave: np.ndarray, rng: np.random.Generator, sample_rate: int = TARGET_SR) -> np.ndarray:
        """(N,) float32 -> (M,) float32 degraded; M == N for every kind but "silence"."""
        return _APPLY[self.kind](np.asarray(wave, dtype=np.float32), rng, sample_rate, **dict(self.params))


@dataclass(frozen=True)
class ChannelAugment:
    """Which degradations, how often and over which ranges; ``describe`` goes into the files it shapes.

    A call degrades a wave with ``probability``: it then applies between 1 and ``max_steps``
    different kinds drawn uniformly from ``kinds``, in a random order.
    """

    kinds: tuple[str, ...] = KINDS
    probability: float = 0.8
    max_steps: int = 2
    codecs: tuple[str, ...] = CODECS
    codec_kbps: tuple[int, ...] = CODEC_KBPS
    band_rates_hz: tuple[int, ...] = BAND_RATES_HZ
    snr_db: tuple[float, float] = (5.0, 30.0)
    noise_colours: tuple[str, ...] = NOISE_COLOURS
    rt60_s: tuple[float, float] = (0.2, 0.8)
    drr_db: tuple[float, float] = (0.0, 12.0)  # direct-to-reverberant energy ratio
    gain_db: tuple[float, float] = (-12.0, 6.0)
    clip_db: tuple[float, float] = (1.0, 6.0)  # clipping level below the peak after the gain
    silence_s: float = 0.5  # the most silence added or trimmed at each end

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"unknown or no degradation kinds {unknown}; choose from {', '.join(KINDS)}")
        if not 0.0 <= self.probability <= 1.0 or self.max_steps < 1:
            raise ValueError(f"probability must be in [0, 1] and max_steps at least 1, got {self.probability}, {self.max_steps}")

    def without(self, kind: str) -> "ChannelAugment":
        """The same chain without degradations of ``kind``."""
        return replace(self, kinds=tuple(k for k in self.kinds if k != kind))

    def describe(self) -> dict[str, Any]:
        """Every setting, as JSON-ready data."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def draw(self, rng: np.random.Generator, always: bool = False) -> tuple[Step, ...]:
        """The steps for one wave: none with probability 1 - ``probability`` (unless ``always``)."""
        if not always and rng.random() >= self.probability:
            return ()
        count = int(rng.integers(1, min(self.max_steps, len(self.kinds)) + 1))
        kinds = [self.kinds[i] for i in rng.permutation(len(self.kinds))[:count]]
        return tuple(Step(kind, tuple(_DRAW[kind](self, rng).items())) for kind in kinds)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator, sample_rate: int = TARGET_SR) -> np.ndarray:
        """(N,) float32 -> its degraded copy (or ``wave`` itself when none was drawn), drawn from ``rng``."""
        return apply_steps(wave, self.draw(rng), rng, sample_rate)


@dataclass(frozen=True)
class Recipe:
    """Steps drawn for one wave and the seed its sample-level randomness (noise, room response) comes from."""

    steps: tuple[Step, ...]
    entropy: tuple[int, ...]

    def __str__(self) -> str:
        return "+".join(str(s) for s in self.steps)

    def apply(self, wave: np.ndarray, sample_rate: int = TARGET_SR) -> np.ndarray:
        return apply_steps(wave, self.steps, np.random.default_rng([*self.entropy, _APPLY_STREAM]), sample_rate)


def recipe(chain: ChannelAugment, *key: int | str) -> Recipe:
    """The degradation of the item ``key`` (ints and strings, e.g. (seed, utterance id, copy)): at
    least one step, the same for the same key."""
    entropy = tuple(_as_int(k) for k in key)
    return Recipe(chain.draw(np.random.default_rng(entropy), always=True), entropy)


def item_rng(*key: int | str) -> np.random.Generator:
    """A Generator for one item, from ints and strings, e.g. (seed, epoch, batch, rank)."""
    return np.random.default_rng([_as_int(k) for k in key])


def _as_int(k: int | str) -> int:
    """An entropy word: an int as it is, a string as the first 8 bytes of its sha256."""
    return int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "little") if isinstance(k, str) else int(k)


def apply_steps(wave: np.ndarray, steps: Sequence[Step], rng: np.random.Generator, sample_rate: int = TARGET_SR) -> np.ndarray:
    """Apply ``steps`` in order; ``wave`` itself when there are none."""
    for step in steps:
        wave = step.apply(wave, rng, sample_rate)
    return wave


# --------------------------------------------------------------------------- the degradations


def band_limit(wave: np.ndarray, rate_hz: int, sample_rate: int = TARGET_SR) -> np.ndarray:
    """(N,) -> (N,): resampled to ``rate_hz`` and back with soxr, so nothing above min(rate_hz, sample_rate) / 2 is left."""
    import soxr

    down = soxr.resample(wave, sample_rate, rate_hz, quality="HQ")
    return _fit(soxr.resample(down, rate_hz, sample_rate, quality="HQ").astype(np.float32), len(wave))


def add_noise(wave: np.ndarray, snr_db: float, colour: str, rng: np.random.Generator) -> np.ndarray:
    """(N,) -> (N,): plus noise of ``colour`` (NOISE_COLOURS) whose power is ``snr_db`` below the wave's
    mean power. A silent wave is returned as it is."""
    power = float(np.mean(np.square(wave, dtype=np.float64)))
    if power == 0.0:
        return wave
    noise = coloured_noise(len(wave), colour, rng)
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / np.mean(noise**2))
    return (wave + noise).astype(np.float32)


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """(n,) float64 Gaussian noise whose power spectrum falls as 1/f**k (k = 0, 1, 2 for white, pink, brown)."""
    white = rng.standard_normal(n)
    k = NOISE_COLOURS.index(colour)
    if k == 0:
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0  # no infinite DC
    return np.fft.irfft(spectrum / freqs ** (k / 2), n)


def room_response(rt60_s: float, drr_db: float, rng: np.random.Generator, sample_rate: int = TARGET_SR) -> np.ndarray:
    """A synthetic room impulse response, (L,) float64: a unit direct path, then Gaussian noise decaying
    by 60 dB in ``rt60_s`` seconds, starting RIR_DIRECT_SECONDS later, with ``drr_db`` more energy in
    the direct path than in the tail. L = the delay plus rt60_s."""
    delay = max(1, round(RIR_DIRECT_SECONDS * sample_rate))
    t = np.arange(round(rt60_s * sample_rate)) / sample_rate
    tail = rng.standard_normal(len(t)) * np.exp(-3 * np.log(10) * t / rt60_s)  # amplitude 1e-3 at rt60_s
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    rir = np.zeros(delay + len(tail))
    rir[0] = 1.0
    rir[delay:] = tail
    return rir


def reverberate(wave: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """(N,) -> (N,): convolved with ``rir`` (its tail past the end cut), scaled back to the wave's RMS."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(wave.astype(np.float64), rir)[: len(wave)]
    rms_in, rms_out = np.sqrt(np.mean(np.square(wave, dtype=np.float64))), np.sqrt(np.mean(wet**2))
    return (wet * (rms_in / rms_out if rms_out > 0 else 1.0)).astype(np.float32)


def gain_clip(wave: np.ndarray, gain_db: float, clip_db: float) -> np.ndarray:
    """(N,) -> (N,): scaled by ``gain_db``, then clipped at ``clip_db`` below the scaled peak."""
    scaled = wave * np.float32(10 ** (gain_db / 20))
    level = np.float32(np.max(np.abs(scaled), initial=0.0) * 10 ** (-clip_db / 20))
    return np.clip(scaled, -level, level)


def change_silence(wave: np.ndarray, lead_s: float, trail_s: float, rng: np.random.Generator,
                   sample_rate: int = TARGET_SR) -> np.ndarray:
    """(N,) -> (N + round(lead_s * sr) + round(trail_s * sr),): a positive amount adds that much quiet
    (SILENCE_FLOOR_DBFS noise) at its end, a negative one trims that much, but only silence (samples
    SILENCE_THRESHOLD_DB below the peak), so the change is smaller where less silence is there."""
    lead, trail = round(lead_s * sample_rate), round(trail_s * sample_rate)
    loud = np.flatnonzero(np.abs(wave) > np.max(np.abs(wave), initial=0.0) * 10 ** (SILENCE_THRESHOLD_DB / 20))
    first, last = (int(loud[0]), len(wave) - 1 - int(loud[-1])) if len(loud) else (0, 0)  # all quiet: nothing is trimmed
    start = min(-lead, first) if lead < 0 else 0
    stop = len(wave) - (min(-trail, last) if trail < 0 else 0)
    floor = 10 ** (SILENCE_FLOOR_DBFS / 20)
    quiet = [floor * rng.standard_normal(max(n, 0)).astype(np.float32) for n in (lead, trail)]
    return np.concatenate([quiet[0], wave[start:stop], quiet[1]]).astype(np.float32)


def _fit(wave: np.ndarray, n: int) -> np.ndarray:
    """``wave`` cut or zero-padded to (n,)."""
    return wave[:n] if len(wave) >= n else np.pad(wave, (0, n - len(wave)))


# --------------------------------------------------------------------------- drawing and applying by kind


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def _choice(rng: np.random.Generator, options: Sequence) -> Any:
    value = options[int(rng.integers(len(options)))]
    return value.item() if isinstance(value, np.generic) else value


_DRAW = {
    "codec": lambda c, rng: {"codec": _choice(rng, c.codecs), "kbps": int(_choice(rng, c.codec_kbps))},
    "band": lambda c, rng: {"rate_hz": int(_choice(rng, c.band_rates_hz))},
    "noise": lambda c, rng: {"colour": _choice(rng, c.noise_colours), "snr_db": _uniform(rng, c.snr_db)},
    "reverb": lambda c, rng: {"rt60_s": _uniform(rng, c.rt60_s), "drr_db": _uniform(rng, c.drr_db)},
    "gain": lambda c, rng: {"gain_db": _uniform(rng, c.gain_db), "clip_db": _uniform(rng, c.clip_db)},
    "silence": lambda c, rng: {"lead_s": _uniform(rng, (-c.silence_s, c.silence_s)),
                               "trail_s": _uniform(rng, (-c.silence_s, c.silence_s))},
}


def _codec(wave: np.ndarray, rng: np.random.Generator, sr: int, codec: str, kbps: int) -> np.ndarray:
    from adfd_core.augment import compress

    return compress(wave, codec, kbps, sr)


_APPLY = {
    "codec": _codec,
    "band": lambda wave, rng, sr, rate_hz: band_limit(wave, rate_hz, sr),
    "noise": lambda wave, rng, sr, colour, snr_db: add_noise(wave, snr_db, colour, rng),
    "reverb": lambda wave, rng, sr, rt60_s, drr_db: reverberate(wave, room_response(rt60_s, drr_db, rng, sr)),
    "gain": lambda wave, rng, sr, gain_db, clip_db: gain_clip(wave, gain_db, clip_db),
    "silence": lambda wave, rng, sr, lead_s, trail_s: change_silence(wave, lead_s, trail_s, rng, sr),
}
