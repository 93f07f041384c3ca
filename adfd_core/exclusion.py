"""Utterances a training run leaves out: ``adfd train --exclude source=vits``.

An utterance is excluded when one of its fields (``id``, ``label``, ``attack``, ``speaker``,
``group``, or a manifest column kept in ``meta``, such as ``source`` or ``family``) equals a
given value. So that a held-out source measures transfer and not memory, every other utterance
that shares a ``group`` (the same recording or sentence) with an excluded one goes too: another
copy of a held-out recording, or any system's rendering of it, would tie the recording's content
to a label. One exception: when the excluded utterances are all spoof, the bona fide recordings
they were made from stay (otherwise holding out a copy-synthesis set would remove every real
recording it was made from); knowing the real recording can only make its fakes harder to catch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from adfd_core.errors import AdfdError

if TYPE_CHECKING:
    from adfd_core.store import FeatureFile

FIELDS = ("id", "label", "attack", "speaker", "group")  # columns of the feature file, named in messages; others are in meta


class ExclusionError(AdfdError):
    """An exclusion that names no field of the feature file."""


def excluded(ff: "FeatureFile", pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """(n_utterances,) bool: the utterances of ``ff`` that ``pairs`` (field, value) leave out, with their group-mates
    (bona fide group-mates stay when every matching utterance is spoof)."""
    n = ff.n_utterances
    out = np.zeros(n, dtype=bool)
    if not pairs:
        return out
    for key, value in pairs:
        column = ff.field(key)
        if column is None:
            raise ExclusionError(f"{ff.path}: no utterance has a field {key!r} to exclude by (fields: {', '.join(FIELDS)} "
                                 f"and the manifest's own columns)")
        out |= np.array([v == value for v in column], dtype=bool)
    groups, labels = ff.column("group"), ff.column("label")
    taken = {groups[i] for i in np.flatnonzero(out) if groups[i] not in ("", "-")}
    keep_bonafide = all(labels[i] == "spoof" for i in np.flatnonzero(out))
    out |= np.array([g in taken and not (keep_bonafide and lab == "bonafide") for g, lab in zip(groups, labels)], dtype=bool)
    return out
