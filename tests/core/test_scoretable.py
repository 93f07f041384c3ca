"""Score tables: round trips in every format, the ASVspoof formats, clear errors, labels from keys."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from adfd_core.errors import AdfdError
from adfd_core.scoretable import (
    COLUMNS,
    FORMATS,
    SCORE_LIMIT,
    ScoreTable,
    ScoreTableError,
    apply_key,
    decide,
    describe_scores,
    log_odds,
    read_provenance,
    read_scores,
    spoof_probability,
    write_scores,
)


def sample() -> ScoreTable:
    """Labelled rows, a row that failed (NaN score, error text) and provenance."""
    return ScoreTable.build(
        ["LA_E_1", "LA_E_2", "LA_E_3", "LA_E_4"],
        [2.5, -0.1, float("nan"), 1 / 3],
        paths=["/a/LA_E_1.flac", "/a/LA_E_2.flac", "/a/LA_E_3.flac", "/a/LA_E_4.flac"],
        labels=["bonafide", "spoof", "spoof", "bonafide"],
        attacks=["-", "A07", "A10", "-"],
        extra={"error": ["", "", "cannot decode: truncated", ""]},
        provenance={"adfd_version": "0.1.0", "models": [{"model": "cnn.v1", "sha256": "abc"}]},
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_build_derives_probability_and_decision_from_the_log_odds():
    t = sample()
    np.testing.assert_allclose(t.p_spoof[[0, 1, 3]], 1 / (1 + np.exp([2.5, -0.1, 1 / 3])))
    assert math.isnan(t.p_spoof[2])
    assert t.decisions == ["bonafide", "spoof", "-", "bonafide"]
    assert decide(np.array([0.0, -1e-9])) == ["bonafide", "spoof"] and spoof_probability(np.array([0.0]))[0] == 0.5
    np.testing.assert_allclose(log_odds([0.0, 0.2, 1.0, np.nan]), [SCORE_LIMIT, np.log(4), -SCORE_LIMIT, np.nan])
    np.testing.assert_allclose(spoof_probability(log_odds([0.2, 0.7])), [0.2, 0.7])


def test_tsv_round_trip_keeps_every_column_exactly(tmp_path):
    t = sample()
    path = tmp_path / "s.tsv"
    write_scores(t, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "id\tpath\tscore\tp_spoof\tdecision\tlabel\tattack\terror"  # the table holds no provenance
    back = read_scores(path)
    for column in ("ids", "paths", "decisions", "labels", "attacks", "extra"):
        assert getattr(back, column) == getattr(t, column), column
    np.testing.assert_array_equal(back.scores, t.scores)  # exact, NaN included
    np.testing.assert_array_equal(back.p_spoof, t.p_spoof)
    assert back.source == str(path) and len(back.sha256) == 64
    assert back.provenance == t.provenance and read_provenance(path) == (t.provenance, "sidecar")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads((tmp_path / "s.tsv.meta.json").read_text()) == {**t.provenance, "table_sha256": sha}


def test_a_sidecar_describes_only_the_table_it_was_written_with(tmp_path):
    path = tmp_path / "s.tsv"
    write_scores(sample(), path, inline_provenance=True)
    path.write_text(path.read_text().replace("LA_E_1\t", "LA_E_9\t"))  # changed by hand since
    assert read_provenance(path) == (sample().provenance, "table")  # what the table holds, not the stale sidecar
    path.write_text("id\tscore\nx\t1\n")
    assert read_scores(path).provenance == {} and read_provenance(path) == ({}, "none")
    assert describe_scores(path)["sidecar_outdated"]


def test_a_written_tsv_parses_as_pandas_and_csvkit_parse_it(tmp_path):
    """pandas.read_csv(sep="\t") and csvkit take the first line as the header and every other as a row:
    the csv module in the same dialect shows what they see."""
    path = tmp_path / "s.tsv"
    write_scores(sample(), path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert list(rows[0]) == [*COLUMNS, "error"] and [r["id"] for r in rows] == sample().ids
    assert [float(r["score"]) for r in rows][:2] == [2.5, -0.1]


@pytest.mark.parametrize("fmt, first", [("tsv", "# adfd_version: 0.1.0"), ("jsonl", '{"_meta": {"adfd_version": "0.1.0", ')])
def test_provenance_inside_the_table_when_asked_is_read_back(tmp_path, fmt, first):
    t = sample()
    path = tmp_path / f"s.{fmt}"
    write_scores(t, path, fmt, inline_provenance=True)
    assert path.read_text().startswith(first)
    (tmp_path / f"s.{fmt}.meta.json").unlink()
    back = read_scores(path)
    assert back.provenance == t.provenance and back.ids == t.ids
    assert read_provenance(path) == (t.provenance, "table")
    with pytest.raises(ValueError, match="asvspoof2021 format carries no provenance"):
        write_scores(t, tmp_path / "x.txt", "asvspoof2021", inline_provenance=True)


def test_tables_of_earlier_versions_keep_their_provenance_lines_readable(tmp_path):
    path = write(tmp_path / "old.tsv", '# adfd_version: 0.1.0\n# models: [{"model": "cnn.v1"}]\n# by hand\n'
                                       "id\tscore\nx\t1.5\n")
    t = read_scores(path)
    assert t.ids == ["x"] and t.provenance == {"adfd_version": "0.1.0", "models": [{"model": "cnn.v1"}], "comments": ["by hand"]}


def test_jsonl_round_trip(tmp_path):
    t = sample()
    write_scores(t, tmp_path / "s.jsonl", "jsonl")
    back = read_scores(tmp_path / "s.jsonl")
    for column in ("ids", "paths", "decisions", "labels", "attacks", "extra"):
        assert getattr(back, column) == getattr(t, column), column
    np.testing.assert_array_equal(back.scores, t.scores)
    np.testing.assert_array_equal(back.p_spoof, t.p_spoof)


def test_a_deeply_nested_jsonl_row_is_one_line_naming_it(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a", "score": 1}\n{"id": "b", "score": 2, "x": ' + "[" * 100_000 + "\n")
    with pytest.raises(ScoreTableError, match=rf"^{re.escape(str(path))}:2: not JSON \(nested deeper than 64 levels\)$"):
        read_scores(path)


@pytest.mark.parametrize("fmt, labelled", [("asvspoof2019", True), ("asvspoof2021", False), ("asvspoof5", False)])
def test_asvspoof_round_trips_keep_ids_scores_and_what_the_format_holds(tmp_path, fmt, labelled):
    t = sample()
    path = tmp_path / f"s.{fmt}"
    write_scores(t, path, fmt)
    assert "#" not in path.read_text()  # the official scorers do not skip comments
    back = read_scores(path)
    assert back.ids == t.ids
    np.testing.assert_array_equal(back.scores, t.scores)
    assert back.labels == (t.labels if labelled else ["unknown"] * 4)
    assert back.attacks == (t.attacks if labelled else ["-"] * 4)


def test_every_format_writes_to_stdout_and_reads_from_stdin(capsys, monkeypatch):
    for fmt in FORMATS:
        write_scores(sample(), "-", fmt)
        text = capsys.readouterr().out
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        back = read_scores("-")
        assert back.ids == sample().ids and back.source == "<stdin>", fmt


def test_reads_asvspoof2019_cm_scores(tmp_path):
    path = write(tmp_path / "cm.txt", "LA_E_2834763 A11 spoof -3.2\nLA_E_8877452 - bonafide 4.1\n\nLA_E_6828287 A17 spoof 0.25\n")
    t = read_scores(path)
    assert t.ids == ["LA_E_2834763", "LA_E_8877452", "LA_E_6828287"]
    np.testing.assert_array_equal(t.scores, [-3.2, 4.1, 0.25])
    assert t.labels == ["spoof", "bonafide", "spoof"] and t.attacks == ["A11", "-", "A17"]
    assert t.decisions == ["spoof", "bonafide", "bonafide"]


def test_reads_asvspoof2021_and_asvspoof5_scores(tmp_path):
    t = read_scores(write(tmp_path / "s21.txt", "LA_E_9332881 -2.1\nLA_E_5932896 3\n"))
    assert t.ids == ["LA_E_9332881", "LA_E_5932896"] and t.labels == ["unknown", "unknown"]
    np.testing.assert_array_equal(t.scores, [-2.1, 3.0])
    t5 = read_scores(write(tmp_path / "s5.tsv", "filename\tcm-score\tcm-label\nE_000001\t0.01\tbonafide\nE_000002\t-2\tspoof\n"))
    assert t5.ids == ["E_000001", "E_000002"] and t5.labels == ["bonafide", "spoof"]
    np.testing.assert_array_equal(t5.scores, [0.01, -2.0])


def test_a_partial_adfd_tsv_gets_defaults_and_comments_are_skipped(tmp_path):
    t = read_scores(write(tmp_path / "s.tsv", "# made by hand\n\nID\tScore\tlabel\tnote\nx\t-1.5\tfake\thello\ny\tnan\t\t\n"))
    assert t.provenance == {"comments": ["made by hand"]} and t.ids == ["x", "y"]
    assert t.labels == ["spoof", "unknown"] and t.paths == ["-", "-"] and t.decisions == ["spoof", "-"]
    assert t.extra == {"note": ["hello", ""]}
    assert t.p_spoof[0] == pytest.approx(1 / (1 + np.exp(-1.5)))


@pytest.mark.parametrize(
    "text, message",
    [
        ("id\tscore\nx\t1\ny\tabc\n", r":3: score 'abc' is not a number"),
        ("# c\nid\tscore\nx\t1\ny\t2\nx\t3\n", r":5: duplicate id 'x'"),
        ("id\tscore\tlabel\nx\t1\n", r":2: expected 3 tab-separated fields \(as in the header\), found 2"),
        ("LA_E_1 1.0\nLA_E_2 1.0 extra\n", r":2: expected 2 fields \(ID SCORE\), found 3"),
        ("id\tscore\tlabel\nx\t1\tmaybe\n", r":2: unknown label 'maybe'"),
        ("id\tscore\tp_spoof\nx\t1\t1.5\n", r":2: p_spoof 1.5 is not in \[0, 1\]"),
        ("id\tscore\tdecision\nx\t1\tyes\n", r":2: decision 'yes' is neither"),
        ("id\tscore\tscore\nx\t1\t2\n", r":1: column 'score' appears more than once"),
        ("LA_E_1 A01 spoof 1\nLA_E_2 A01 spoof\n", r":2: expected 4 fields \(ID ATTACK KEY SCORE\), found 3"),
        ("LA_E_1 1.0\nLA_E_2 one\n", r":2: score 'one' is not a number"),
        ('{"id": "a", "score": 1}\n{"id": "b"\n', r":2: not JSON"),
        ("just some words here now\n", r": unrecognised score table"),
        ("# only a comment\n", r": no scores"),
        ("id\tscore\n", r": no rows after the header"),
    ],
)
def test_malformed_tables_name_the_file_and_line(tmp_path, text, message):
    path = write(tmp_path / "bad.tsv", text)
    with pytest.raises(ScoreTableError, match=str(path).replace(".", r"\.") + message):
        read_scores(path)


def test_unreadable_sources_are_clear_errors(tmp_path):
    with pytest.raises(ScoreTableError, match="no such file"):
        read_scores(tmp_path / "missing.tsv")
    with pytest.raises(ScoreTableError, match="is a folder"):
        read_scores(tmp_path)
    (tmp_path / "bin.tsv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ScoreTableError, match="not a UTF-8 text file"):
        read_scores(tmp_path / "bin.tsv")
    assert issubclass(ScoreTableError, AdfdError)


def test_asvspoof2019_output_refuses_unlabelled_rows(tmp_path):
    t = ScoreTable.build(["a", "b"], [1.0, -1.0], labels=["spoof", "unknown"])
    with pytest.raises(ScoreTableError, match="1 rows have no label"):
        write_scores(t, tmp_path / "x.txt", "asvspoof2019")
    assert not (tmp_path / "x.txt").exists()


# --------------------------------------------------------------------------- keys


def unlabelled(ids: list[str]) -> ScoreTable:
    return ScoreTable.build(ids, np.arange(len(ids), dtype=float), source="s.tsv")


def test_key_from_an_asvspoof2019_protocol_without_the_audio(tmp_path):
    key = write(tmp_path / "ASVspoof2019.LA.cm.eval.trl.txt",
                "LA_0039 LA_E_2834763 - A11 spoof\nLA_0014 LA_E_8877452 - - bonafide\n")
    t = apply_key(unlabelled(["LA_E_8877452", "LA_E_2834763", "LA_E_0000000"]), key)
    assert t.labels == ["bonafide", "spoof", "unknown"]  # rows the key does not list keep their label
    assert t.attacks == ["-", "A11", "-"]


def test_key_from_an_asvspoof2021_key_keeps_its_subset(tmp_path):
    key = write(tmp_path / "trial_metadata.txt",
                "LA_0007 LA_E_5932896 alaw ita_tx bonafide bonafide notrim eval\n"
                "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim progress\n")
    ids = ["LA_E_5932896", "LA_E_9332881"]
    assert apply_key(unlabelled(ids), key, subset="eval").labels == ["bonafide", "unknown"]
    assert apply_key(unlabelled(ids), key).labels == ["bonafide", "spoof"]


def test_key_matches_in_the_wild_and_manifests_by_utterance_name(tmp_path):
    itw = write(tmp_path / "meta.csv", "file,speaker,label\n0.wav,Alec Guinness,spoof\n4.wav,Christopher Hitchens,bona-fide\n")
    assert apply_key(unlabelled(["4", "release_in_the_wild/0"]), itw).labels == ["bonafide", "spoof"]
    manifest = write(tmp_path / "m.tsv", "path\tlabel\tattack\nbonafide/spk1/a.wav\tbonafide\t\nspoof/x/b.flac\tspoof\tx\n")
    t = apply_key(unlabelled(["b", "bonafide/spk1/a"]), manifest)
    assert t.labels == ["spoof", "bonafide"] and t.attacks == ["x", "-"]


def test_key_errors(tmp_path):
    key = write(tmp_path / "k.tsv", "path\tlabel\nreal/a.wav\tbonafide\nfake/a.wav\tspoof\n")
    with pytest.raises(ScoreTableError, match=r"k\.tsv: several entries are named 'a'"):
        apply_key(unlabelled(["a"]), key)
    assert apply_key(unlabelled(["fake/a"]), key).labels == ["spoof"]  # the exact id still matches
    with pytest.raises(ScoreTableError, match=r"k\.tsv: none of the 1 ids of s\.tsv is listed"):
        apply_key(unlabelled(["zzz"]), key)
    with pytest.raises(AdfdError, match="no such file"):
        apply_key(unlabelled(["a"]), tmp_path / "missing.txt")


# Names a Linux file may have (issue 15): bytes that are not UTF-8, line breaks, tabs, spaces, backslashes.
HOSTILE_IDS = [
    "bad\udcff\udcfename", "new\nline", "carriage\rreturn", "tab\there", "with space", "no\u00a0break",
    "line\u2028separator", "back\\slash", "looks\\x41escaped", "café", "plain",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_any_file_name_round_trips_in_every_format(tmp_path, fmt):
    n = len(HOSTILE_IDS)
    table = ScoreTable.build(
        HOSTILE_IDS, np.linspace(-2, 2, n), paths=[f"/d/{i}.wav" for i in HOSTILE_IDS], labels=["spoof"] * n,
        attacks=["my attack\tx"] * n, extra={"error": ["line one\nline two"] * n}, provenance={"source": "/d/\udcff\n"},
    )
    out = tmp_path / f"t.{fmt}"
    write_scores(table, out, fmt, inline_provenance=fmt in ("tsv", "jsonl"))
    text = out.read_text(encoding="utf-8")  # valid UTF-8, one line per row
    rows = [line for line in text.splitlines() if not line.startswith(("#", '{"_meta"'))]
    assert len(rows) == n + (fmt in ("tsv", "asvspoof5"))
    back = read_scores(out)
    assert back.ids == HOSTILE_IDS
    assert back.scores.tolist() == table.scores.tolist()
    if fmt in ("tsv", "jsonl"):
        assert back.paths == table.paths and back.extra["error"] == table.extra["error"]
    if fmt in ("tsv", "jsonl", "asvspoof2019"):
        assert back.attacks == table.attacks
    if fmt in ("tsv", "jsonl"):
        assert back.provenance == table.provenance


def test_asvspoof_score_files_keep_one_whitespace_free_id_per_line(tmp_path):
    table = ScoreTable.build(["a b", "c\u3000d"], [1.0, -1.0], labels=["bonafide", "spoof"], attacks=["-", "A 1"])
    for fmt, width in (("asvspoof2019", 4), ("asvspoof2021", 2)):
        write_scores(table, tmp_path / fmt, fmt)
        lines = (tmp_path / fmt).read_text().splitlines()
        assert [len(line.split()) for line in lines] == [width, width]
        assert lines[0].startswith("a\\x20b ")
