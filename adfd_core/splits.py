"""Train / validation / test splits of a corpus that never put one spoken utterance on two sides.

Utterances are grouped by a field (``group`` by default: the devset's utterance text, so a real
clip and its resynthesized copies stay together; ``speaker`` for speaker-disjoint splits). Whole
groups are dealt to the splits in a seeded random order, each to the split furthest below its
share of utterances. Held-out attacks (``hold_out``) are dropped from train and validation, so
that the test side holds spoofing families no model has seen; the splits stay group-disjoint.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import random
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from adfd_core.corpus import Utterance
from adfd_core.errors import AdfdError
from adfd_core.option_values import GROUP_FIELDS
from adfd_core.outputs import atomic_text
from adfd_core.sidecar import check_replaceable, file_sha256

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ("id", "path", "label", "attack", "speaker", "group")

log = logging.getLogger(__name__)


class SplitError(AdfdError):
    """Fractions that do not add up, an unknown grouping field or a held-out attack that is not there."""


def _group_key(utt: Utterance, by: str) -> str:
    value = getattr(utt, by)
    return utt.id if value in ("", "-") else value  # ungrouped utterances stand alone


def split_utterances(
    utts: Sequence[Utterance],
    val: float = 0.1,
    test: float = 0.2,
    by: str = "group",
    seed: int = 0,
    hold_out: Collection[str] = (),
) -> dict[str, list[Utterance]]:
    """{'train', 'val', 'test'} -> utterances, group-disjoint; see the module docstring."""
    if by not in GROUP_FIELDS:
        raise SplitError(f"cannot group by {by!r}: use one of {', '.join(GROUP_FIELDS)}")
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise SplitError(f"--val {val:g} and --test {test:g} must be fractions in [0, 1) whose sum is below 1")
    missing = sorted(set(hold_out) - {u.attack for u in utts})
    if missing:
        raise SplitError(f"held-out attack(s) not in the corpus: {', '.join(missing)}")
    groups: dict[str, list[Utterance]] = {}
    for utt in utts:
        groups.setdefault(_group_key(utt, by), []).append(utt)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    share = {"train": 1.0 - val - test, "val": val, "test": test}
    dealt: dict[str, list[Utterance]] = {name: [] for name in SPLITS}
    for key in order:
        behind = {name: share[name] * len(utts) - len(dealt[name]) for name in SPLITS if share[name] > 0}
        dealt[max(behind, key=behind.__getitem__)].extend(groups[key])
    held = set(hold_out)
    for name in ("train", "val"):
        dealt[name] = [u for u in dealt[name] if u.attack not in held]
    return dealt


def split_summary(splits: Mapping[str, Sequence[Utterance]]) -> dict[str, dict[str, int]]:
    """Per split, how many utterances of each label: {'train': {'bonafide': 50, 'spoof': 400}, ...}."""
    return {name: dict(sorted(Counter(u.label for u in utts).items())) for name, utts in splits.items()}


def manifest_text(utts: Sequence[Utterance]) -> str:
    """A TSV manifest that `adfd featurize` reads back as the same utterances: absolute paths, and
    each metadata field (the devset's source, system, ...) as a column of its own; the header alone
    when ``utts`` is empty."""
    extra = sorted({k for u in utts for k in u.meta} - set(MANIFEST_COLUMNS))
    text = io.StringIO()
    out = csv.writer(text, delimiter="\t", lineterminator="\n")
    out.writerow([*MANIFEST_COLUMNS, *extra])
    for u in utts:
        out.writerow([u.id, str(u.path), u.label, u.attack, u.speaker, u.group, *(u.meta.get(k, "") for k in extra)])
    return text.getvalue()


def manifest_path(folder: Path, split: str) -> Path:
    """Where ``write_splits`` puts one split's manifest: FOLDER/train.tsv, ..."""
    return folder / f"{split}.tsv"


def write_splits(splits: Mapping[str, Sequence[Utterance]], folder: Path, force: bool = False) -> list[Path]:
    """One manifest per split under ``folder``: train.tsv, val.tsv, test.tsv, an empty one (header only)
    with a warning. Existing manifests with other contents are refused before any is written, unless ``force``."""
    texts = {manifest_path(folder, name): manifest_text(utts) for name, utts in splits.items()}
    for path, text in texts.items():
        check_replaceable(path, hashlib.sha256(text.encode()).hexdigest(), force, recorded=file_sha256)
    for name, utts in splits.items():
        if not utts:
            log.warning("%s: no utterances fall in the %s split; its manifest holds the header only", folder, name)
    for path, text in texts.items():
        with atomic_text(path) as f:
            f.write(text)
    return list(texts)

