"""The training loop: it learns, resumes to the same weights, stops early on the best epoch,
samples classes evenly, and refuses what it cannot train on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adfd_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from adfd_core.featurize import FeaturizeOptions, featurize
from adfd_core.corpus import from_folder
from adfd_core.modelfile import load_model
from adfd_core.trainset import BalancedEpochSampler, TrainDataError, load_rows
from adfd_core.training import TrainError, TrainOptions, checkpoint_path, log_path, recording_scores, train, validation_metrics
from feature_factory import random_features, spectral_corpus

TINY_CNN = (("channels", "4,8,8"), ("dense", "16"))


def _opts(**kw) -> TrainOptions:
    base = dict(model="cnn.v1", epochs=4, batch_size=16, lr=3e-3, patience=10, device="cpu", overrides=TINY_CNN)
    return TrainOptions(**{**base, **kw})


@pytest.fixture
def toy(tmp_path: Path) -> tuple[Path, Path]:
    """Train (60 utterances) and validation (30) feature files of 3x8x8 Gaussian rows."""
    return random_features(tmp_path / "train.h5", 60, seed=1), random_features(tmp_path / "val.h5", 30, seed=2)


@pytest.mark.slow
def test_cnn_learns_a_spectral_difference_from_audio(tmp_path):
    feats = {}
    for name, n, seed in (("train", 40, 0), ("val", 20, 1)):
        root = spectral_corpus(tmp_path / name, n, seed=seed)
        feats[name] = featurize(from_folder(root), tmp_path / f"{name}.h5", FeaturizeOptions(("stft-lf",), device="cpu")).output
    result = train(feats["train"], feats["val"], tmp_path / "cnn.safetensors", _opts(epochs=6, overrides=()))
    assert result.best["val_eer"] < 5.0, result.history
    assert result.best["val_auc"] > 0.98
    model, info = load_model(tmp_path / "cnn.safetensors")
    assert info.frontend["name"] == "stft-lf" and info.training["best_epoch"] == result.best_epoch


def test_resume_after_interruption_ends_with_the_same_weights(toy, tmp_path):
    train_h5, val_h5 = toy
    whole = train(train_h5, val_h5, tmp_path / "whole.safetensors", _opts())

    class StopAfterTwo:
        def epoch_start(self, epoch, batches): pass
        def batch_end(self, loss): pass
        def epoch_end(self, record):
            if record["epoch"] == 2:
                raise KeyboardInterrupt

    cut = tmp_path / "cut.safetensors"
    with pytest.raises(KeyboardInterrupt):
        train(train_h5, val_h5, cut, _opts(), observer=StopAfterTwo())
    assert checkpoint_path(cut).exists() and not cut.exists()
    with pytest.raises(TrainError, match="--resume"):
        train(train_h5, val_h5, cut, _opts())
    resumed = train(train_h5, val_h5, cut, _opts(), resume=True)
    assert not checkpoint_path(cut).exists()
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert [r["val_auc"] for r in resumed.history] == [r["val_auc"] for r in whole.history]
    a, _ = load_model(tmp_path / "whole.safetensors")
    b, _ = load_model(cut)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_resume_refuses_other_options(toy, tmp_path):
    train_h5, val_h5 = toy
    out = tmp_path / "m.safetensors"

    class Stop:
        def epoch_start(self, epoch, batches): pass
        def batch_end(self, loss): pass
        def epoch_end(self, record): raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(train_h5, val_h5, out, _opts(), observer=Stop())
    with pytest.raises(TrainError, match="other options"):
        train(train_h5, val_h5, out, _opts(lr=0.1), resume=True)
    with pytest.raises(TrainError, match="no checkpoint"):
        train(train_h5, val_h5, tmp_path / "other.safetensors", _opts(), resume=True)


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    labels = ["bonafide" if i % 2 else "spoof" for i in range(40)]
    train_h5 = random_features(tmp_path / "t.h5", 40, seed=3, labels=labels, shift=0.0)  # nothing to learn
    val_h5 = random_features(tmp_path / "v.h5", 20, seed=4, labels=labels[:20], shift=0.0)
    out = tmp_path / "m.safetensors"
    result = train(train_h5, val_h5, out, _opts(epochs=30, patience=2, lr=1e-2))
    aucs = [r["val_auc"] for r in result.history]
    assert result.stopped_early and len(aucs) < 30
    assert result.best_epoch == 1 + aucs.index(max(aucs))
    assert len(aucs) - result.best_epoch == 2  # stopped exactly `patience` epochs after the best
    model, info = load_model(out)
    rescored = validation_metrics(recording_scores(model, load_rows(val_h5, "toy"), torch.device("cpu"), 64, False), load_rows(val_h5, "toy"))
    assert rescored["val_auc"] == pytest.approx(max(aucs))
    logged = json.loads(log_path(out).read_text())
    assert logged["best_epoch"] == result.best_epoch and len(logged["history"]) == len(aucs)
    assert logged["train"]["sha256"] == info.training["train"]["sha256"] and len(logged["train"]["sha256"]) == 64


def test_without_val_a_group_disjoint_tenth_validates(tmp_path):
    labels = ["bonafide" if i % 2 else "spoof" for i in range(100)]
    train_h5 = random_features(tmp_path / "t.h5", 100, seed=8, labels=labels)
    result = train(train_h5, None, tmp_path / "m.safetensors", _opts(epochs=1))
    logged = json.loads(log_path(tmp_path / "m.safetensors").read_text())
    assert logged["val"]["path"] == str(train_h5)
    assert logged["train"]["utterances"] + logged["val"]["utterances"] == 100
    assert logged["val"]["utterances"] == 10 and result.history


def test_refusals(toy, tmp_path):
    train_h5, val_h5 = toy
    other = random_features(tmp_path / "other.h5", 20, seed=5, spec_params={"hop_length": 256})
    with pytest.raises(TrainDataError, match="another front-end spec"):
        train(train_h5, other, tmp_path / "a.safetensors", _opts())
    only_spoof = random_features(tmp_path / "spoof.h5", 10, seed=6, labels=["spoof"] * 10)
    with pytest.raises(TrainDataError, match="both bona fide and spoof"):
        train(only_spoof, val_h5, tmp_path / "b.safetensors", _opts())
    with pytest.raises(TrainDataError, match="no segment feature 'cqt'"):
        train(train_h5, val_h5, tmp_path / "c.safetensors", _opts(feature="cqt"))
    done = train(train_h5, val_h5, tmp_path / "d.safetensors", _opts(epochs=1)).output
    with pytest.raises(TrainError, match="--force"):
        train(train_h5, val_h5, done, _opts(epochs=1))


def test_balanced_sampler_draws_classes_evenly_and_shards_by_rank():
    labels = torch.tensor([1] * 100 + [0] * 900)
    sampler = BalancedEpochSampler(labels, batch_size=50, seed=7)
    drawn = torch.tensor([i for batch in sampler for i in batch])
    assert len(drawn) == 1000 and len(sampler) == 20
    assert 0.4 < labels[drawn].float().mean() < 0.6  # about half bona fide, though a tenth of the data
    sampler.set_epoch(1)
    assert [b for b in sampler] != [b for b in BalancedEpochSampler(labels, 50, seed=7)]
    ranks = [BalancedEpochSampler(labels, 50, seed=7, rank=r, world=3) for r in range(3)]
    shards = [[i for batch in s for i in batch] for s in ranks]
    assert all(len(s) == 333 for s in shards)
    interleaved = [shards[j % 3][j // 3] for j in range(999)]
    assert interleaved == drawn[:999].tolist()  # the ranks share out the one-process order


def test_checkpoint_round_trip_keeps_optimizer_state_and_refuses_junk(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"optimizer": opt.state_dict(), "rng": torch.get_rng_state(), "history": [{"a": 1.5}]})
    back = load_checkpoint(path)
    fresh = torch.optim.Adam(model.parameters())
    fresh.load_state_dict(back["optimizer"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(back["rng"], torch.get_rng_state()) and back["history"] == [{"a": 1.5}]
    (tmp_path / "junk").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="junk"):
        load_checkpoint(tmp_path / "junk")


TINY_FDL = (("width", "8"), ("crop_seconds", "0.5"))


@pytest.mark.slow
def test_a_waveform_model_learns_from_crops_and_scores_its_windows(tmp_path):
    from adfd_core.scoring import load_models, score_audio, score_features

    feats = {}
    for name, n, seed in (("train", 24, 0), ("val", 10, 1)):
        root = spectral_corpus(tmp_path / name, n, seed=seed, seconds=1.2)
        feats[name] = featurize(from_folder(root), tmp_path / f"{name}.h5", FeaturizeOptions(("wave",), device="cpu")).output
    out = tmp_path / "fdl.safetensors"
    opts = _opts(model="fdl.v1", epochs=4, batch_size=8, lr=1e-3, overrides=TINY_FDL)
    result = train(feats["train"], feats["val"], out, opts)
    assert result.best["val_auc"] > 0.9, result.history
    assert {"train_synth", "train_content", "train_adversarial", "train_shuffle"} <= result.history[0].keys()
    model, info = load_model(out)
    assert info.config.synthesizers == ("lowpass",)  # from the spoof folder's name
    assert info.frontend["name"] == "wave" and info.frontend["params"]["segment_seconds"] == 0.5
    models = load_models([out], torch.device("cpu"))
    utts = from_folder(tmp_path / "val")
    from_audio = {r.utt.id: r.p_spoof for r in score_audio(utts, models, torch.device("cpu"))}
    from_file = {r.utt.id: r.p_spoof for r in score_features(feats["val"], models, torch.device("cpu"))}
    assert from_audio.keys() == from_file.keys() and len(from_audio) == 20
    assert all(abs(from_audio[k] - from_file[k]) < 1e-5 for k in from_audio)
    rescored = validation_metrics(recording_scores(model, _wave_rows(feats["val"]), torch.device("cpu"), 16, False),
                                  _wave_rows(feats["val"]))
    assert rescored["val_auc"] == pytest.approx(result.best["val_auc"])


def _wave_rows(path: Path, crop_samples: int = 8000):
    from adfd_core.wavedata import load_waves

    return load_waves(path, "wave", crop_samples=crop_samples)


def test_a_waveform_model_refuses_a_file_without_waveforms(toy, tmp_path):
    train_h5, val_h5 = toy
    with pytest.raises(TrainDataError, match="holds no whole-waveform feature.*-f wave"):
        train(train_h5, val_h5, tmp_path / "m.safetensors", _opts(model="fdl.v1", overrides=TINY_FDL))


@pytest.mark.slow
def test_wavespec_trains_and_its_model_file_needs_no_wav2vec2_folder(tmp_path):
    import shutil

    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from model_factory import TINY_ENCODER

    torch.manual_seed(0)
    encoder = tmp_path / "tiny-wav2vec2"
    Wav2Vec2Model(Wav2Vec2Config(**TINY_ENCODER)).save_pretrained(encoder)
    feats = {}
    for name, n, seed in (("train", 10, 0), ("val", 6, 1)):
        root = spectral_corpus(tmp_path / name, n, seed=seed, seconds=1.0)
        feats[name] = featurize(from_folder(root), tmp_path / f"{name}.h5", FeaturizeOptions(("wave",), device="cpu")).output
    overrides = (("pretrained", str(encoder)), ("crop_seconds", "1.0"), ("layers", "1,2,3"), ("unet_channels", "4,8,16"),
                 ("fusion_dim", "16"), ("embedding_dim", "4"))
    out = tmp_path / "wavespec.safetensors"
    result = train(feats["train"], feats["val"], out, _opts(model="wavespec.v1", epochs=2, batch_size=8, cosine=True, overrides=overrides))
    assert {"train_ce", "train_center"} <= result.history[0].keys()
    assert result.history[1]["lr"] < result.history[0]["lr"]  # cosine annealing
    shutil.rmtree(encoder)  # the model file alone rebuilds the network
    model, info = load_model(out)
    assert info.config.pretrained == str(encoder) and '"hidden_size":32' in info.config.encoder_config  # where it started
    scores = recording_scores(model, _wave_rows(feats["val"], 16_000), torch.device("cpu"), 8, False)
    assert validation_metrics(scores, _wave_rows(feats["val"], 16_000))["val_auc"] == pytest.approx(result.best["val_auc"])


def test_balance_by_strata_gives_every_stratum_of_a_class_the_same_share():
    # Bona fide: 10 rows of stratum 0 and 90 of stratum 1; spoof: 900 rows of stratum 2.
    labels = torch.tensor([1] * 100 + [0] * 900)
    strata = torch.tensor([0] * 10 + [1] * 90 + [2] * 900)
    drawn = torch.cat([torch.tensor(b) for b in BalancedEpochSampler(labels, 100, seed=3, strata=strata)])
    bona = drawn[labels[drawn] == 1]
    assert 0.4 < len(bona) / len(drawn) < 0.6  # the classes still weigh the same
    assert 0.4 < (strata[bona] == 0).float().mean() < 0.6  # the 10-row stratum as often as the 90-row one
    plain = torch.cat([torch.tensor(b) for b in BalancedEpochSampler(labels, 100, seed=3)])
    assert (strata[plain[labels[plain] == 1]] == 0).float().mean() < 0.2  # without strata: by rows, about 1 in 10
    # With one stratum per class the weights are those of plain class balance: the same draws.
    same = BalancedEpochSampler(labels, 100, seed=3, strata=torch.where(labels == 1, 5, 7))
    assert [b for b in same] == [b for b in BalancedEpochSampler(labels, 100, seed=3)]


def test_row_strata_read_a_manifest_field_and_refuse_a_missing_one(tmp_path):
    from tests.core.test_exclusion import ROWS, _file

    from adfd_core.trainset import row_strata

    path = _file(tmp_path / "f.h5")
    rows = load_rows(path, "toy")
    strata = row_strata(path, rows.utt_ids, rows.utt, "source")
    assert [rows_source for *_, rows_source in ROWS] == [["s1", "s2", "s3"][k] for k in strata.tolist()]
    with pytest.raises(TrainDataError, match="no utterance has a field 'sauce' to balance by"):
        row_strata(path, rows.utt_ids, rows.utt, "sauce")
