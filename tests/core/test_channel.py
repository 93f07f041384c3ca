"""Channel degradations (adfd_core.channel): each changes the audio as its drawn parameters say, and
the same seed gives the same audio bit for bit."""

from __future__ import annotations

import audio_factory
import numpy as np
import pytest

from adfd_core import channel
from adfd_core.channel import KINDS, ChannelAugment, Recipe, Step, apply_steps, item_rng, recipe

SR = 16_000


@pytest.fixture(scope="module")
def white() -> np.ndarray:
    """1 s of white noise, (16000,) float32."""
    return audio_factory.noise(1.0, amp=0.1, seed=1)


@pytest.fixture(scope="module")
def speechlike() -> np.ndarray:
    """0.6 s of a vowel between 0.3 s of digital silence at each end, (19200,) float32."""
    gap = np.zeros(round(0.3 * SR), dtype=np.float32)
    return np.concatenate([gap, audio_factory.vowel(seconds=0.6, amp=0.5), gap])


def _drawn(kind: str, seed: int, chain: ChannelAugment = ChannelAugment()) -> tuple[Step, np.random.Generator]:
    """A step of ``kind`` drawn from a seeded Generator, and that Generator to apply it with."""
    rng = item_rng(seed)
    return Step(kind, tuple(channel._DRAW[kind](chain, rng).items())), rng


def _energy_above(x: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    return float(spectrum[np.fft.rfftfreq(len(x), 1 / SR) > hz].sum())


def _db(x: float) -> float:
    return 10 * np.log10(x)


@pytest.mark.parametrize("rate", [8000, 11025])
def test_band_limit_removes_what_lies_above_half_the_rate(white, rate):
    out = channel.band_limit(white, rate)
    assert out.shape == white.shape and out.dtype == np.float32
    cut = rate / 2 + 200  # past soxr's transition band
    assert _db(_energy_above(white, cut)) - _db(_energy_above(out, cut)) > 30
    below = rate / 2 - 500
    kept = (np.sum(np.abs(np.fft.rfft(out))[np.fft.rfftfreq(SR, 1 / SR) < below] ** 2)
            / np.sum(np.abs(np.fft.rfft(white))[np.fft.rfftfreq(SR, 1 / SR) < below] ** 2))
    assert 0.9 < kept < 1.1  # the band below is kept


def test_band_limit_above_the_sample_rate_keeps_the_band(white):
    out = channel.band_limit(white, 22050)
    assert _db(_energy_above(white, 7000)) - _db(_energy_above(out, 7000)) < 3


@pytest.mark.parametrize("seed", range(4))
def test_noise_is_added_at_the_drawn_snr(speechlike, seed):
    step, rng = _drawn("noise", seed)
    params = dict(step.params)
    assert 5 <= params["snr_db"] <= 30 and params["colour"] in channel.NOISE_COLOURS
    out = step.apply(speechlike, rng)
    added = out.astype(np.float64) - speechlike
    measured = _db(np.mean(speechlike.astype(np.float64) ** 2) / np.mean(added**2))
    assert abs(measured - params["snr_db"]) < 0.5


def test_noise_colours_tilt_the_spectrum():
    rng = item_rng(0)
    tilt = {}
    for colour in channel.NOISE_COLOURS:
        x = channel.coloured_noise(64_000, colour, rng)
        tilt[colour] = _db(_energy_above(x, 4000) / (np.sum(np.abs(np.fft.rfft(x)) ** 2) - _energy_above(x, 4000)))
    assert tilt["white"] > tilt["pink"] + 3 > tilt["brown"] + 6


def test_reverb_leaves_a_tail_after_the_sound_ends(speechlike):
    step, rng = _drawn("reverb", 3)
    params = dict(step.params)
    assert 0.2 <= params["rt60_s"] <= 0.8
    out = step.apply(speechlike, rng)
    assert out.shape == speechlike.shape
    end = round(0.9 * SR)  # where the vowel stops
    tail = out[end : end + round(0.05 * SR)]
    assert np.all(speechlike[end:] == 0) and _db(np.mean(tail.astype(np.float64) ** 2) / np.mean(out[:end] ** 2)) > -40
    assert np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(speechlike**2)), rel=1e-3)  # level kept


