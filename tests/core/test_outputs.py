"""adfd_core.outputs: outputs checked before the work, storage failures in one line, atomic text files."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from adfd_core import scoretable
from adfd_core.outputs import OutputError, atomic_text, check_output, storage_failure
from adfd_core.scoretable import ScoreTable, ScoreTableError, write_scores


def test_check_output_refuses_an_input_a_folder_and_a_file_in_the_way(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF")
    with pytest.raises(OutputError, match="is also an input"):
        check_output(tmp_path / "." / "a.wav", [tmp_path / "b.wav", audio])
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path, [])
    with pytest.raises(OutputError, match="a.wav is a file, not a folder"):
        check_output(audio / "scores.tsv", [])
    check_output(tmp_path / "new" / "deeper" / "scores.tsv", [audio])  # a folder still to be made is fine
    assert not (tmp_path / "new").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_storage_failure_reads_the_os_and_hdf5_forms_and_lets_others_pass():
    full = storage_failure(OSError(errno.ENOSPC, "No space left on device"), "x.h5")
    assert str(full) == "x.h5: cannot write: no space left on the device"
    hdf5 = RuntimeError("Can't decrement id ref count (file write failed: errno = 30, error message = 'Read-only file system')")
    assert str(storage_failure(hdf5, "x.h5.partial")) == "x.h5.partial: cannot write: read-only file system"
    assert storage_failure(RuntimeError("shape mismatch"), "x.h5") is None
    assert storage_failure(OSError(errno.ENOENT, "No such file"), "x.h5") is None


def _table(n: int) -> ScoreTable:
    return ScoreTable.build([f"u{i}" for i in range(n)], np.linspace(-2, 2, n))


def test_a_score_table_that_fails_mid_write_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    out = tmp_path / "scores.tsv"
    write_scores(_table(3), out)
    before, sidecar = out.read_text(), (tmp_path / "scores.tsv.meta.json").read_text()

    def disk_fills(table):
        yield "id\tscore\n"
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setitem(scoretable._LINES, "tsv", disk_fills)
    with pytest.raises(OutputError, match=r"scores.tsv: cannot write: no space left on the device"):
        write_scores(_table(5), out)
    assert out.read_text() == before
    assert (tmp_path / "scores.tsv.meta.json").read_text() == sidecar  # still the old table's provenance
    assert sorted(os.listdir(tmp_path)) == ["scores.tsv", "scores.tsv.meta.json"]  # no temporary file left beside them


def test_atomic_text_writes_through_a_device_it_cannot_replace():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(OutputError, match="/dev/full: cannot write: no space left on the device"):
        with atomic_text("/dev/full") as f:
            f.write("x" * 100_000)
    assert not os.path.isfile("/dev/full")  # still the device, not a file renamed over it


def test_writing_to_a_full_stdout_is_one_error_naming_stdout(monkeypatch):
    class Full:
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def writelines(self, lines):
            for line in lines:
                self.write(line)

        def flush(self):
            pass

    monkeypatch.setattr("sys.stdout", Full())
    with pytest.raises(ScoreTableError, match="<stdout>: cannot write: no space left on the device"):
        write_scores(_table(2), "-")
