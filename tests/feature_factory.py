"""Feature files and corpora for training tests, made fresh in temp folders.

``spectral_corpus`` writes audio whose classes differ in one spectral property: bona fide clips
are voiced, formant-like signals over the full band; spoof clips are the same kind of signal
with everything above 3.5 kHz removed (the band limit of many vocoders). ``random_features``
writes a feature file directly, for tests of the training loop that need no audio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import audio_factory
from adfd_core.corpus import Utterance
from adfd_core.store import FeatureWriter, StoredUtterance


def _lowpass(signal: np.ndarray, cutoff_hz: float, sr: int = 16_000) -> np.ndarray:
    spectrum = np.fft.rfft(signal)
    spectrum[np.fft.rfftfreq(len(signal), 1 / sr) > cutoff_hz] = 0
    return np.fft.irfft(spectrum, n=len(signal)).astype(np.float32)


def spectral_corpus(root: Path, n_per_class: int, seed: int, seconds: float = 2.0) -> Path:
    """bonafide/*.wav and spoof/lowpass/*.wav under ``root``; pitch, vowel and noise vary per clip."""
    rng = np.random.default_rng(seed)
    for i in range(2 * n_per_class):
        formants = (float(rng.uniform(300, 900)), float(rng.uniform(900, 2200)), float(rng.uniform(2200, 3200)))
        clip = audio_factory.vowel(float(rng.uniform(90, 250)), formants, seconds=seconds, seed=int(rng.integers(1 << 30)))
        clip = clip + audio_factory.noise(seconds, amp=float(rng.uniform(0.002, 0.01)), seed=int(rng.integers(1 << 30)))
        if i % 2:
            audio_factory.write(root / "spoof" / "lowpass" / f"s{seed}_{i}.wav", _lowpass(clip, 3500.0))
        else:
            audio_factory.write(root / "bonafide" / f"b{seed}_{i}.wav", clip)
    return root


def random_features(path: Path, n_utts: int, seed: int, shape=(3, 8, 8), shift: float = 1.0,
                    spec_params: dict | None = None, labels: list[str] | None = None) -> Path:
    """A complete feature file with one segment feature ``toy``: 1-3 rows per utterance, Gaussian,
    bona fide rows shifted by ``shift`` (so a model can learn them); every 5th utterance bona fide."""
    rng = np.random.default_rng(seed)
    spec = {"name": "toy", "version": 1, "params": {"sample_rate": 16000, "segment_seconds": 2.0, **(spec_params or {})},
            "row_shape": list(shape)}
    writer = FeatureWriter.open(path, {"toy": spec}, identity=f"random-{seed}", provenance={"test": True})
    for i in range(n_utts):
        label = labels[i] if labels else ("bonafide" if i % 5 == 0 else "spoof")
        rows = rng.standard_normal((int(rng.integers(1, 4)), *shape)).astype(np.float32)
        rows += shift * (label == "bonafide")
        writer.add_rows("toy", rows)
        utt = Utterance(id=f"u{seed}_{i}", path=Path(f"/x/u{i}.wav"), label=label,
                        attack="-" if label == "bonafide" else f"A{i % 3}", group=f"g{seed}_{i}")
        writer.end_utterance(StoredUtterance(utt, content_hash=f"{i:064x}", duration_s=2.0))
    return writer.finish()
