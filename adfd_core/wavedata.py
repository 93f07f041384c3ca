"""Training data for waveform models (``input_kind`` "wave"): the labelled utterances' samples in
memory, random crops with the labels a model asks for, and crop-length windows for testing.

Training draws one random crop of ``crop_samples`` per sampled utterance (a short one is tiled,
as ``audio.iter_segments`` does). The crops of a batch come from a generator seeded by (seed,
epoch, batch number, rank), so a resumed run and any number of DataLoader workers see the same
crops. With a channel chain (``channel.ChannelAugment``, `adfd train --augment`), each sampled
utterance is degraded as a whole before it is cropped, from a generator of its own seeded by (seed,
epoch, batch number, rank, position in the batch), so the crop draws are the same with or without
it, and the degradation is the same on a resume or in any worker. Testing cuts a recording into the windows `adfd score` uses (``audio.segments``);
its probability is the mean over them.

Labels besides "y" that a model lists in its ``batch_fields``:
- "synth": 0 for bona fide, i + 1 for the i-th of the model's ``synthesizers`` (attack names);
- "codec", "speed": the compression and speed pseudo-labels of ``augment.PseudoLabeledCrops``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from adfd_core import audio
from adfd_core.store import FeatureFile
from adfd_core.trainset import BONAFIDE, SPOOF, TrainDataError, file_summary, labelled_utterances

if TYPE_CHECKING:
    from adfd_core.channel import ChannelAugment

UNKNOWN_SYNTHESIZER = "unknown"  # the synthesizer name of a spoof utterance without an attack field
PSEUDO_LABELS = ("codec", "speed")


@dataclass
class WaveRows:
    """The labelled utterances' waveforms of one whole-utterance feature, in memory.

    samples: (total,) float32, utterances one after another; starts, counts: (n,) int64 where
    each utterance lies in it; y: (n,) int64 class per utterance (0 spoof, 1 bona fide).
    """

    path: Path
    feature: str
    spec: dict
    samples: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    y: torch.Tensor
    utt_ids: list[str]
    utt_attacks: list[str]
    sha256: str
    crop_samples: int  # the model's input length

    def __len__(self) -> int:
        return len(self.y)

    def wave(self, i: int) -> np.ndarray:
        """Utterance i's samples: (counts[i],) float32."""
        return self.samples[self.starts[i] : self.starts[i] + self.counts[i]]

    def summary(self) -> dict:
        """What the training record says about this file."""
        counts = Counter(int(c) for c in self.y.tolist())
        return {
            **file_summary(self.path, self.sha256, self.feature, len(self)),
            "seconds": float(self.counts.sum()) / audio.TARGET_SR,
            "bonafide_utterances": counts.get(BONAFIDE, 0),
            "spoof_utterances": counts.get(SPOOF, 0),
        }

    def subset(self, keep_utt: torch.Tensor) -> "WaveRows":
        """The utterances where ``keep_utt`` (n,) bool is true (the samples array is shared)."""
        keep = keep_utt.numpy()
        kept = np.flatnonzero(keep).tolist()
        return WaveRows(
            self.path, self.feature, self.spec, self.samples, self.starts[keep], self.counts[keep], self.y[keep_utt],
            [self.utt_ids[i] for i in kept], [self.utt_attacks[i] for i in kept], self.sha256, self.crop_samples,
        )

    def recording_labels(self) -> torch.Tensor:
        """(n,) int64 class of each recording."""
        return self.y

    def test_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every recording's windows once, in order: (x (b, crop_samples), utterance index (b,))."""
        windows: list[np.ndarray] = []
        owners: list[int] = []
        for i in range(len(self)):
            for window in audio.segments(self.wave(i), self.crop_samples):
                windows.append(window)
                owners.append(i)
                if len(windows) == batch_size:
                    yield torch.from_numpy(np.stack(windows)), torch.tensor(owners)
                    windows, owners = [], []
        if windows:
            yield torch.from_numpy(np.stack(windows)), torch.tensor(owners)


def load_waves(path: Path, feature: str, crop_samples: int, exclude: Sequence[tuple[str, str]] = ()) -> WaveRows:
    """The waveforms of the labelled utterances of whole-utterance ``feature`` not excluded; refuses a file without both classes."""
    with FeatureFile(path) as ff:
        info = ff.feature(feature)
        if not info.whole_utterance:
            raise TrainDataError(f"{path}: feature {feature!r} holds segment rows, not waveforms; featurize with -f wave")
        utts = labelled_utterances(ff, exclude)
        starts, counts = ff.extent(feature)
        samples = np.ascontiguousarray(ff.all_rows(feature), dtype=np.float32).reshape(-1)
    return WaveRows(
        path=Path(path),
        feature=feature,
        spec=info.spec,
        samples=samples,
        starts=starts[utts.index].astype(np.int64),
        counts=counts[utts.index].astype(np.int64),
        y=torch.from_numpy(utts.classes),
        utt_ids=utts.ids,
        utt_attacks=utts.attacks,
        sha256=audio.file_sha256(path),
        crop_samples=crop_samples,
    )


