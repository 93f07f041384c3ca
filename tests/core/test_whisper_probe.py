"""Bundling a back-end trained on whisper rows with its network: the one-file model scores as the two steps do."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from adfd_core.bundle import BundleError, bundle
from adfd_core.corpus import Utterance
from adfd_core.modelfile import load_model, read_model_info, save_model
from adfd_core.models import registry
from adfd_core.scoring import load_models, score_audio
from model_factory import save_whisper, tiny_model, whisper_backend

SR = 16_000
CASES = [  # (front-end parameters, back-end, its config; a wide head's scaled-up logits would all saturate)
    ({}, "mlp.v1", {}),
    ({"layers": [1], "pooling": "mean+std"}, "logreg.v1", {}),
    ({"layers": [0, 1, 2], "pooling": "mean+std"}, "layerweight.v1", {}),
    ({"pooling": "frames"}, "attentive.v1", {"attention": "4", "hidden": "0"}),
    ({"layers": [0, 2], "pooling": "frames"}, "attentive.v1", {"attention": "8", "hidden": "8"}),
]


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    return save_whisper(tmp_path_factory.mktemp("whisper") / "tiny")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    import soundfile as sf

    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    utts = []
    for i, seconds in enumerate([1.3, 2.0, 4.7]):  # shorter than, one and several segments
        t = np.arange(round(seconds * SR)) / SR
        wave = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(root / f"r{i}.wav", wave.astype(np.float32), SR)
        utts.append(Utterance(f"r{i}", root / f"r{i}.wav", "unknown"))
    return utts


def segment_scores(models, utts):
    results = score_audio(utts, load_models(models, torch.device("cpu")), torch.device("cpu"))
    assert not any(r.error for r in results), [r.error for r in results]
    return np.array([p for r in results for _, _, p in r.segments]), [len(r.segments) for r in results]


@pytest.mark.parametrize(("params", "name", "overrides"), CASES)
def test_bundled_model_scores_as_the_two_steps(whisper, recordings, tmp_path, params, name, overrides):
    two_step = whisper_backend(tmp_path / "backend.safetensors", whisper, params, name, overrides=overrides)
    one_file = bundle(two_step, whisper, tmp_path / "bundled.safetensors", storage_dtype="float32")
    want, counts = segment_scores([two_step], recordings)
    got, got_counts = segment_scores([one_file], recordings)
    assert got_counts == counts == [1, 1, 3]  # the same 2-s segments
    assert np.ptp(want) > 0.05  # the scores differ between segments: a wrong segment would show
    np.testing.assert_allclose(got, want, atol=1e-5)
    info = read_model_info(one_file)
    assert info.name == "whisper-probe.v1" and info.frontend["name"] == "wave" and info.frontend["params"]["segment_seconds"] == 2.0
    assert info.calibration == {"a": 2.0} and info.training["bundled_from"]["backend"]["model"] == name


def test_float16_storage_halves_the_encoder_and_keeps_the_scores(whisper, recordings, tmp_path):
    two_step = whisper_backend(tmp_path / "backend.safetensors", whisper, {"layers": [1, 2]}, "layerweight.v1")
    half = bundle(two_step, whisper, tmp_path / "half.safetensors")
    full = bundle(two_step, whisper, tmp_path / "full.safetensors", storage_dtype="float32")
    stored = load_file(str(half))
    assert {t.dtype for k, t in stored.items() if k.startswith("pool.encoder.")} == {torch.float16}
    assert {t.dtype for k, t in stored.items() if k.startswith("head.")} == {torch.float32}
    model, _ = load_model(half)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # computed in float32
    # A random tiny network is touchier than Whisper itself (whisper-base: see the README's figure).
    np.testing.assert_allclose(segment_scores([half], recordings)[0], segment_scores([full], recordings)[0], atol=2e-2)
    resaved = load_file(str(save_model(tmp_path / "again.safetensors", model, read_model_info(half))))
    assert all(torch.equal(resaved[k], t) for k, t in stored.items())  # saving a loaded file changes nothing


def test_bundle_refuses_other_rows_and_other_weights(whisper, tmp_path):
    cqt = tiny_model(tmp_path / "cqt.safetensors", frontend="cqt")
    with pytest.raises(BundleError, match=r"trained on 'cqt' rows; bundle takes a back-end trained on whisper rows"):
        bundle(cqt, whisper, tmp_path / "x.safetensors")
    two_step = whisper_backend(tmp_path / "backend.safetensors", whisper, {}, "mlp.v1")
    other = save_whisper(tmp_path / "other", seed=1)
    with pytest.raises(BundleError, match=r"holds other weights"):
        bundle(two_step, other, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_probe_refuses_layers_its_encoder_lacks():
    from model_factory import small_config

    config = small_config("whisper-probe.v1")
    with pytest.raises(registry.ModelError, match=r"the encoder keeps 2 blocks; layers \(0, 3\) \(of 3\) need 3"):
        dataclasses.replace(config, layers=(0, 3))
