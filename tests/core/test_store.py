"""The HDF5 feature file: round trip, commit/resume semantics, refusals, the torch Dataset."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from adfd_core import store
from adfd_core.corpus import Utterance
from adfd_core.store import FeatureFile, FeatureWriter, SegmentDataset, StoredUtterance, StoreError, describe, partial_path

SEG_SPEC = {"name": "toy", "version": 1, "params": {"sample_rate": 16000, "segment_seconds": 2.0}, "row_shape": [3, 4, 5]}
WAVE_SPEC = {"name": "wave", "version": 1, "params": {"sample_rate": 16000, "segment_seconds": None}, "row_shape": []}
SPECS = {"toy": SEG_SPEC, "wave": WAVE_SPEC}


def _utt(i: int, label: str = "spoof") -> StoredUtterance:
    u = Utterance(id=f"u{i}", path=Path(f"/data/u{i}.wav"), label=label, attack="A01" if label == "spoof" else "-",
                  speaker=f"s{i % 2}", group=f"g{i}", meta={"codec": "none", "i": str(i)})
    return StoredUtterance(u, content_hash=f"{i:064x}", duration_s=1.5 + i)


def _rows(i: int, n: int) -> np.ndarray:
    return np.random.default_rng(i).standard_normal((n, 3, 4, 5)).astype(np.float32)


def _wave(i: int) -> np.ndarray:
    return np.random.default_rng(100 + i).standard_normal(1000 + 10 * i).astype(np.float32)


def _add(writer: FeatureWriter, i: int, label: str = "spoof") -> None:
    writer.add_rows("toy", _rows(i, 1 + i % 3))
    writer.add_rows("wave", _wave(i))
    writer.end_utterance(_utt(i, label))


def _open(path: Path, identity: str = "id-1", force: bool = False) -> FeatureWriter | None:
    return FeatureWriter.open(path, SPECS, identity, {"command": ["adfd", "test"], "adfd_version": "x"}, force=force)


def _resume_after_u1_and_finish(out: Path) -> None:
    """Resume a run that committed u0 and u1, add u2 and u3, finish: the file holds all four as written."""
    w = _open(out)
    assert w.done_ids == {"u0", "u1"}
    _add(w, 2)
    _add(w, 3)
    w.finish()
    with FeatureFile(out) as ff:
        assert [s.utterance for s in ff.utterances()] == [_utt(i).utterance for i in range(4)]
        assert ff.features["toy"].n_rows == 1 + 2 + 3 + 1
        for i in range(4):
            np.testing.assert_array_equal(ff.rows("toy", i), _rows(i, 1 + i % 3))
            np.testing.assert_array_equal(ff.rows("wave", i), _wave(i))


def test_round_trip_keeps_rows_utterances_and_failures(tmp_path):
    out = tmp_path / "f.h5"
    w = _open(out)
    for i in range(4):
        _add(w, i, "bonafide" if i == 0 else "spoof")
    w.add_failure("bad", "/data/bad.wav", "empty file")
    assert w.finish() == out
    assert not partial_path(out).exists()
    with FeatureFile(out) as ff:
        assert ff.complete and ff.n_utterances == 4
        assert [s.utterance.id for s in ff.utterances()] == ["u0", "u1", "u2", "u3"]
        assert ff.utterances()[2] == _utt(2)
        for i in range(4):
            np.testing.assert_array_equal(ff.rows("toy", i), _rows(i, 1 + i % 3))
            np.testing.assert_array_equal(ff.rows("wave", i), _wave(i))
        assert ff.features["toy"].row_shape == (3, 4, 5) and ff.features["toy"].n_rows == 1 + 2 + 3 + 1
        assert ff.features["wave"].whole_utterance and not ff.features["toy"].whole_utterance
        assert ff.failures() == [{"id": "bad", "path": "/data/bad.wav", "reason": "empty file"}]
        with pytest.raises(StoreError, match="has no feature 'cqt'.*toy, wave"):
            ff.feature("cqt")
    d = describe(out)
    assert d["labels"] == {"spoof": 3, "bonafide": 1, "unknown": 0}
    assert d["attacks"] == {"A01": 3}
    assert d["command"] == ["adfd", "test"]
    assert d["total_duration_s"] == pytest.approx(sum(1.5 + i for i in range(4)))


def test_interrupted_run_is_invisible_then_resumes_without_uncommitted_rows(tmp_path):
    out = tmp_path / "f.h5"
    w = _open(out)
    _add(w, 0)
    _add(w, 1)
    w.commit()
    _add(w, 2)  # never committed: must vanish
    w.add_rows("toy", _rows(9, 2))  # an open utterance: also debris
    w._flush_rows()  # force the debris onto disk, as a crash after a flush would leave it
    w.close()
    assert not out.exists() and partial_path(out).exists()
    with pytest.raises(StoreError, match="interrupted run left .*partial"):
        FeatureFile(out)
    with pytest.raises(StoreError, match="incomplete feature file"):
        FeatureFile(partial_path(out))
    assert describe(partial_path(out))["n_utterances"] == 2

    _resume_after_u1_and_finish(out)


def test_resume_retries_earlier_failures(tmp_path):
    out = tmp_path / "f.h5"
    w = _open(out)
    w.add_failure("u5", "/data/u5.wav", "truncated")
    w.commit()
    w.close()
    w = _open(out)
    assert w.take_failures() == [("u5", "/data/u5.wav", "truncated")]
    w.finish()
    with FeatureFile(out) as ff:
        assert ff.failures() == []


def test_discard_utterance_after_partial_flush(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "_FLUSH_BYTES", 100)  # every add_rows flushes
    out = tmp_path / "f.h5"
    w = _open(out)
    _add(w, 0)
    w.add_rows("toy", _rows(7, 2))
    w.add_rows("wave", _wave(7))
    w.discard_utterance()
    _add(w, 1)
    w.finish()
    with FeatureFile(out) as ff:
        assert ff.n_utterances == 2 and ff.features["toy"].n_rows == 1 + 2
        np.testing.assert_array_equal(ff.rows("toy", 1), _rows(1, 2))
        np.testing.assert_array_equal(ff.rows("wave", 1), _wave(1))


def test_existing_outputs_are_kept_unless_forced(tmp_path):
    out = tmp_path / "f.h5"
    w = _open(out)
    _add(w, 0)
    w.finish()
    assert _open(out) is None  # same identity: already complete
    with pytest.raises(StoreError, match="exists and was made from other inputs.*--force"):
        _open(out, identity="id-2")
    w = _open(out, identity="id-2", force=True)
    assert w.done_ids == set() and not out.exists()
    w.finish()
    with FeatureFile(out) as ff:
        assert ff.n_utterances == 0

    other = tmp_path / "g.h5"
    _open(other).close()  # an interrupted partial of identity id-1
    with pytest.raises(StoreError, match="interrupted run with other inputs"):
        _open(other, identity="id-3")


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda h5: h5.attrs.__setitem__("format_version", 99), "format version 99; this adfd reads version 1"),
        (lambda h5: h5.attrs.__setitem__("format", "other"), "not an adfd feature file"),
    ],
)
def test_reader_refuses_foreign_and_newer_files(tmp_path, tamper, message):
    out = tmp_path / "f.h5"
    w = _open(out)
    _add(w, 0)
    w.finish()
    with h5py.File(out, "r+") as h5:
        tamper(h5)
    with pytest.raises(StoreError, match=message):
        FeatureFile(out)


def test_reader_refuses_non_hdf5(tmp_path):
    bogus = tmp_path / "f.h5"
    bogus.write_text("hello")
    with pytest.raises(StoreError, match="not an HDF5 feature file"):
        FeatureFile(bogus)


def test_segment_dataset_items_match_rows(tmp_path):
    import torch

    out = tmp_path / "f.h5"
    w = _open(out)
    for i in range(3):
        _add(w, i, "bonafide" if i == 1 else "spoof")
    w.finish()
    ds = SegmentDataset(out, "toy")
    assert len(ds) == 1 + 2 + 3
    x, label, utt = ds[1]  # first row of utterance 1
    assert isinstance(x, torch.Tensor) and x.shape == (3, 4, 5)
    np.testing.assert_array_equal(x.numpy(), _rows(1, 2)[0])
    assert (label, utt) == (store.LABEL_INDEX["bonafide"], 1)
    subset = SegmentDataset(out, "toy", utterance_indices=[2])
    assert len(subset) == 3 and {subset[k][2] for k in range(3)} == {2}
    clone = pickle.loads(pickle.dumps(ds))  # as DataLoader workers receive it
    np.testing.assert_array_equal(clone[5][0].numpy(), _rows(2, 3)[2])
    with pytest.raises(StoreError, match="whole waveforms"):
        SegmentDataset(out, "wave")


def _headers_only(part) -> None:
    part.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # a header and nothing usable


def _committed_partial(part) -> None:
    """What a killed run leaves: one committed utterance in ``part``."""
    w = _open(part.parent / part.name.removesuffix(".partial"))
    _add(w, 0)
    w.commit()
    w.close()


def _features_group_lost(part) -> None:
    _committed_partial(part)
    with h5py.File(part, "r+") as h5:
        del h5["features"]  # it opens, with its identity, but its features cannot be copied


def _identity_lost(part) -> None:
    _committed_partial(part)
    with h5py.File(part, "r+") as h5:
        del h5.attrs["identity"]  # not another run's file: nobody's


@pytest.mark.parametrize("damage", [_headers_only, _features_group_lost, _identity_lost],
                         ids=["unopenable", "structure-lost", "identity-lost"])
def test_unreadable_partial_from_a_hard_kill_is_restarted(tmp_path, caplog, damage):
    out = tmp_path / "f.h5"
    damage(partial_path(out))
    w = _open(out)
    assert w.done_ids == set()
    _add(w, 0)
    w.finish()
    assert "unreadable file" in caplog.text
    with FeatureFile(out) as ff:
        assert ff.n_utterances == 1


def test_resume_after_a_kill_between_writing_string_chunks_and_their_heap(tmp_path):
    """A kill inside a commit's flush can leave a string column's chunk on disk holding references,
    past the committed length, to heap objects that never reached the disk. Resuming must not touch them."""
    out = tmp_path / "f.h5"
    part = partial_path(out)
    w = _open(out)
    _add(w, 0)
    _add(w, 1)
    w.commit()
    committed = bytearray(part.read_bytes())
    _add(w, 2)
    w.commit()
    w.close()
    later = part.read_bytes()
    spliced = 0
    with h5py.File(part, "r") as h5:
        for ds in h5["utterances"].values():
            if h5py.check_string_dtype(ds.dtype):
                chunk = ds.id.get_chunk_info(0)
                committed[chunk.byte_offset : chunk.byte_offset + chunk.size] = later[chunk.byte_offset : chunk.byte_offset + chunk.size]
                spliced += 1
    assert spliced == len(store.STRING_FIELDS)
    part.write_bytes(committed)  # u2's strings are in its chunks but not in its heap

    _resume_after_u1_and_finish(out)


def test_end_batch_commits_once_commit_seconds_have_passed(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(store.time, "monotonic", lambda: clock[0])
    out = tmp_path / "f.h5"
    w = _open(out)
    _add(w, 0)
    w.end_batch()  # the file was just made: not due
    clock[0] += store.COMMIT_SECONDS
    _add(w, 1)
    w.end_batch()  # due: u0 and u1 are committed
    _add(w, 2)
    w.end_batch()  # just committed: u2 waits
    w.close()
    assert _open(out).done_ids == {"u0", "u1"}


# --------------------------------------------------------------------------- hostile files


@pytest.fixture
def finished(tmp_path) -> Path:
    """A complete feature file of three utterances (1, 2 and 3 toy rows; whole waves)."""
    w = _open(tmp_path / "f.h5")
    for i in range(3):
        _add(w, i)
    return w.finish()


def _refused(path: Path, message: str) -> None:
    with pytest.raises(StoreError, match=message) as err:
        describe(path)  # what `adfd info` prints; every reader opens the file the same way
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_storage_in_other_files_and_links_are_refused(finished, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"password=hunter2".ljust(64, b"\0"))
    with h5py.File(finished, "r+") as h5:
        del h5["utterances/duration_s"]
        h5["utterances"].create_dataset("duration_s", shape=(3,), dtype=np.float64, external=[(str(secret), 0, 24)])
    _refused(finished, r"/utterances/duration_s keeps its data in other files \(external storage\)")


@pytest.mark.parametrize(
    "link, message",
    [
        (lambda other: h5py.ExternalLink(str(other), "/utterances/id"), r"/utterances/id is an external link; feature files hold none"),
        (lambda other: h5py.SoftLink("/utterances/path"), r"/utterances/id is a soft link"),
        (lambda other: h5py.SoftLink("/utterances/id"), r"/utterances/id is a soft link"),  # a loop
    ],
)
def test_links_are_refused(finished, tmp_path, link, message):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5.create_dataset("utterances/id", data=["x", "y", "z"])
    with h5py.File(finished, "r+") as h5:
        del h5["utterances/id"]
        h5["utterances/id"] = link(other)
    _refused(finished, message)


def test_a_virtual_dataset_reading_another_file_is_refused(finished, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["d"] = np.arange(3.0)
    layout = h5py.VirtualLayout(shape=(3,), dtype=np.float64)
    layout[:] = h5py.VirtualSource(str(other), "d", shape=(3,))
    with h5py.File(finished, "r+") as h5:
        del h5["utterances/duration_s"]
        h5["utterances"].create_virtual_dataset("duration_s", layout)
    _refused(finished, r"duration_s keeps its data in other files \(virtual storage\)")


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda h5: h5.attrs.__setitem__("n_utterances", 10**9), r"declares 1000000000 rows of /utterances/id but holds 3"),
        (lambda h5: h5.attrs.__setitem__("n_failures", 2**40), r"declares 1099511627776 rows of /failures/id but holds 0"),
        (lambda h5: h5.attrs.__setitem__("n_utterances", -1), r"attribute n_utterances is -1, not a count"),
        (lambda h5: h5["features/toy"].attrs.__setitem__("n_rows", 2**40), r"declares 1099511627776 rows of /features/toy/data but holds 6"),
        (lambda h5: h5["features/toy/count"].__setitem__(1, 2**40), r"feature 'toy' gives utterance 1 rows 1 to 1 \+ 1099511627776, outside its 6 rows"),
        (lambda h5: h5["features/toy/count"].__setitem__(2, -2), r"utterance 2 rows 3 to 3 \+ -2"),
        (lambda h5: h5["features/toy/start"].__setitem__(0, 2**62), r"utterance 0 rows 4611686018427387904 to"),
        (lambda h5: h5["features/wave/count"].__setitem__(0, 2**62), r"feature 'wave' gives utterance 0 rows 0 to 0 \+ 4611686018427387904"),
        (lambda h5: h5["utterances"].pop("label"), r"not a complete feature file \(it lacks /utterances/label\)"),
        (lambda h5: h5["features/toy"].attrs.__setitem__("spec", "[1]"), r"feature 'toy' has a spec without params"),
    ],
)
def test_declared_counts_are_checked_against_the_stored_data_first(finished, tamper, message):
    with h5py.File(finished, "r+") as h5:
        tamper(h5)
    _refused(finished, message)


def test_a_shape_that_no_stored_data_backs_is_refused(finished):
    with h5py.File(finished, "r+") as h5:  # 2^40 rows in the shape cost nothing on disk: no chunk is written
        h5["features/toy/data"].resize(2**40, axis=0)
        h5["features/toy"].attrs["n_rows"] = 2**40
        h5["features/toy/count"][2] = 2**40 - 3
    _refused(finished, r"declares 1099511627776 rows of /features/toy/data but holds \d+$")


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda h5: h5.attrs.__setitem__("provenance", "[" * 100_000), r"attribute provenance is not valid JSON \(nested deeper than 64 levels"),
        (lambda h5: h5["features/toy"].attrs.__setitem__("spec", '{"a": ' * 5000 + "1" + "}" * 5000), r"attribute spec is not valid JSON \(nested deeper"),
        (lambda h5: h5["utterances/meta"].__setitem__(1, "[" * 100_000), r"utterance 'u1' has meta that is not valid JSON \(nested deeper than 64"),
    ],
)
def test_deeply_nested_json_is_refused(finished, tamper, message):
    with h5py.File(finished, "r+") as h5:
        tamper(h5)
    with pytest.raises(StoreError, match=message) as err:
        with FeatureFile(finished) as ff:
            ff.utterances()
    assert str(finished) in str(err.value) and "\n" not in str(err.value)
