"""Outputs other tools read as they are (issue 17): plain score tables with provenance beside them,
audio on stdin, ids that stay unique, outputs that are not overwritten by mistake, split manifests,
and folders read through their manifest. Every run is a subprocess, as a user runs `adfd`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import struct
import subprocess
from types import SimpleNamespace

import pytest

import audio_factory
from adfd_core.scoretable import read_scores
from model_factory import tiny_model

from .helpers import ADFD, adfd, make_corpus

COLUMNS = ["id", "path", "score", "p_spoof", "decision", "label", "attack"]


@pytest.fixture(autouse=True)
def wide_stderr(monkeypatch):
    """Messages on stderr unwrapped, so that a long path in one reads whole."""
    monkeypatch.setenv("COLUMNS", "10000")


@pytest.fixture(scope="module")
def s(tmp_path_factory):
    """A labelled corpus of four clips and a tiny model."""
    root = tmp_path_factory.mktemp("tables")
    make_corpus(root / "corpus", audio_factory, n_real=2, n_fake=2, seconds=1.5)
    return SimpleNamespace(root=root, corpus=root / "corpus", model=tiny_model(root / "m.safetensors", "stft-lf", seed=1))


def adfd_bytes(*args: str, stdin: bytes) -> subprocess.CompletedProcess:
    """Run `adfd ARGS` with ``stdin`` as binary standard input; stdout and stderr as text."""
    done = subprocess.run([*ADFD, *args], input=stdin, capture_output=True, timeout=240, check=False)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def streamed(wav: bytes) -> bytes:
    """A WAV file's bytes as ffmpeg writes them to a pipe, where it cannot go back: RIFF and data sizes unknown (0xFFFFFFFF)."""
    data = wav.index(b"data")
    unknown = struct.pack("<I", 0xFFFFFFFF)
    return wav[:4] + unknown + wav[8 : data + 4] + unknown + wav[data + 8 :]


# --------------------------------------------------------------------------- 1: tables that load as they are


def test_a_score_table_loads_in_pandas_and_its_provenance_lies_beside_it(s):
    pandas = pytest.importorskip("pandas")
    out = s.root / "scores.tsv"
    done = adfd("score", str(s.corpus), "-m", str(s.model), "-o", str(out))
    assert done.returncode == 0, done.stderr
    frame = pandas.read_csv(out, sep="\t")
    assert list(frame.columns) == COLUMNS and len(frame) == 4
    assert frame["score"].dtype.kind == "f" and set(frame["label"]) == {"bonafide", "spoof"}
    made = json.loads(out.with_name("scores.tsv.meta.json").read_text())
    assert made["models"][0]["path"] == str(s.model) and "adfd_version" in made

    info = adfd("info", str(out), "--json")
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)
    assert made.pop("table_sha256") == hashlib.sha256(out.read_bytes()).hexdigest()  # the table it describes
    assert described["provenance_from"] == "sidecar" and described["provenance"] == made
    assert described["rows"] == 4 and described["labels"] == {"bonafide": 2, "spoof": 2}
    text = adfd("info", str(out))
    assert f"provenance ({out}.meta.json):" in text.stdout and "adfd_version: " in text.stdout


def test_stdout_holds_the_table_alone_unless_provenance_is_asked_for(s):
    plain = adfd("score", str(s.corpus), "-m", str(s.model))
    assert plain.returncode == 0, plain.stderr
    rows = list(csv.reader(io.StringIO(plain.stdout), delimiter="\t"))  # how awk and csvkit split it
    assert rows[0] == COLUMNS and len(rows) == 5 and all(len(r) == 7 for r in rows)

    inline = adfd("score", str(s.corpus), "-m", str(s.model), "--provenance")
    assert inline.stdout.startswith("# adfd_version: ")
    table = read_scores(io.StringIO(inline.stdout))
    assert table.ids == read_scores(io.StringIO(plain.stdout)).ids and "models" in table.provenance

    jsonl = adfd("score", str(s.corpus), "-m", str(s.model), "--format", "jsonl", "--provenance")
    first, *records = jsonl.stdout.splitlines()
    assert list(json.loads(first)) == ["_meta"] and len(records) == 4
    evaluated = adfd("evaluate", "-", "--json", stdin=jsonl.stdout)  # the metadata record is no row
    assert evaluated.returncode == 0, evaluated.stderr
    assert (json.loads(evaluated.stdout)["n_bonafide"], json.loads(evaluated.stdout)["n_spoof"]) == (2, 2)

    refused = adfd("score", str(s.corpus), "-m", str(s.model), "--format", "asvspoof2021", "--provenance")
    assert refused.returncode == 2 and "--provenance" in refused.stderr