def synthesizer_name(attack: str) -> str:
    """The synthesizer class name of a spoof utterance's attack field ("-" or empty: unknown)."""
    name = attack.strip()
    return UNKNOWN_SYNTHESIZER if name in ("", "-") else name


def synthesizer_names(attacks: Sequence[str], classes: torch.Tensor) -> tuple[str, ...]:
    """The sorted synthesizer names of the spoof utterances (``classes`` (n,) per LABEL_INDEX)."""
    return tuple(sorted({synthesizer_name(a) for a, c in zip(attacks, classes.tolist()) if c == SPOOF}))


def synthesizer_labels(attacks: Sequence[str], classes: torch.Tensor, synthesizers: Sequence[str]) -> torch.Tensor:
    """(n,) int64: 0 for bona fide, 1 + the index of the utterance's synthesizer in ``synthesizers``."""
    index = {name: i + 1 for i, name in enumerate(synthesizers)}
    labels = []
    for attack, c in zip(attacks, classes.tolist()):
        if c == BONAFIDE:
            labels.append(0)
        elif synthesizer_name(attack) in index:
            labels.append(index[synthesizer_name(attack)])
        else:
            raise TrainDataError(f"synthesizer {synthesizer_name(attack)!r} is not one of the model's ({', '.join(synthesizers)})")
    return torch.tensor(labels, dtype=torch.int64)


@dataclass(frozen=True)
class BatchKey:
    """One batch of utterance indices and where it falls in the run, which seeds its crops."""

    epoch: int
    number: int
    indices: list[int]


class KeyedSampler:
    """Wraps a batch sampler (``trainset.BalancedEpochSampler``): yields each batch as a BatchKey."""

    def __init__(self, sampler):
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[BatchKey]:
        for number, indices in enumerate(self.sampler):
            yield BatchKey(self.sampler.epoch, number, indices)

    def __len__(self) -> int:
        return len(self.sampler)


class TrainingCrops:
    """A DataLoader dataset over BatchKeys: the batch {"x": (B, crop_samples), "y": (B,), and each of
    ``fields`` (B,) int64}. The synthesizer labels need ``synthesizers``. ``augment``: which of the
    PSEUDO_LABELS augmentations the crops get (None: those whose labels ``fields`` asks for); a
    pseudo-label field needs its augmentation."""

    def __init__(self, rows: WaveRows, seed: int, rank: int, fields: Sequence[str] = (), synthesizers: Sequence[str] = (),
                 channel: "ChannelAugment | None" = None, augment: Sequence[str] | None = None):
        from adfd_core.augment import PseudoLabeledCrops

        unknown = sorted(set(fields) - {"synth", *PSEUDO_LABELS}) or sorted(set(augment or ()) - set(PSEUDO_LABELS))
        if unknown:
            raise TrainDataError(f"the model asks for labels or augmentations this loader does not make: {', '.join(unknown)}")
        augment = tuple(f for f in fields if f in PSEUDO_LABELS) if augment is None else tuple(augment)
        unlabelled = sorted(set(fields) & set(PSEUDO_LABELS) - set(augment))
        if unlabelled:
            raise TrainDataError(f"the model asks for {', '.join(unlabelled)} labels without that augmentation")
        self.rows, self.seed, self.rank, self.fields = rows, seed, rank, tuple(fields)
        self.synth = synthesizer_labels(rows.utt_attacks, rows.y, synthesizers) if "synth" in fields else None
        self.crops = PseudoLabeledCrops(rows.crop_samples, compression="codec" in augment, speed="speed" in augment)
        # A model that learns the compression pseudo-label must not see compression the label does not name.
        self.channel = channel.without("codec") if channel is not None and "codec" in fields else channel

    def __len__(self) -> int:
        return len(self.rows)

    def __getitems__(self, key: BatchKey) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, key.epoch, key.number, self.rank])
        crops, codecs, speeds = zip(*(self.crops(self._wave(key, k, i), rng) for k, i in enumerate(key.indices)))
        idx = torch.as_tensor(key.indices)
        batch = {"x": torch.from_numpy(np.stack(crops)), "y": self.rows.y[idx]}
        if self.synth is not None:
            batch["synth"] = self.synth[idx]
        if "codec" in self.fields:
            batch["codec"] = torch.tensor(codecs, dtype=torch.int64)
        if "speed" in self.fields:
            batch["speed"] = torch.tensor(speeds, dtype=torch.int64)
        return batch

    def _wave(self, key: BatchKey, position: int, i: int) -> np.ndarray:
        """Utterance i's samples, degraded by the channel chain when there is one: (n,) float32."""
        wave = self.rows.wave(i)
        if self.channel is None:
            return wave
        from adfd_core.channel import item_rng

        return self.channel(wave, item_rng(self.seed, key.epoch, key.number, self.rank, position))
