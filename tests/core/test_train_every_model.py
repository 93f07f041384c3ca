"""Every registered model trains for one tiny epoch, and the model file holds the best epoch's weights,
reloaded into the network at the end of training (torchvision's MNASNet refuses a state dict without
its version), and a run interrupted after an epoch resumes from its checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adfd_core.corpus import from_folder
from adfd_core.featurize import FeaturizeOptions, featurize
from adfd_core.modelfile import load_model
from adfd_core.models import registry
from adfd_core.trainset import load_rows
from adfd_core import training
from adfd_core.training import TrainOptions, recording_scores, train
from adfd_core.wavedata import load_waves
from feature_factory import random_features, spectral_corpus
from model_factory import SMALL

TINY_SEGMENT_MODELS = {"cnn.v1": {"channels": "4,8,8", "dense": "16"}, "crnn.v2": {"channels": "4,8,8", "lstm": "8,4", "dense": "16"},
                       "rnn.v2": {"lstm": "8,4", "dense": "16"}}  # fmt: skip
ROW_SHAPES = {"mlp.v1": (16,), "logreg.v1": (16,), "layerweight.v1": (3, 16), "attentive.v1": (2, 10, 8)}  # embedding rows; the rest (3, 8, 8)
WAVE_CROP_SECONDS = 1.0


def _overrides(name: str) -> tuple[tuple[str, str], ...]:
    """Tiny --set values for ``name``: the shrunk configs of model_factory, vision backbones at 32 x 32."""
    values = dict(SMALL[name]()) if name in SMALL else dict(TINY_SEGMENT_MODELS.get(name, {}))
    fields = registry.config_to_dict(registry.make_config(name))
    if "input_size" in fields:
        values["input_size"] = "32"
    if "crop_seconds" in fields:
        values["crop_seconds"] = str(WAVE_CROP_SECONDS)
    return tuple(values.items())


@pytest.fixture(scope="module")
def wave_files(tmp_path_factory) -> tuple[Path, Path]:
    """Train and validation feature files of 1-s waveforms (feature ``wave``)."""
    root = tmp_path_factory.mktemp("waves")
    files = []
    for name, n, seed in (("train", 4, 0), ("val", 3, 1)):
        corpus = spectral_corpus(root / name, n, seed=seed, seconds=WAVE_CROP_SECONDS)
        files.append(featurize(from_folder(corpus), root / f"{name}.h5", FeaturizeOptions(("wave",), device="cpu")).output)
    return files[0], files[1]


def _files(name: str, tmp_path: Path, wave_files: tuple[Path, Path]) -> tuple[Path, Path, str]:
    if registry.entry(name).input_kind == "wave":
        return (*wave_files, "wave")
    shape = ROW_SHAPES.get(name, (3, 8, 8))
    labels = ["bonafide" if i % 2 else "spoof" for i in range(12)]
    return (random_features(tmp_path / "t.h5", 12, seed=1, shape=shape, labels=labels),
            random_features(tmp_path / "v.h5", 6, seed=2, shape=shape, labels=labels[:6]), "toy")  # fmt: skip


@pytest.mark.parametrize("name", registry.available())
def test_every_model_trains_an_epoch_and_its_file_holds_the_best_weights(name, tmp_path, wave_files, monkeypatch):
    train_h5, val_h5, feature = _files(name, tmp_path, wave_files)
    validated = []  # the validation scores of each epoch, as training computed them
    monkeypatch.setattr(training, "recording_scores", lambda *args: validated.append(recording_scores(*args)) or validated[-1])
    out = tmp_path / "m.safetensors"
    opts = TrainOptions(model=name, feature=feature, epochs=1, batch_size=4, lr=1e-3, device="cpu", overrides=_overrides(name))
    result = train(train_h5, val_h5, out, opts)
    assert result.best_epoch == 1 and len(validated) == 1 and out.is_file()
    model, info = load_model(out)
    assert info.name == name and info.training["best_epoch"] == 1
    wave = registry.entry(name).input_kind == "wave"
    rows = load_waves(val_h5, "wave", crop_samples=round(info.config.crop_seconds * 16_000)) if wave else load_rows(val_h5, feature)
    # An untrained network scores every recording almost alike: compare the scores, not their AUC.
    np.testing.assert_allclose(recording_scores(model, rows, torch.device("cpu"), 8, False), validated[0], rtol=0, atol=1e-5)


def test_mnasnet_resumes_from_its_checkpoint(tmp_path):
    """The checkpoint's state dict, like the best epoch's copy, has no version metadata: resuming must still load it."""
    train_h5, val_h5, feature = _files("mnasnet.v1", tmp_path, (tmp_path, tmp_path))
    opts = TrainOptions(model="mnasnet.v1", feature=feature, epochs=2, batch_size=4, device="cpu", overrides=_overrides("mnasnet.v1"))

    class StopAfterOne:
        def epoch_start(self, epoch, batches): pass
        def batch_end(self, loss): pass
        def epoch_end(self, record): raise KeyboardInterrupt

    out = tmp_path / "m.safetensors"
    with pytest.raises(KeyboardInterrupt):
        train(train_h5, val_h5, out, opts, observer=StopAfterOne())
    resumed = train(train_h5, val_h5, out, opts, resume=True)
    assert [r["epoch"] for r in resumed.history] == [1, 2] and out.is_file()
