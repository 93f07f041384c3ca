"""Codec compression, speed change, crops and pseudo-labelled crops (adfd_core.augment)."""

from __future__ import annotations

import audio_factory
import numpy as np
import pytest

from adfd_core import augment
from adfd_core.augment import (
    CODECS,
    NATURAL_SPEED,
    SPEEDS,
    PseudoLabeledCrops,
    change_speed,
    compress,
    middle_crop,
    random_crop,
)

SR = 16_000
HIGH_BAND_HZ = 6000.0  # above what aac and mp3 keep at 16 kbps and 16 kHz


@pytest.fixture(scope="module")
def broadband() -> np.ndarray:
    """2 s of five tones spread over the band plus white noise, (32000,) float32."""
    tones = sum(audio_factory.tone(f, 2.0, amp=0.1) for f in (300.0, 1100.0, 2500.0, 5000.0, 7000.0))
    return (tones + audio_factory.noise(2.0, amp=0.02, seed=3)).astype(np.float32)


@pytest.fixture(scope="module")
def compressed(broadband) -> dict[str, np.ndarray]:
    """Every compression class's copy of ``broadband``, by name."""
    return {c.name: c.apply(broadband) for c in CODECS}


def _snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((test - reference) ** 2)))


def _band_energy(x: np.ndarray, low_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    return float(spectrum[np.fft.rfftfreq(len(x), 1 / SR) > low_hz].sum())


def _peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[np.argmax(spectrum)])


def test_class_tables():
    assert len(CODECS) == 10 and CODECS[0].name == "none"
    assert [c.name for c in CODECS[1:4]] == ["aac-16k", "aac-32k", "aac-64k"]
    assert {c.codec for c in CODECS[1:]} == {"aac", "opus", "mp3"}
    assert len(set(CODECS)) == 10
    assert len(SPEEDS) == 16 and SPEEDS[0] == 0.5 and SPEEDS[-1] == 2.0
    assert SPEEDS[NATURAL_SPEED] == 1.0 and NATURAL_SPEED == 5
    assert np.allclose(np.diff(SPEEDS), 0.1)


def test_compression_keeps_length_dtype_and_alignment(broadband, compressed):
    assert compressed["none"] is broadband
    for name, out in compressed.items():
        assert out.shape == broadband.shape and out.dtype == np.float32, name
        # the decoded copy lines up with the input: the cross-correlation peaks at lag 0
        lags = np.arange(-2000, 2001)
        n = len(broadband)
        xcorr = np.fft.irfft(np.fft.rfft(out, 2 * n) * np.conj(np.fft.rfft(broadband, 2 * n)), 2 * n)
        assert lags[np.argmax(xcorr[lags])] == 0, name


def test_every_codec_changes_the_signal_less_as_the_bit_rate_rises(broadband, compressed):
    for codec in ("aac", "opus", "mp3"):
        snrs = [_snr_db(broadband, compressed[f"{codec}-{k}k"]) for k in (16, 32, 64)]
        assert snrs[-1] < 40, f"{codec} at 64 kbps is not lossy: SNR {snrs[-1]:.1f} dB"
        assert snrs[0] + 1 < snrs[1] < snrs[2] - 1, f"{codec}: SNR at 16/32/64 kbps {snrs}"
    assert not np.allclose(compressed["aac-32k"], compressed["mp3-32k"], atol=1e-3)


def test_low_bit_rates_cut_the_high_band(broadband, compressed):
    original = _band_energy(broadband, HIGH_BAND_HZ)
    for codec in ("aac", "mp3"):
        assert _band_energy(compressed[f"{codec}-16k"], HIGH_BAND_HZ) < 0.01 * original, codec
        assert _band_energy(compressed[f"{codec}-64k"], HIGH_BAND_HZ) > 0.5 * original, codec


def test_compress_resamples_for_an_encoder_without_the_rate():
    wave = audio_factory.tone(1000.0, 1.0, sr=22_050, amp=0.5)  # Opus takes 8/12/16/24/48 kHz only
    out = compress(wave, "opus", 64, sample_rate=22_050)
    assert out.shape == wave.shape
    assert abs(_peak_hz(out) * 22_050 / SR - 1000.0) < 5
    assert _snr_db(wave, out) > 10


