"""Training data from feature files: the feature a model takes, its rows in memory, input
statistics, and the class-balanced epoch sampler.

The corpora are about 9 spoof to 1 bona fide; the sampler draws each epoch's rows with
replacement, every class equally likely, from a generator seeded by (seed, epoch) alone, so an
epoch is the same whether a run was interrupted before it or not, on any number of processes.
Given strata (``train --balance-by source``: each row's value of an utterance field), every stratum
of a class is equally likely too, so that one large source does not stand for the whole class.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adfd_core.errors import AdfdError
from adfd_core.exclusion import excluded
from adfd_core.store import LABEL_INDEX, FeatureFile

SPOOF, BONAFIDE = LABEL_INDEX["spoof"], LABEL_INDEX["bonafide"]


class TrainDataError(AdfdError):
    """A feature file that cannot train or validate this model: wrong feature, shape or labels."""


def choose_feature(path: Path, requested: str | None, default: str | None, whole_utterance: bool = False) -> str:
    """The feature to train on: ``requested``, else the file's only feature of the right kind, else ``default``.

    whole_utterance=False looks among segment features (rows), True among whole-waveform ones (``wave``).
    """
    kind = "whole-waveform" if whole_utterance else "segment"
    with FeatureFile(path) as ff:
        candidates = [n for n, f in ff.features.items() if f.whole_utterance == whole_utterance]
    if requested is not None:
        if requested not in candidates:
            hint = " (featurize with -f wave)" if whole_utterance else ""
            raise TrainDataError(f"{path}: has no {kind} feature {requested!r} (it holds: {', '.join(candidates) or 'none'}){hint}")
        return requested
    if len(candidates) == 1:
        return candidates[0]
    if default in candidates:
        return default
    if not candidates and whole_utterance:
        raise TrainDataError(f"{path}: holds no whole-waveform feature; this model trains on audio: featurize with -f wave")
    raise TrainDataError(f"{path}: holds several {kind} features ({', '.join(candidates) or 'none'}); choose one with --feature")


@dataclass(frozen=True)
class Labelled:
    """The labelled utterances of a feature file (those labelled unknown are left out), by file index."""

    index: np.ndarray  # (n,) int64 utterance indices into the file
    ids: list[str]
    labels: list[str]  # "bonafide" or "spoof"
    attacks: list[str]

    @property
    def classes(self) -> np.ndarray:
        """(n,) int64 class per LABEL_INDEX."""
        return np.array([LABEL_INDEX[label] for label in self.labels], dtype=np.int64)


def labelled_utterances(ff: FeatureFile, exclude: Sequence[tuple[str, str]] = ()) -> Labelled:
    """The utterances of ``ff`` with a label, less those ``exclude`` leaves out (see adfd_core.exclusion);
    refuses a file without both classes."""
    labels = ff.column("label")
    ids, attacks = ff.column("id"), ff.column("attack")
    dropped = excluded(ff, exclude)
    keep = [i for i, label in enumerate(labels) if label != "unknown" and not dropped[i]]
    classes = Counter(labels[i] for i in keep)
    if classes["bonafide"] == 0 or classes["spoof"] == 0:
        raise TrainDataError(
            f"{ff.path}: needs both bona fide and spoof utterances to train or validate on; it has "
            f"{classes['bonafide']} bona fide, {classes['spoof']} spoof ({len(labels) - len(keep)} unlabelled)"
        )
    return Labelled(np.array(keep, dtype=np.int64), [ids[i] for i in keep], [labels[i] for i in keep], [attacks[i] for i in keep])


def augmented_copies(path: Path) -> dict | None:
    """How `featurize --augment-copies` degraded copies of the file's utterances (its provenance record), or None."""
    with FeatureFile(path) as ff:
        return ff.provenance.get("augment")


def file_summary(path: Path, sha256: str, feature: str, utterances: int) -> dict:
    """What every training record says about a feature file: where, its hash, the feature, how many utterances."""
    return {"path": str(path), "sha256": sha256, "feature": feature, "utterances": utterances}


