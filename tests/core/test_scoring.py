"""Scoring: model files -> per-recording p_spoof, checked against the model and front-end run by hand.

Eq. 1: a recording's p_spoof is the mean over its segments; eq. 2: models are fused by the mean of
their p_spoof. Batching, streaming long files and reading a feature file must not change a score.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import audio_factory
from adfd_core import audio, pipeline, prefetch
from adfd_core.corpus import Utterance
from adfd_core.featurize import FeaturizeOptions, featurize
from adfd_core.frontends import from_spec
from adfd_core.modelfile import load_model
from adfd_core.scoring import RecordingScore, ScoringError, load_models, score_audio, score_features, to_table
from model_factory import tiny_model

CPU = torch.device("cpu")
SR = audio.TARGET_SR


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Utterance]:
    """Five recordings: shorter than a segment, exactly two segments, with a tail, at 44.1 kHz, as MP3."""
    root = tmp_path_factory.mktemp("clips")
    f = audio_factory
    paths = [
        f.write(root / "short.wav", f.noise(1.2, amp=0.3, seed=1)),
        f.write(root / "two.wav", f.vowel(140, seconds=4.0, seed=2)),
        f.write(root / "tail.flac", f.chirp(200, 5000, seconds=3.3) + f.noise(3.3, amp=0.02, seed=3)),
        f.write(root / "cd.wav", f.tone(300, 2.7, sr=44_100), sr=44_100),
        f.encode(root / "lossy.mp3", f.vowel(220, seconds=2.2, seed=4)),
    ]
    return [Utterance(id=p.stem, path=p, label="spoof" if i % 2 else "bonafide") for i, p in enumerate(paths)]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "stft": tiny_model(root / "stft.safetensors", "stft-lf", seed=1),
        "stft2": tiny_model(root / "stft2.safetensors", "stft-lf", seed=3),
        "cqt": tiny_model(root / "cqt.safetensors", "cqt", seed=2),
        "stft1s": tiny_model(root / "stft1s.safetensors", "stft-lf", seed=4, segment_seconds=1.7),
    }


def _by_hand(model_path: Path, wave: np.ndarray) -> np.ndarray:
    """Each segment's softmax probability of spoof (class 0), with the front-end and model run directly."""
    module, info = load_model(model_path)
    fe = from_spec(info.frontend).eval()
    segments = np.stack(list(audio.iter_segments([wave], fe.segment_samples)))
    with torch.inference_mode():
        return module(fe(torch.from_numpy(segments))).softmax(dim=1)[:, 0].numpy()


def _close(a, b, atol: float) -> None:
    """Two timelines (or lists of spans) equal within ``atol``, of the same length."""
    np.testing.assert_allclose(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64), rtol=0, atol=atol)


def _score(utts, model_paths, **kw) -> list[RecordingScore]:
    return score_audio(utts, load_models(model_paths, CPU), CPU, **kw)


# --------------------------------------------------------------------------- the timeline's spans


def test_segment_spans_follow_iter_segments():
    n = 10
    assert audio.segment_spans(7, n) == [(0, 7)]  # shorter than a segment: one segment spanning it all
    assert audio.segment_spans(10, n) == [(0, 10)]
    assert audio.segment_spans(30, n) == [(0, 10), (10, 20), (20, 30)]  # an exact multiple: no tail
    assert audio.segment_spans(25, n) == [(0, 10), (10, 20), (15, 25)]  # the tail is the last n samples
    for length in (1, 9, 10, 11, 19, 20, 21, 47):
        signal = np.arange(length, dtype=np.float32)
        segments = list(audio.iter_segments([signal], n))
        spans = audio.segment_spans(length, n)
        assert len(spans) == len(segments) == audio.segment_count(length, n)
        if length >= n:
            for (a, b), segment in zip(spans, segments):
                np.testing.assert_array_equal(segment, signal[a:b])


# --------------------------------------------------------------------------- eq. 1 and eq. 2