def test_room_response_decays_by_60_db_over_its_rt60():
    rir = channel.room_response(0.4, 6.0, item_rng(0))
    assert rir[0] == 1.0 and len(rir) == round(channel.RIR_DIRECT_SECONDS * SR) + round(0.4 * SR)
    tail = rir[round(channel.RIR_DIRECT_SECONDS * SR) :]
    assert _db(np.sum(tail**2)) == pytest.approx(-6.0, abs=1e-6)  # the direct-to-reverberant ratio
    early, late = tail[: SR // 50], tail[-SR // 50 :]
    assert _db(np.mean(early**2) / np.mean(late**2)) == pytest.approx(60, abs=5)


@pytest.mark.parametrize("seed", range(3))
def test_gain_scales_then_clips_below_the_peak(speechlike, seed):
    step, rng = _drawn("gain", seed)
    params = dict(step.params)
    out = step.apply(speechlike, rng)
    peak = np.max(np.abs(speechlike)) * 10 ** (params["gain_db"] / 20)
    level = peak * 10 ** (-params["clip_db"] / 20)
    assert np.max(np.abs(out)) == pytest.approx(level, rel=1e-5)
    unclipped = np.abs(speechlike) * 10 ** (params["gain_db"] / 20) < level
    assert np.allclose(out[unclipped], speechlike[unclipped] * 10 ** (params["gain_db"] / 20), rtol=1e-5)
    assert np.count_nonzero(np.isclose(np.abs(out), level, rtol=1e-6)) > 0


@pytest.mark.parametrize("seed", range(4))
def test_silence_changes_the_length_by_the_drawn_amount(speechlike, seed):
    step, rng = _drawn("silence", seed)
    params = dict(step.params)
    out = step.apply(speechlike, rng)
    lead, trail = round(params["lead_s"] * SR), round(params["trail_s"] * SR)
    # 0.3 s of silence at each end: a trim of up to 0.5 s takes at most that
    expected = len(speechlike) + max(lead, -round(0.3 * SR)) + max(trail, -round(0.3 * SR))
    assert len(out) == expected
    loud = np.flatnonzero(np.abs(out) > 0.01)
    assert len(loud) and np.max(np.abs(out[: loud[0]]), initial=0) < 10 ** (channel.SILENCE_FLOOR_DBFS / 20) * 6


def test_silence_trims_only_silence():
    vowel = audio_factory.vowel(seconds=0.5)
    out = channel.change_silence(vowel, -0.4, -0.4, item_rng(0))
    assert len(out) >= len(vowel) - 2  # no silence to trim (the vowel starts and ends near zero crossings)
    padded = channel.change_silence(vowel, 0.25, 0.0, item_rng(0))
    assert len(padded) == len(vowel) + 4000 and np.array_equal(padded[4000:], vowel)


@pytest.mark.parametrize("codec", channel.CODECS)
def test_codec_changes_the_audio_and_keeps_its_length(speechlike, codec):
    out = Step("codec", (("codec", codec), ("kbps", 16))).apply(speechlike, item_rng(0))
    assert out.shape == speechlike.shape and out.dtype == np.float32
    assert not np.allclose(out, speechlike, atol=1e-3)
    assert np.corrcoef(out, speechlike)[0, 1] > 0.5  # still the same sound


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_reproducible_from_its_seed(speechlike, kind):
    def run(seed: int) -> np.ndarray:
        step, rng = _drawn(kind, seed)
        return step.apply(speechlike, rng)

    assert np.array_equal(run(7), run(7))
    others = [run(seed) for seed in range(8, 14)]  # a discrete kind may draw the same setting twice, not six times
    assert sum(not np.array_equal(run(7), x) for x in others) >= 3


def test_chain_draws_one_or_two_kinds_with_its_probability(speechlike):
    chain = ChannelAugment(probability=0.5)
    drawn = [chain.draw(item_rng(0, i)) for i in range(400)]
    assert 0.4 < sum(1 for d in drawn if d) / len(drawn) < 0.6
    assert {len(d) for d in drawn} == {0, 1, 2}
    assert all(len({s.kind for s in d}) == len(d) for d in drawn)  # never one kind twice
    assert {s.kind for d in drawn for s in d} == set(KINDS)
    assert all(chain.draw(item_rng(1, i), always=True) for i in range(50))


def test_chain_is_bit_identical_for_the_same_key(speechlike):
    chain = ChannelAugment(probability=1.0)
    a = chain(speechlike, item_rng(0, 3, 5))
    assert np.array_equal(a, chain(speechlike, item_rng(0, 3, 5)))
    assert not np.array_equal(a, chain(speechlike, item_rng(0, 3, 6)))
    assert ChannelAugment(probability=0.0)(speechlike, item_rng(0)) is speechlike


def test_chain_without_a_kind_never_draws_it():
    chain = ChannelAugment(probability=1.0).without("codec")
    assert "codec" not in chain.kinds
    assert all(s.kind != "codec" for i in range(100) for s in chain.draw(item_rng(i)))
    assert ChannelAugment(probability=0.0).draw(item_rng(0)) == ()


def test_describe_is_json_ready():
    import json

    described = ChannelAugment().describe()
    assert json.loads(json.dumps(described)) == described
    assert described["kinds"] == list(KINDS) and described["snr_db"] == [5.0, 30.0]


def test_recipe_depends_on_its_key_only(speechlike):
    chain = ChannelAugment()
    a, b = recipe(chain, 0, "utt1", 1), recipe(chain, 0, "utt1", 1)
    assert a == b and a.steps and str(a) == "+".join(str(s) for s in a.steps)
    assert np.array_equal(a.apply(speechlike), b.apply(speechlike))
    others = {str(recipe(chain, 0, "utt1", k)) for k in range(2, 12)} | {str(recipe(chain, 1, "utt1", 1))}
    assert len(others - {str(a)}) >= 10
    assert isinstance(a, Recipe) and np.array_equal(apply_steps(speechlike, (), item_rng(0)), speechlike)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown"):
        ChannelAugment(kinds=("phone",))