@dataclass
class SegmentRows:
    """Every labelled segment row of one feature, in memory.

    x: (N, C, F, T) float32; y: (N,) int64 class (0 spoof, 1 bona fide); utt: (N,) int64 index
    into ``utt_ids``; spec: the front-end spec the rows were made with; sha256: the file's hash.
    """

    path: Path
    feature: str
    spec: dict
    x: torch.Tensor
    y: torch.Tensor
    utt: torch.Tensor
    utt_ids: list[str]
    utt_attacks: list[str]
    sha256: str

    def __len__(self) -> int:
        return len(self.y)

    def summary(self) -> dict:
        """What the training record says about this file."""
        counts = Counter(int(c) for c in self.y.tolist())
        return {
            **file_summary(self.path, self.sha256, self.feature, len(self.utt_ids)),
            "segments": len(self),
            "bonafide_segments": counts.get(BONAFIDE, 0),
            "spoof_segments": counts.get(SPOOF, 0),
        }

    def subset(self, keep_utt: torch.Tensor) -> "SegmentRows":
        """The rows of the utterances where ``keep_utt`` (n_utterances,) bool is true, renumbered."""
        new_index = torch.cumsum(keep_utt.long(), 0) - 1
        rows = keep_utt[self.utt]
        kept = keep_utt.nonzero().flatten().tolist()
        return SegmentRows(
            self.path, self.feature, self.spec, self.x[rows], self.y[rows], new_index[self.utt[rows]],
            [self.utt_ids[i] for i in kept], [self.utt_attacks[i] for i in kept], self.sha256,
        )

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """A batch {"x": (B, C, F, T), "y": (B,)} for a torch DataLoader with a batch sampler."""
        idx = torch.as_tensor(indices)
        return {"x": self.x[idx], "y": self.y[idx]}

    def recording_labels(self) -> torch.Tensor:
        """(n_utterances,) int64 class of each recording."""
        return torch.zeros(len(self.utt_ids), dtype=torch.int64).scatter_(0, self.utt, self.y)

    def test_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every row once, in order: (x (b, C, F, T), utterance index (b,))."""
        for start in range(0, len(self), batch_size):
            yield self.x[start : start + batch_size], self.utt[start : start + batch_size]


def load_rows(path: Path, feature: str, exclude: Sequence[tuple[str, str]] = ()) -> SegmentRows:
    """The rows of ``feature`` of the labelled utterances not excluded; refuses a file without both classes."""
    from adfd_core.audio import file_sha256

    with FeatureFile(path) as ff:
        info = ff.feature(feature)
        if info.whole_utterance:
            raise TrainDataError(f"{path}: feature {feature!r} holds whole waveforms, not segment rows")
        utts = labelled_utterances(ff, exclude)
        starts, counts = ff.extent(feature)
        data = ff.all_rows(feature)  # one read; the labelled rows are gathered below
    keep = utts.index
    rows = np.concatenate([np.arange(starts[i], starts[i] + counts[i]) for i in keep])
    return SegmentRows(
        path=Path(path),
        feature=feature,
        spec=info.spec,
        x=torch.from_numpy(np.ascontiguousarray(data[rows])),
        y=torch.from_numpy(np.repeat(utts.classes, counts[keep])),
        utt=torch.from_numpy(np.repeat(np.arange(len(keep)), counts[keep]).astype(np.int64)),
        utt_ids=utts.ids,
        utt_attacks=utts.attacks,
        sha256=file_sha256(path),
    )


def check_compatible(train: SegmentRows, val: SegmentRows) -> None:
    """Refuse a validation file whose rows were made by another front-end or with other parameters."""
    a, b = train.spec, val.spec
    if (a["name"], a["version"]) != (b["name"], b["version"]):
        differs = f"{b['name']} v{b['version']} instead of {a['name']} v{a['version']}"
    else:
        keys = sorted(k for k in a["params"].keys() | b["params"].keys() if a["params"].get(k) != b["params"].get(k))
        if not keys:
            return
        differs = ", ".join(f"{k}={b['params'].get(k)} instead of {a['params'].get(k)}" for k in keys)
    raise TrainDataError(
        f"{val.path}: feature {val.feature!r} was made with another front-end spec than {train.path}'s ({differs}); "
        "featurize both with the same --feature"
    )


def input_statistics(x: torch.Tensor, shape: tuple[int, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (population) standard deviation of the rows x (N, *row), per element of the row, or of
    ``shape`` (a model's ``statistics_shape``: the row with 1 on shared axes, which are reduced too):
    two float32 tensors of ``shape``. Summed in float64 a block of rows at a time (frame rows are big)."""
    shape = tuple(x.shape[1:]) if shape is None else tuple(shape)
    if len(shape) != x.dim() - 1 or any(s not in (1, n) for s, n in zip(shape, x.shape[1:])):
        raise ValueError(f"statistics of shape {shape} for rows of shape {tuple(x.shape[1:])}")
    dims = (0, *(1 + axis for axis, (s, n) in enumerate(zip(shape, x.shape[1:])) if s == 1 and n > 1))
    count = max(1, math.prod(x.shape[d] for d in dims))
    step = max(1, (64 << 20) // max(1, 8 * math.prod(x.shape[1:])))  # 64 MB of float64 at a time
    total = torch.zeros(shape, dtype=torch.float64, device=x.device)
    for block in x.split(step):
        total += block.double().sum(dim=dims, keepdim=True)[0]
    mean = total / count
    squares = torch.zeros_like(total)
    for block in x.split(step):
        squares += (block.double() - mean).square().sum(dim=dims, keepdim=True)[0]
    std = (squares / count).sqrt().clamp_min(1e-6)
    return mean.float(), std.float()


def row_strata(path: Path, utt_ids: Sequence[str], row_utt: torch.Tensor, field: str) -> torch.Tensor:
    """(N,) int64 stratum of each row: the index of its utterance's value of ``field`` (``row_utt``: (N,) index
    into ``utt_ids``); a TrainDataError when the file has no such field."""
    with FeatureFile(path) as ff:
        values = ff.field(field)
        ids = ff.column("id")
    if values is None:
        raise TrainDataError(f"{path}: no utterance has a field {field!r} to balance by (a column such as speaker or "
                             "attack, or a manifest column such as source)")
    value_of = dict(zip(ids, values))
    names = sorted({value_of[i] for i in utt_ids})
    code = {name: k for k, name in enumerate(names)}
    per_utt = torch.tensor([code[value_of[i]] for i in utt_ids], dtype=torch.int64)
    return per_utt[row_utt]


class BalancedEpochSampler:
    """Batches of row indices for one process of ``world`` (see the module docstring).

    labels: (N,) int64 class of each row; strata: (N,) int64 or None. Balanced, a row of class c
    and stratum s is drawn with probability 1 / (classes * strata of c * rows of (c, s)).
    balanced=False draws a plain permutation instead. Each epoch has len(labels) rows in all,
    cut to a multiple of world and shared out rank::world.
    """

    def __init__(self, labels: torch.Tensor, batch_size: int, seed: int, balanced: bool = True, rank: int = 0, world: int = 1,
                 strata: torch.Tensor | None = None):  # fmt: skip
        self.labels, self.batch_size, self.seed = labels, batch_size, seed
        self.balanced, self.rank, self.world = balanced, rank, world
        self.epoch = 0
        cell = labels if strata is None else strata * 2 + labels  # (class, stratum) cell of each row
        cell_rows = torch.bincount(cell).double()
        cells_of_class = torch.bincount(torch.unique(cell) % 2, minlength=2).double()
        self.weights = 1.0 / (cell_rows[cell] * cells_of_class[labels])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        n = len(self.labels)
        if self.balanced:
            return torch.multinomial(self.weights, n, replacement=True, generator=g)
        return torch.randperm(n, generator=g)

    def __iter__(self):
        order = self._order()
        mine = order[: len(order) - len(order) % self.world][self.rank :: self.world]
        for start in range(0, len(mine), self.batch_size):
            yield mine[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        per_rank = len(self.labels) // self.world
        return -(-per_rank // self.batch_size)