def test_p_spoof_is_the_mean_of_the_segment_probabilities(clips, models):
    results = _score(clips, [models["stft"]])
    assert [r.utt.id for r in results] == [u.id for u in clips]
    for utt, r in zip(clips, results):
        wave = audio.load(utt.path)
        expected = _by_hand(models["stft"], wave)
        assert r.error is None
        assert r.p_spoof == pytest.approx(float(expected.mean()), abs=1e-6)
        assert [q for _, _, q in r.segments] == pytest.approx(expected.tolist(), abs=1e-6)
        spans = audio.segment_spans(len(wave), 2 * SR)
        _close([(a, b) for a, b, _ in r.segments], [(a / SR, b / SR) for a, b in spans], 1e-9)
        assert np.mean([q for _, _, q in r.segments]) == pytest.approx(r.p_spoof, abs=1e-6)
    assert np.ptp([r.p_spoof for r in results]) > 0.01  # the recordings are told apart: the checks above mean something


def test_two_models_are_fused_by_the_mean_of_their_probabilities(clips, models):
    utts = clips[:3]
    single = {k: _score(utts, [models[k]]) for k in ("stft", "cqt", "stft2")}
    fused = _score(utts, [models["stft"], models["cqt"]])
    for i, r in enumerate(fused):
        a, b = single["stft"][i], single["cqt"][i]
        assert abs(a.p_spoof - b.p_spoof) > 1e-3  # two different models, two front-ends
        assert r.p_spoof == pytest.approx((a.p_spoof + b.p_spoof) / 2, abs=1e-6)
        # models cut into segments of the same length share the timeline, whatever their front-ends: their mean
        _close(r.segments, [(x0, x1, (x[2] + y[2]) / 2) for (x0, x1, _), x, y in zip(a.segments, a.segments, b.segments)], 1e-6)
        np.testing.assert_allclose(r.member_p, [a.p_spoof, b.p_spoof], atol=1e-6)
    for r, a, c in zip(_score(utts, [models["stft"], models["stft2"]]), single["stft"], single["stft2"]):
        assert [q for *_, q in r.segments] == pytest.approx([(x[2] + y[2]) / 2 for x, y in zip(a.segments, c.segments)], abs=1e-6)
        assert r.p_spoof == pytest.approx((a.p_spoof + c.p_spoof) / 2, abs=1e-6)
    # models that cut a recording into different numbers of segments weigh equally: a mean of means
    two = clips[1]  # 4 s: two 2-s segments, three 1.7-s ones
    a, c = _score([two], [models["stft"]])[0], _score([two], [models["stft1s"]])[0]
    assert (len(a.segments), len(c.segments)) == (2, 3)
    assert _score([two], [models["stft"], models["stft1s"]])[0].p_spoof == pytest.approx((a.p_spoof + c.p_spoof) / 2, abs=1e-6)


def test_batching_across_files_changes_no_score(clips, models):
    paths = [models["stft"], models["stft1s"]]
    one_by_one = _score(clips, paths, batch_size=1)
    batched = _score(clips, paths, batch_size=64)
    for a, b in zip(one_by_one, batched):
        assert a.utt.id == b.utt.id
        assert a.p_spoof == pytest.approx(b.p_spoof, abs=1e-5)
        assert [q for *_, q in a.segments] == pytest.approx([q for *_, q in b.segments], abs=1e-5)


def test_failures_keep_their_place_and_say_why(clips, tmp_path, models):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio\n" * 10)
    utts = [clips[0], Utterance(id="notes", path=bad, label="unknown"), clips[1]]
    results = _score(utts, [models["stft"]])
    assert [r.utt.id for r in results] == ["short", "notes", "two"]
    assert results[1].error and "not a decodable audio file" in results[1].error
    assert math.isnan(results[1].p_spoof) and results[1].segments == []
    assert results[0].error is None and results[2].error is None


# --------------------------------------------------------------------------- feature files