def test_compress_refuses_unknown_codec_and_reports_a_missing_encoder(monkeypatch, broadband):
    with pytest.raises(ValueError, match="unknown codec"):
        compress(broadband, "vorbis", 32)
    monkeypatch.setitem(augment._ENCODERS, "opus", ("libopus-not-built", "ogg"))
    with pytest.raises(augment.AugmentError, match="libopus-not-built"):
        compress(broadband, "opus", 32)


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.3, 2.0])
def test_change_speed_scales_duration_and_pitch(factor):
    wave = audio_factory.tone(500.0, 1.5)
    out = change_speed(wave, factor)
    assert out.dtype == np.float32
    assert abs(len(out) - len(wave) / factor) <= 1
    assert abs(_peak_hz(out) - 500.0 * factor) < 3


def test_crops_cut_and_tile():
    wave = np.arange(100, dtype=np.float32)
    assert np.array_equal(middle_crop(wave, 10), np.arange(45, 55))
    starts = {int(random_crop(wave, 10, np.random.default_rng(s))[0]) for s in range(50)}
    assert min(starts) >= 0 and max(starts) <= 90 and len(starts) > 20
    crop = random_crop(wave, 10, np.random.default_rng(0))
    assert np.array_equal(crop, np.arange(crop[0], crop[0] + 10))
    short = np.arange(4, dtype=np.float32)
    for tiled in (middle_crop(short, 10), random_crop(short, 10, np.random.default_rng(0))):
        assert np.array_equal(tiled, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1])


def test_pseudo_labeled_crops_labels_and_lengths():
    wave = audio_factory.chirp(seconds=2.0)
    crops = PseudoLabeledCrops(8000)
    rng = np.random.default_rng(0)
    seen_codecs, seen_speeds = set(), set()
    for _ in range(40):
        crop, codec, speed = crops(wave, rng)
        assert crop.shape == (8000,) and crop.dtype == np.float32
        seen_codecs.add(codec)
        seen_speeds.add(speed)
    assert seen_codecs <= set(range(10)) and len(seen_codecs) >= 6
    assert seen_speeds <= set(range(16)) and len(seen_speeds) >= 8


def test_pseudo_labeled_crops_follow_their_draws():
    wave = audio_factory.chirp(seconds=2.0) + audio_factory.noise(2.0, amp=0.01)
    n = 8000
    speed_only = PseudoLabeledCrops(n, compression=False)
    crop, codec, speed = speed_only(wave, np.random.default_rng(7))
    replay = np.random.default_rng(7)
    assert int(replay.integers(16)) == speed and codec == 0
    source = random_crop(wave, speed_only.source_samples(SPEEDS[speed]), replay)
    expected = change_speed(source, SPEEDS[speed])[:n] if speed != NATURAL_SPEED else source
    assert np.array_equal(crop, expected)

    plain, codec, speed = PseudoLabeledCrops(n, compression=False, speed=False)(wave, np.random.default_rng(7))
    assert (codec, speed) == (0, NATURAL_SPEED)
    assert np.array_equal(plain, random_crop(wave, n, np.random.default_rng(7)))

    compressed, codec, speed = PseudoLabeledCrops(n, speed=False)(wave, np.random.default_rng(7))
    replay = np.random.default_rng(7)
    window = random_crop(wave, n, replay)
    assert codec == int(replay.integers(10)) and speed == NATURAL_SPEED
    assert np.array_equal(compressed, CODECS[codec].apply(window))


def test_pseudo_labeled_crops_source_window_gives_the_crop():
    crops = PseudoLabeledCrops(4001)
    for factor in SPEEDS:
        source = crops.source_samples(factor)
        assert abs(source - 4001 * factor) <= 1
        assert len(change_speed(np.zeros(source, dtype=np.float32), factor)) >= 4001


def test_pseudo_labeled_crops_are_deterministic_per_seed():
    wave = audio_factory.vowel(seconds=1.5)
    crops = PseudoLabeledCrops(6000)
    first = [crops(wave, np.random.default_rng(11)) for _ in range(2)]
    assert np.array_equal(first[0][0], first[1][0]) and first[0][1:] == first[1][1:]
    others = [crops(wave, np.random.default_rng(s)) for s in range(5)]
    assert len({(c, s) for _, c, s in others}) > 1
