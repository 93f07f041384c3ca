"""Fine-tuning a whisper-probe.v1 model file (``pretrained``, ``finetune_blocks``): what changes, what stays
bit-identical, what the new file records, resuming, and the refusals. A tiny random Whisper bundled with
a random layerweight.v1 head is the start: 2 blocks, hidden states 0-2 pooled (mean and std)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adfd_core.audio import file_sha256
from adfd_core.bundle import bundle
from adfd_core.corpus import Utterance, from_folder
from adfd_core.featurize import FeaturizeOptions, featurize
from adfd_core.modelfile import load_model, read_model_info
from adfd_core.models import ModelError, config_from_dict, config_to_dict, make_config, registry
from adfd_core.scoring import load_models, score_audio
from adfd_core.training import TrainOptions, train
from feature_factory import spectral_corpus
from model_factory import save_whisper, tiny_model, whisper_backend

HEAD = ("head.mean", "head.std")  # the head's input standardization: buffers, never trained


@pytest.fixture(scope="module")
def start(tmp_path_factory) -> Path:
    """A whisper-probe.v1 file as `adfd bundle` makes it (encoder in float16)."""
    root = tmp_path_factory.mktemp("start")
    whisper = save_whisper(root / "whisper")
    backend = whisper_backend(root / "backend.safetensors", whisper, {"layers": [0, 1, 2], "pooling": "mean+std"}, "layerweight.v1")
    return bundle(backend, whisper, root / "start.safetensors")


@pytest.fixture(scope="module")
def waves(tmp_path_factory) -> tuple[Path, Path]:
    """Train and validation files of 2-s waveforms (feature ``wave``)."""
    root = tmp_path_factory.mktemp("waves")
    files = []
    for name, n, seed in (("train", 4, 0), ("val", 3, 1)):
        corpus = spectral_corpus(root / name, n, seed=seed, seconds=2.0)
        files.append(featurize(from_folder(corpus), root / f"{name}.h5", FeaturizeOptions(("wave",), device="cpu")).output)
    return files[0], files[1]


def _opts(start: Path, k: int, epochs: int = 1, lr: float = 1e-2, **overrides: str) -> TrainOptions:
    pairs = (("pretrained", str(start)), ("finetune_blocks", str(k)), *overrides.items())
    return TrainOptions(model="whisper-probe.v1", feature="wave", epochs=epochs, batch_size=4, lr=lr, patience=5, device="cpu",
                        overrides=pairs)


def _tuned(key: str, k: int) -> bool:
    """Whether finetune_blocks=k trains tensor ``key`` of the tiny start (2 blocks, the closing LayerNorm in use)."""
    if key.startswith("head."):
        return key not in HEAD
    last = key.startswith(("pool.encoder.layers.1.", "pool.encoder.layer_norm."))
    return (k >= 1 and last) or (k == 2 and key.startswith("pool.encoder.layers.0."))


@pytest.mark.parametrize("k", [0, 1])
def test_only_the_head_and_the_last_k_blocks_change_the_rest_stays_bit_identical(start, waves, tmp_path, k):
    out = tmp_path / "tuned.safetensors"
    train(*waves, out, _opts(start, k))
    before, after = load_file(str(start)), load_file(str(out))
    assert before.keys() == after.keys()
    assert after["pool.encoder.conv1.weight"].dtype == torch.float16  # stored as its start was
    changed = sorted(key for key in before if not torch.equal(before[key], after[key]))
    assert changed == sorted(key for key in before if _tuned(key, k))
    assert any(key.startswith("pool.encoder.layers.1.") for key in changed) == (k == 1)


def test_the_tuned_file_records_its_start_and_scores_like_any_whisper_probe(start, waves, tmp_path):
    out = tmp_path / "tuned.safetensors"
    train(*waves, out, _opts(start, 1, lr=1e-4))
    info = read_model_info(out)
    assert info.name == "whisper-probe.v1" and info.config.finetune_blocks == 1 and info.config.pretrained == str(start)
    assert info.training["pretrained"] == {"name": str(start), "sha256": file_sha256(start)}
    assert dataclasses.replace(info.config, pretrained=None, finetune_blocks=-1) == read_model_info(start).config
    wav = next((waves[0].parent / "val").rglob("*.wav"))
    results = score_audio([Utterance("u", wav, "unknown")], load_models([out], torch.device("cpu")), torch.device("cpu"))
    assert results[0].error is None and 0 < results[0].p_spoof < 1
    started = score_audio([Utterance("u", wav, "unknown")], load_models([start], torch.device("cpu")), torch.device("cpu"))
    assert results[0].p_spoof != started[0].p_spoof  # the tuned weights, not the start's


def test_frozen_parts_stay_in_eval_mode_and_keep_no_activations(start):
    model = registry.build("whisper-probe.v1", make_config("whisper-probe.v1", {"pretrained": str(start), "finetune_blocks": "1"}))
    model.train()
    encoder = model.pool.encoder
    assert not encoder.layers[0].training and not encoder.conv1.training and encoder.layers[1].training and model.head.training
    needs_grad = {}
    for name in ("conv2", "layers.0", "layers.1"):
        encoder.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: needs_grad.__setitem__(name, o.requires_grad))
    model(0.1 * torch.randn(2, 32_000)).sum().backward()
    assert needs_grad == {"conv2": False, "layers.0": False, "layers.1": True}  # no graph, so no saved activations, below block 2
    assert encoder.layers[0].fc1.weight.grad is None and encoder.layers[1].fc1.weight.grad is not None


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(start, waves, tmp_path):
    """The checkpoint holds the tuned blocks in float32: rounded to the file's float16, the resumed run would drift."""
    whole = tmp_path / "whole.safetensors"
    uninterrupted = train(*waves, whole, _opts(start, 1, epochs=2))

    class StopAfterOne:
        def epoch_start(self, epoch, batches): pass
        def batch_end(self, loss): pass
        def epoch_end(self, record): raise KeyboardInterrupt

    cut = tmp_path / "cut.safetensors"
    with pytest.raises(KeyboardInterrupt):
        train(*waves, cut, _opts(start, 1, epochs=2), observer=StopAfterOne())
    resumed = train(*waves, cut, _opts(start, 1, epochs=2), resume=True)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in uninterrupted.history]  # epoch 2 from the same weights
    a, b = load_file(str(whole)), load_file(str(cut))
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_starts_that_are_no_whisper_probe_or_do_not_fit_are_refused_naming_the_file(start, waves, tmp_path):
    cnn = tiny_model(tmp_path / "cnn.safetensors")
    cases = [
        (_opts(cnn, 0), rf"pretrained {cnn}: a cnn\.v1 model; whisper-probe\.v1 starts from a whisper-probe\.v1 model file"),
        (_opts(tmp_path, 0), rf"pretrained {tmp_path}: a folder; .*adfd bundle"),
        (_opts(tmp_path / "none.safetensors", 0), r"none\.safetensors: model file not found"),
        (_opts(start, 3), rf"pretrained {start}: .*finetune_blocks must be -1 .* or up to 2 \(the blocks kept\), got 3"),
        (_opts(start, 0, pooling="mean"), rf"pretrained {start}: pooling='mean' contradicts the model it starts from \(pooling='mean\+std'\)"),
    ]
    for opts, message in cases:
        with pytest.raises(ModelError, match=message):
            train(*waves, tmp_path / "m.safetensors", opts)
    assert not (tmp_path / "m.safetensors").exists()


def test_configs_written_before_fine_tuning_existed_load_as_before(start):
    stored = config_to_dict(read_model_info(start).config)
    older = {key: value for key, value in stored.items() if key not in ("pretrained", "finetune_blocks")}
    config = config_from_dict("whisper-probe.v1", older)
    assert config.pretrained is None and config.finetune_blocks == -1  # every weight trains, as it always did
    model, _ = load_model(start)
    assert all(p.requires_grad for p in model.parameters())