def test_scoring_a_feature_file_equals_scoring_the_audio(clips, models, tmp_path):
    feats = tmp_path / "f.h5"
    featurize(clips, feats, FeaturizeOptions(features=("stft-lf", "cqt"), device="cpu"))
    paths = [models["stft"], models["cqt"]]
    loaded = load_models(paths, CPU)
    from_audio = score_audio(clips, loaded, CPU)
    from_rows = score_features(feats, loaded, CPU, batch_size=3)  # batches that split recordings
    assert [r.utt.id for r in from_rows] == [u.id for u in clips]
    assert [r.utt.label for r in from_rows] == [u.label for u in clips]
    for a, b in zip(from_audio, from_rows):
        assert b.p_spoof == pytest.approx(a.p_spoof, abs=1e-5)
        _close(b.segments, a.segments, 1e-5)


def test_a_feature_file_keeps_its_failed_inputs_and_the_inputs_hash(clips, models, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio\n" * 10)
    feats = tmp_path / "f.h5"
    featurize([clips[0], Utterance(id="notes", path=bad, label="spoof")], feats, FeaturizeOptions(("stft-lf",), device="cpu"))
    loaded = load_models([models["stft"]], CPU)
    results = score_features(feats, loaded, CPU)
    assert [r.utt.id for r in results] == ["short", "notes"]
    assert results[1].error and math.isnan(results[1].p_spoof) and results[0].error is None
    made = to_table(results, loaded).provenance
    other = to_table(score_audio([clips[1]], loaded, CPU), loaded).provenance
    assert len(made["inputs_sha256"]) == 64 and made["inputs_sha256"] != other["inputs_sha256"]


def test_a_feature_file_without_the_models_front_end_is_refused(clips, models, tmp_path):
    feats = tmp_path / "f.h5"
    featurize(clips[:1], feats, FeaturizeOptions(features=("stft-lf",), device="cpu"))
    with pytest.raises(ScoringError, match=r"f\.h5.*cqt"):
        score_features(feats, load_models([models["cqt"]], CPU), CPU)
    # same front-end name, other parameters (1.7-s segments): not the same rows either
    with pytest.raises(ScoringError, match=r"stft-lf with its parameters"):
        score_features(feats, load_models([models["stft1s"]], CPU), CPU)


def test_rows_that_give_no_finite_score_are_failures_of_their_recording(clips, models, tmp_path):
    import h5py

    feats = tmp_path / "f.h5"
    featurize(clips[:4], feats, FeaturizeOptions(features=("stft-lf",), device="cpu"))
    loaded = load_models([models["stft"]], CPU)
    before = score_features(feats, loaded, CPU)
    with h5py.File(feats, "r+") as h5:
        group = h5["features/stft-lf"]
        group["data"][int(group["start"][1])] = np.nan  # one NaN row of "two"
        group["data"][int(group["start"][2]), 0, 0, 0] = np.inf  # one infinite value in "tail"
        group["count"][3] = 0  # "cd" with no rows
    after = score_features(feats, loaded, CPU)
    assert after[0].error is None and after[0].p_spoof == pytest.approx(before[0].p_spoof, abs=1e-6)
    assert [r.error for r in after[1:]] == ["the model's output is not finite (NaN or infinite feature values?)"] * 2 + [
        "no segments to score"]
    assert all(math.isnan(r.p_spoof) for r in after[1:])
    assert list(to_table(after, loaded).extra["error"]) == ["", *(r.error for r in after[1:])]


# --------------------------------------------------------------------------- long recordings


def test_a_long_recording_is_streamed_and_scores_as_if_loaded_whole(tmp_path, models, monkeypatch):
    seconds = 150.3  # over prefetch.MAX_LOAD_SECONDS; blocks of 30 s never line up with 1.7-s segments
    assert seconds > prefetch.MAX_LOAD_SECONDS
    signal = np.concatenate([audio_factory.vowel(130, seconds=75.0, seed=5),
                             audio_factory.chirp(300, 4000, seconds=seconds - 75.0)])
    path = audio_factory.write(tmp_path / "long.flac", signal)
    utts = [Utterance(id="long", path=path, label="unknown")]
    paths = [models["stft1s"], models["stft"]]

    streamed_calls = []
    original = pipeline.FeaturePipeline._stream_one
    monkeypatch.setattr(pipeline.FeaturePipeline, "_stream_one",
                        lambda self, utt, dec: streamed_calls.append(utt.id) or original(self, utt, dec))
    streamed = _score(utts, paths, batch_size=16)[0]
    assert streamed_calls == ["long"]

    decode = prefetch.decode_file
    monkeypatch.setattr(prefetch, "decode_file", lambda p, max_load_seconds=None, **kw: decode(p, max_load_seconds=1e9, **kw))
    whole = _score(utts, paths, batch_size=16)[0]
    assert streamed_calls == ["long"]  # loaded whole this time

    assert streamed.error is None and whole.error is None
    assert streamed.p_spoof == pytest.approx(whole.p_spoof, abs=1e-5)
    assert len(streamed.segments) == audio.segment_count(len(signal), round(1.7 * SR)) == 89
    _close(streamed.segments, whole.segments, 1e-5)
    assert streamed.segments[-1][1] == pytest.approx(seconds)


def test_a_long_recording_failing_late_leaves_the_others_untouched(tmp_path, clips, models):
    signal = audio_factory.noise(prefetch.MAX_LOAD_SECONDS + 10, amp=0.1, seed=6)
    signal[-16_000] = np.nan  # in the last 30-s block: rows before it were already through the model
    bad = audio_factory.write(tmp_path / "late_nan.wav", signal, subtype="FLOAT")
    utts = [clips[0], Utterance(id="late_nan", path=bad, label="unknown"), clips[1]]
    results = _score(utts, [models["stft"]], batch_size=4)
    alone = _score([clips[0], clips[1]], [models["stft"]], batch_size=4)
    assert "NaN" in results[1].error and math.isnan(results[1].p_spoof)
    for r, a in zip([results[0], results[2]], alone):
        assert r.error is None and r.p_spoof == pytest.approx(a.p_spoof, abs=1e-6)
        _close(r.segments, a.segments, 1e-6)


# --------------------------------------------------------------------------- the table


def test_to_table_scores_decisions_errors_and_segments(models):
    loaded = load_models([models["stft"]], CPU)
    keys = [("bonafide", "-"), ("spoof", "A07"), ("unknown", "-"), ("spoof", "A08"), ("spoof", "A09")]
    utt = [Utterance(id=f"u{i}", path=Path(f"/x/u{i}.wav"), label=label, attack=attack) for i, (label, attack) in enumerate(keys)]
    results = [
        RecordingScore(utt[0], 0.2, [(0.0, 2.0, 0.1), (0.5, 2.5, 0.3)]),
        RecordingScore(utt[1], 0.9, [(0.0, 1.2, 0.9)]),
        RecordingScore(utt[2], error="not a decodable audio file"),
        RecordingScore(utt[3], 0.5, [(0.0, 2.0, 0.5)]),
        RecordingScore(utt[4], 1.0, [(0.0, 2.0, 1.0)]),
    ]
    table = to_table(results, loaded, segments=True, command=["adfd", "score"])
    assert table.ids == ["u0", "u1", "u2", "u3", "u4"]
    assert table.paths == ["/x/u0.wav", "/x/u1.wav", "/x/u2.wav", "/x/u3.wav", "/x/u4.wav"]
    assert table.scores[:2] == pytest.approx([math.log(0.8 / 0.2), math.log(0.1 / 0.9)])
    assert math.isnan(table.scores[2]) and math.isnan(table.p_spoof[2])
    assert table.scores[3] == 0.0 and table.scores[4] == -30.0  # capped: p_spoof = 1 stays finite
    assert table.decisions == ["bonafide", "spoof", "-", "bonafide", "spoof"]
    assert table.labels == ["bonafide", "spoof", "unknown", "spoof", "spoof"]
    assert table.attacks == ["-", "A07", "-", "A08", "A09"]
    assert table.extra["error"] == ["", "", "not a decodable audio file", "", ""]
    assert table.extra["segments"][:3] == ["0.00-2.00:0.1000;0.50-2.50:0.3000", "0.00-1.20:0.9000", ""]
    sha = hashlib.sha256(models["stft"].read_bytes()).hexdigest()
    assert table.provenance["models"] == [{"path": str(models["stft"]), "model": "cnn.v1", "sha256": sha}]

    plain = to_table(results[:2], loaded)
    assert set(plain.extra) == set()  # no error column without failures, no timeline unless asked