def test_fuse_reads_tables_with_and_without_provenance_lines_and_writes_a_plain_one(s, tmp_path):
    old = tmp_path / "old.tsv"  # as adfd wrote tables before: '#' provenance lines first
    old.write_text('# adfd_version: 0.1.0\n# models: [{"model": "cnn.v1"}]\n'
                   "id\tscore\tlabel\na\t1.5\tbonafide\nb\t-2\tspoof\n")
    new = tmp_path / "new.jsonl"
    new.write_text('{"_meta": {"adfd_version": "0.2.0"}}\n{"id": "a", "score": 0.5}\n{"id": "b", "score": -1}\n')
    out = tmp_path / "fused.tsv"
    done = adfd("fuse", str(old), str(new), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines()[0] == "\t".join(COLUMNS)
    made = json.loads((tmp_path / "fused.tsv.meta.json").read_text())
    assert [i["source"] for i in made["inputs"]] == [str(old), str(new)] and made["fusion"] == "mean"
    assert read_scores(old).provenance["models"] == [{"model": "cnn.v1"}]


# --------------------------------------------------------------------------- 2: audio on stdin


def test_audio_on_stdin_is_scored_and_featurized(s, tmp_path):
    signal = audio_factory.vowel(120, seconds=1.5, seed=3)
    wav = audio_factory.write(tmp_path / "clip.wav", signal)
    mp3 = audio_factory.encode(tmp_path / "clip.mp3", signal)

    from_file = read_scores(io.StringIO(adfd("score", str(wav), "-m", str(s.model)).stdout))
    piped = adfd_bytes("score", "-", "-m", str(s.model), stdin=streamed(wav.read_bytes()))
    assert piped.returncode == 0, piped.stderr
    table = read_scores(io.StringIO(piped.stdout))
    assert (table.ids, table.paths) == (["stdin"], ["-"])
    assert table.p_spoof[0] == pytest.approx(from_file.p_spoof[0], abs=1e-4)  # the same audio, the same score

    encoded = adfd_bytes("score", "-", "-m", str(s.model), "--format", "jsonl", stdin=mp3.read_bytes())
    assert encoded.returncode == 0, encoded.stderr
    assert json.loads(encoded.stdout)["id"] == "stdin"

    feats = tmp_path / "f.h5"
    done = adfd_bytes("featurize", "-", "-o", str(feats), "-f", "stft-lf", stdin=streamed(wav.read_bytes()))
    assert done.returncode == 0, done.stderr
    described = json.loads(adfd("info", str(feats), "--json").stdout)
    assert described["n_utterances"] == 1 and described["total_duration_s"] == pytest.approx(1.5, abs=0.01)

    for stdin, reason in ((b"", "no audio on standard input"), (b"not audio at all" * 100, "not a decodable audio file")):
        bad = adfd_bytes("score", "-", "-m", str(s.model), stdin=stdin)
        assert bad.returncode in (1, 3) and reason in bad.stderr and "Traceback" not in bad.stderr


# --------------------------------------------------------------------------- 3: ids made unique


def test_files_sharing_a_stem_and_a_file_given_twice_are_scored(s, tmp_path):
    signal = audio_factory.chirp(300, 4000, seconds=1.2)
    wav = audio_factory.write(tmp_path / "calls" / "a.wav", signal)
    flac = audio_factory.write(tmp_path / "calls" / "a.flac", 0.5 * signal)
    done = adfd("score", str(wav), str(flac), str(wav), "-m", str(s.model))
    assert done.returncode == 0, done.stderr
    table = read_scores(io.StringIO(done.stdout))
    assert table.ids == ["a.wav", "a.flac"] and table.paths == [str(wav), str(flac)]
    assert f"{wav}: listed more than once; taken once" in done.stderr

    feats = tmp_path / "calls.h5"
    done = adfd("featurize", str(tmp_path / "calls"), "-o", str(feats), "-f", "stft-lf")
    assert done.returncode == 0, done.stderr
    assert "2 files share the id 'a'" in done.stderr
    assert json.loads(adfd("info", str(feats), "--json").stdout)["n_utterances"] == 2


# --------------------------------------------------------------------------- 10: no overwriting by mistake


def test_score_refuses_to_replace_a_table_made_from_other_inputs(s, tmp_path):
    clips = [audio_factory.write(tmp_path / f"{name}.wav", audio_factory.noise(1.0, seed=i)) for i, name in enumerate("xy")]
    out = tmp_path / "t.tsv"
    assert adfd("score", str(clips[0]), "-m", str(s.model), "-o", str(out)).returncode == 0
    first = out.read_text()
    again = adfd("score", str(clips[0]), "-m", str(s.model), "-o", str(out))  # the same inputs: a rerun
    assert again.returncode == 0, again.stderr
    other = adfd("score", str(clips[1]), "-m", str(s.model), "-o", str(out))
    assert other.returncode == 1
    assert f"{out}: exists and was made from other inputs; use --force to overwrite it" in other.stderr
    assert out.read_text() == first
    forced = adfd("score", str(clips[1]), "-m", str(s.model), "-o", str(out), "--force")
    assert forced.returncode == 0 and read_scores(out).ids == ["y"]
    foreign = tmp_path / "notes.tsv"
    foreign.write_text("mine\n")
    assert adfd("score", str(clips[0]), "-m", str(s.model), "-o", str(foreign)).returncode == 1
    assert foreign.read_text() == "mine\n"


def test_evaluate_plot_and_split_refuse_to_replace_other_outputs(s, tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text("id\tscore\tlabel\na\t2\tbonafide\nb\t-1\tspoof\nc\t0.5\tspoof\nd\t1\tbonafide\n")
    other = tmp_path / "u.tsv"
    other.write_text("id\tscore\tlabel\na\t-2\tbonafide\nb\t1\tspoof\n")
    plot = tmp_path / "p.png"
    assert adfd("evaluate", str(table), "--plot", str(plot)).returncode == 0
    assert adfd("evaluate", str(table), "--plot", str(plot)).returncode == 0  # the same table again
    refused = adfd("evaluate", str(other), "--plot", str(plot))
    assert refused.returncode == 1 and "use --force to overwrite it" in refused.stderr
    assert adfd("evaluate", str(other), "--plot", str(plot), "--force").returncode == 0
    assert json.loads((tmp_path / "p.png.meta.json").read_text())["scores"] == str(other)

    splits = tmp_path / "splits"
    assert adfd("split", str(s.corpus), "-o", str(splits), "--by", "id").returncode == 0
    assert adfd("split", str(s.corpus), "-o", str(splits), "--by", "id").returncode == 0  # the same manifests
    before = (splits / "train.tsv").read_text()
    moved = adfd("split", str(s.corpus), "-o", str(splits), "--by", "id", "--seed", "7", "--test", "0.5")
    assert moved.returncode == 1 and "use --force to overwrite it" in moved.stderr
    assert (splits / "train.tsv").read_text() == before
    assert adfd("split", str(s.corpus), "-o", str(splits), "--by", "id", "--seed", "7", "--test", "0.5", "--force").returncode == 0


# --------------------------------------------------------------------------- 12: three manifests always


def test_split_by_speaker_writes_all_three_manifests_even_an_empty_one(s, tmp_path):
    manifest = tmp_path / "m.tsv"
    rows = [f"{p}\t{'bonafide' if 'bonafide' in str(p) else 'spoof'}\t{'A' if i < 3 else 'B'}"
            for i, p in enumerate(sorted(s.corpus.rglob("*.*")))]
    manifest.write_text("path\tlabel\tspeaker\n" + "\n".join(rows) + "\n")
    out = tmp_path / "splits"
    done = adfd("split", str(manifest), "-o", str(out), "--by", "speaker")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(out / f"{n}.tsv") for n in ("train", "val", "test")]
    sizes = {n: len((out / f"{n}.tsv").read_text().splitlines()) - 1 for n in ("train", "val", "test")}
    assert sum(sizes.values()) == 4 and 0 in sizes.values()
    empty = next(n for n, size in sizes.items() if size == 0)
    assert (out / f"{empty}.tsv").read_text().startswith("id\tpath\tlabel\t")  # a header that featurize reads
    assert f"no utterances fall in the {empty} split" in done.stderr


# --------------------------------------------------------------------------- 13: a folder's own manifest


def test_featurize_reads_a_folder_through_its_manifest_and_says_so(s, tmp_path):
    corpus = tmp_path / "devset"
    real = audio_factory.write(corpus / "bonafide" / "ljs" / "r1.wav", audio_factory.vowel(130, seconds=1.2))
    fake = audio_factory.write(corpus / "spoof" / "ljs" / "f1.wav", audio_factory.chirp(200, 5000, seconds=1.2))
    (corpus / "manifest.tsv").write_text("path\tlabel\tfamily\tsystem\tsource\tgroup\n"
                                         f"{real.relative_to(corpus)}\tbonafide\tbonafide\tbonafide\tljs\tg1\n"
                                         f"{fake.relative_to(corpus)}\tspoof\tdiffwave\tdiffwave_v2\tljs\tg1\n")
    feats = tmp_path / "f.h5"
    done = adfd("featurize", str(corpus), "-o", str(feats), "-f", "stft-lf")
    assert done.returncode == 0, done.stderr
    assert f"{corpus / 'manifest.tsv'}: 2 recordings, labels and columns" in done.stderr
    described = json.loads(adfd("info", str(feats), "--json").stdout)
    assert described["attacks"] == {"diffwave": 1}  # the manifest's family, not the source folder "ljs"
