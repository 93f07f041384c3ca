"""Waveform training data: synthesizer labels, seeded crops with the labels a model asks for, test windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adfd_core import audio
from adfd_core.corpus import Utterance
from adfd_core.store import FeatureWriter, StoredUtterance
from adfd_core.trainset import TrainDataError
from adfd_core.wavedata import BatchKey, KeyedSampler, TrainingCrops, load_waves, synthesizer_labels, synthesizer_names
from adfd_core.trainset import BalancedEpochSampler

SR = 16_000
WAVE_SPEC = {"name": "wave", "version": 1, "params": {"sample_rate": SR, "segment_seconds": None}, "row_shape": []}


def _wave_file(path: Path, seconds: list[float], labels: list[str], attacks: list[str]) -> Path:
    writer = FeatureWriter.open(path, {"wave": WAVE_SPEC}, identity="waves", provenance={"test": True})
    for i, (s, label, attack) in enumerate(zip(seconds, labels, attacks)):
        wave = np.full(round(s * SR), i + 1, dtype=np.float32)  # utterance i is the constant i + 1
        wave += np.arange(len(wave), dtype=np.float32) * 1e-6  # ... rising slowly, so crops differ
        writer.add_rows("wave", wave)
        utt = Utterance(id=f"u{i}", path=Path(f"/x/u{i}.wav"), label=label, attack=attack, group=f"g{i}")
        writer.end_utterance(StoredUtterance(utt, content_hash=f"{i:064x}", duration_s=s))
    return writer.finish()


@pytest.fixture
def waves(tmp_path):
    return _wave_file(tmp_path / "w.h5", [1.0, 0.3, 2.5, 1.2, 0.8], ["bonafide", "spoof", "spoof", "unknown", "spoof"],
                      ["-", "tts-b", "tts-a", "tts-c", "-"])


def test_labelled_waveforms_load_with_their_utterances(waves):
    rows = load_waves(waves, "wave", crop_samples=SR // 2)
    assert rows.utt_ids == ["u0", "u1", "u2", "u4"]  # u3 is unlabelled
    assert rows.y.tolist() == [1, 0, 0, 0]
    assert [float(rows.wave(i)[0]) for i in range(4)] == [1.0, 2.0, 3.0, 5.0]
    assert rows.counts.tolist() == [SR, round(0.3 * SR), round(2.5 * SR), round(0.8 * SR)]
    assert rows.summary()["bonafide_utterances"] == 1 and rows.summary()["seconds"] == pytest.approx(4.6)
    with pytest.raises(TrainDataError, match="waveforms"):
        from adfd_core.trainset import load_rows

        load_rows(waves, "wave")


def test_synthesizer_labels_index_the_sorted_names_after_real(waves):
    rows = load_waves(waves, "wave", crop_samples=SR // 2)
    names = synthesizer_names(rows.utt_attacks, rows.y)
    assert names == ("tts-a", "tts-b", "unknown")  # a spoof without an attack is "unknown"
    assert synthesizer_labels(rows.utt_attacks, rows.y, names).tolist() == [0, 2, 1, 3]
    with pytest.raises(TrainDataError, match="'tts-b' is not one of the model's"):
        synthesizer_labels(rows.utt_attacks, rows.y, ("tts-a", "unknown"))


def test_test_windows_cover_each_recording_as_score_cuts_it(waves):
    rows = load_waves(waves, "wave", crop_samples=SR)
    xs, owners = zip(*rows.test_batches(batch_size=2))
    x, owner = torch.cat(xs), torch.cat(owners)
    expected = [audio.segment_count(int(n), SR) for n in rows.counts]
    assert torch.bincount(owner).tolist() == expected == [1, 1, 3, 1]
    assert x.shape == (6, SR) and all(len(b) <= 2 for b in xs)
    assert torch.equal(x[1], torch.from_numpy(np.resize(rows.wave(1), SR)))  # a short one is tiled
    assert torch.equal(x[4], torch.from_numpy(rows.wave(2)[-SR:]))  # the last window ends with the recording


def test_training_crops_are_seeded_by_their_place_in_the_run(waves):
    rows = load_waves(waves, "wave", crop_samples=SR // 4)
    crops = TrainingCrops(rows, seed=3, rank=0, fields=("synth",), synthesizers=("tts-a", "tts-b", "unknown"))
    a = crops.__getitems__(BatchKey(epoch=0, number=0, indices=[2, 2, 0]))
    again = crops.__getitems__(BatchKey(epoch=0, number=0, indices=[2, 2, 0]))
    later = crops.__getitems__(BatchKey(epoch=1, number=0, indices=[2, 2, 0]))
    assert a.keys() == {"x", "y", "synth"} and a["x"].shape == (3, SR // 4)
    assert a["y"].tolist() == [0, 0, 1] and a["synth"].tolist() == [1, 1, 0]
    assert torch.equal(a["x"], again["x"]) and not torch.equal(a["x"], later["x"])
    assert not torch.equal(a["x"][0], a["x"][1])  # two draws of one utterance are two crops
    assert torch.all(a["x"][:2].round() == 3) and torch.all(a["x"][2].round() == 1)  # each crop from its own utterance


def test_pseudo_labels_come_only_when_the_model_asks(waves):
    rows = load_waves(waves, "wave", crop_samples=SR // 4)
    batch = TrainingCrops(rows, seed=0, rank=0, fields=("codec", "speed")).__getitems__(BatchKey(0, 0, [0, 1, 2, 3]))
    assert batch.keys() == {"x", "y", "codec", "speed"} and batch["x"].shape == (4, SR // 4)
    assert batch["codec"].min() >= 0 and batch["codec"].max() < 10 and batch["speed"].max() < 16
    with pytest.raises(TrainDataError, match="pitch"):
        TrainingCrops(rows, seed=0, rank=0, fields=("pitch",))


def test_crops_can_be_augmented_without_asking_for_the_labels(waves):
    rows = load_waves(waves, "wave", crop_samples=SR // 4)
    key = BatchKey(0, 0, [0, 1, 2, 3])
    augmented = TrainingCrops(rows, seed=0, rank=0, fields=("synth",), synthesizers=("tts-a", "tts-b", "unknown"),
                              augment=("codec", "speed"))
    assert (augmented.crops.compression, augmented.crops.speed) == (True, True)
    labelled = TrainingCrops(rows, seed=0, rank=0, fields=("codec", "speed")).__getitems__(key)
    batch = augmented.__getitems__(key)
    assert batch.keys() == {"x", "y", "synth"} and torch.equal(batch["x"], labelled["x"])  # the same crops, unlabelled
    plain = TrainingCrops(rows, seed=0, rank=0, fields=("codec", "speed"), augment=("codec", "speed"))
    assert (plain.crops.compression, plain.crops.speed) == (True, True)
    assert TrainingCrops(rows, seed=0, rank=0, augment=()).crops.speed is False
    with pytest.raises(TrainDataError, match="asks for speed labels without that augmentation"):
        TrainingCrops(rows, seed=0, rank=0, fields=("speed",), augment=())


def test_the_keyed_sampler_numbers_the_batches_of_each_epoch():
    sampler = KeyedSampler(BalancedEpochSampler(torch.tensor([0, 0, 0, 1]), batch_size=3, seed=0))
    sampler.set_epoch(4)
    keys = list(sampler)
    assert [(k.epoch, k.number, len(k.indices)) for k in keys] == [(4, 0, 3), (4, 1, 1)] and len(sampler) == 2


def test_channel_augmentation_degrades_every_crop_reproducibly(waves):
    from adfd_core.channel import ChannelAugment

    rows = load_waves(waves, "wave", crop_samples=SR // 4)
    key = BatchKey(epoch=2, number=1, indices=[0, 2, 2, 3])
    plain = TrainingCrops(rows, seed=3, rank=0).__getitems__(key)
    chain = ChannelAugment(kinds=("noise", "gain"), probability=1.0)
    noisy = TrainingCrops(rows, seed=3, rank=0, channel=chain)
    a, again = noisy.__getitems__(key), noisy.__getitems__(key)
    assert torch.equal(a["x"], again["x"]) and torch.equal(a["y"], plain["y"])
    assert all(not torch.equal(a["x"][k], plain["x"][k]) for k in range(4))  # every crop degraded (probability 1)
    assert not torch.equal(a["x"][1], a["x"][2])  # one utterance twice in a batch: two draws
    assert not torch.equal(a["x"], noisy.__getitems__(BatchKey(3, 1, key.indices))["x"])  # another epoch, others
    other_rank = TrainingCrops(rows, seed=3, rank=1, channel=chain).__getitems__(key)
    assert not torch.equal(a["x"], other_rank["x"])


def test_a_model_learning_compression_labels_gets_no_channel_codec(waves):
    from adfd_core.channel import ChannelAugment

    rows = load_waves(waves, "wave", crop_samples=SR // 4)
    crops = TrainingCrops(rows, seed=0, rank=0, fields=("codec",), channel=ChannelAugment())
    assert "codec" not in crops.channel.kinds and "noise" in crops.channel.kinds
    assert "codec" in TrainingCrops(rows, seed=0, rank=0, fields=("synth",), synthesizers=("tts-a", "tts-b", "unknown"),
                                    channel=ChannelAugment()).channel.kinds
