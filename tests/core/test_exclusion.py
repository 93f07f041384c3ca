"""`adfd train --exclude`: which utterances a held-out field leaves out of training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adfd_core.corpus import Utterance
from adfd_core.exclusion import ExclusionError, excluded
from adfd_core.store import FeatureFile, FeatureWriter, StoredUtterance
from adfd_core.trainset import load_rows

# (id, label, group, source)
ROWS = [
    ("real_a", "bonafide", "G1", "s1"),
    ("fake_a", "spoof", "G1", "s1"),
    ("real_copy", "bonafide", "G1", "s2"),   # a bona fide copy of the held-out recording: goes
    ("fake_other", "spoof", "G1", "s2"),     # another system's rendering of the held-out recording: goes
    ("real_b", "bonafide", "G2", "s2"),
    ("fake_b", "spoof", "G2", "s2"),
    ("fake_c", "spoof", "G3", "s3"),
    ("real_c", "bonafide", "-", "s3"),
]


def _file(path: Path) -> Path:
    spec = {"name": "toy", "version": 1, "params": {"sample_rate": 16000, "segment_seconds": 2.0}, "row_shape": [1, 2, 2]}
    writer = FeatureWriter.open(path, {"toy": spec}, identity="exclusion", provenance={"test": True})
    for i, (utt_id, label, group, source) in enumerate(ROWS):
        writer.add_rows("toy", np.full((1, 1, 2, 2), i, dtype=np.float32))
        utt = Utterance(id=utt_id, path=Path(f"/x/{utt_id}.wav"), label=label, attack="-" if label == "bonafide" else "A",
                        group=group, meta={"source": source})
        writer.end_utterance(StoredUtterance(utt, content_hash=f"{i:064x}", duration_s=2.0))
    return writer.finish()


def _left_out(path: Path, pairs) -> list[str]:
    with FeatureFile(path) as ff:
        mask = excluded(ff, pairs)
        return [ROWS[i][0] for i in np.flatnonzero(mask)]


def test_a_source_goes_with_every_utterance_of_its_groups_and_nothing_else(tmp_path):
    path = _file(tmp_path / "f.h5")
    assert _left_out(path, [("source", "s1")]) == ["real_a", "fake_a", "real_copy", "fake_other"]
    assert _left_out(path, [("source", "s3")]) == ["fake_c", "real_c"]   # "-" is no group: nothing else goes
    assert _left_out(path, [("id", "real_b")]) == ["real_b", "fake_b"]
    assert _left_out(path, []) == []


def test_held_out_fakes_keep_the_real_recordings_they_were_made_from(tmp_path):
    path = _file(tmp_path / "f.h5")
    assert _left_out(path, [("id", "fake_a")]) == ["fake_a", "fake_other"]
    assert _left_out(path, [("label", "spoof"), ("group", "G3")]) == ["fake_a", "fake_other", "fake_b", "fake_c"]


def test_several_pairs_add_up_and_a_file_column_works_like_a_meta_column(tmp_path):
    path = _file(tmp_path / "f.h5")
    assert _left_out(path, [("source", "s3"), ("group", "G2")]) == ["real_b", "fake_b", "fake_c", "real_c"]


def test_an_unknown_field_is_refused_by_name(tmp_path):
    path = _file(tmp_path / "f.h5")
    with FeatureFile(path) as ff, pytest.raises(ExclusionError, match="no utterance has a field 'sauce'"):
        excluded(ff, [("sauce", "s1")])


def test_training_rows_leave_out_the_excluded_utterances(tmp_path):
    path = _file(tmp_path / "f.h5")
    rows = load_rows(path, "toy", exclude=(("source", "s1"),))
    assert rows.utt_ids == ["real_b", "fake_b", "fake_c", "real_c"]
    assert sorted(rows.x[:, 0, 0, 0].tolist()) == [4.0, 5.0, 6.0, 7.0]
