"""Corpus readers: folders, path lists, manifests, ASVspoof 2019/2021, In-the-Wild, and the dispatcher."""

from __future__ import annotations

import io
import logging
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from adfd_core.corpus import (
    LABELS,
    CorpusError,
    Utterance,
    from_asvspoof2019,
    from_asvspoof2021,
    from_folder,
    from_in_the_wild,
    from_list,
    from_manifest,
    normalize_label,
    read_corpus,
)
from adfd_core.errors import AdfdError
from privileges import as_nobody

# Lines in the real formats.
LA2019 = [
    "LA_0079 LA_T_1138215 - - bonafide",
    "LA_0079 LA_T_1271820 - A01 spoof",
    "LA_0080 LA_T_1333333 - A06 spoof",
]
LA2021 = [
    "LA_0007 LA_E_5932896 alaw ita_tx bonafide bonafide notrim eval",
    "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval",
    "LA_0012 LA_E_1000001 none - A10 spoof trim progress",
    "LA_0013 LA_E_1000002 opus loc_tx A19 spoof notrim hidden",
]
DF2021 = [
    "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -",
    "TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval neural_vocoder_nonautoregressive Task1 team20 FF E",
    "LA_0031 DF_E_2000026 mp3m4a asvspoof bonafide bonafide notrim eval bonafide - - - -",
]
ITW = "file,speaker,label\n0.wav,Alec Guinness,spoof\n4.wav,Christopher Hitchens,bona-fide\n"


def touch(path: Path) -> Path:
    """An empty file (readers never decode audio)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


def by_id(utts: list[Utterance]) -> dict[str, Utterance]:
    return {u.id: u for u in utts}


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("value", "label"),
    [("bonafide", "bonafide"), ("Bona-Fide", "bonafide"), ("bona_fide", "bonafide"), ("genuine", "bonafide"),
     (" REAL ", "bonafide"), ("human", "bonafide"), ("spoof", "spoof"), ("Fake", "spoof"), ("synthetic", "spoof"),
     ("deepfake", "spoof"), ("generated", "spoof"), ("", "unknown"), ("-", "unknown"), ("Unknown", "unknown")],
)
def test_normalize_label(value, label):
    assert normalize_label(value) == label
    assert label in LABELS


@pytest.mark.parametrize("value", ["maybe", "spoofy", "1", "bona fide?"])
def test_normalize_label_rejects_other_values(value):
    with pytest.raises(ValueError, match=re.escape(repr(value))):
        normalize_label(value)


def test_corpus_error_is_a_user_facing_error():
    assert issubclass(CorpusError, AdfdError)


# --------------------------------------------------------------------------- folders


def test_folder_labels_and_attacks_come_from_path_components(tmp_path):
    for rel in ["bonafide/spk1/a.wav", "Real/b.FLAC", "genuine/c.mp3", "bona-fide/d.opus",
                "spoof/hifigan/x.flac", "data/FAKE/melgan/v2/y.wav", "spoof/z.wav", "misc/u.wav",
                "spoof/hifigan/notes.txt", ".hidden/h.wav", "spoof/.h.wav"]:
        touch(tmp_path / rel)
    utts = from_folder(tmp_path)
    got = {u.id: (u.label, u.attack) for u in utts}
    assert got == {
        "bonafide/spk1/a": ("bonafide", "-"),
        "Real/b": ("bonafide", "-"),
        "genuine/c": ("bonafide", "-"),
        "bona-fide/d": ("bonafide", "-"),
        "spoof/hifigan/x": ("spoof", "hifigan"),
        "data/FAKE/melgan/v2/y": ("spoof", "melgan"),
        "spoof/z": ("spoof", "-"),
        "misc/u": ("unknown", "-"),
    }
    assert [u.id for u in utts] == sorted(got, key=lambda i: tuple(i.split("/")))
    assert all(u.path.is_absolute() and u.path.is_file() for u in utts)
    assert by_id(utts)["Real/b"].path == tmp_path / "Real" / "b.FLAC"


def test_folder_label_comes_from_folders_only_and_relative_to_root(tmp_path):
    root = tmp_path / "spoof" / "corpus"  # a label word above the root does not count
    touch(root / "fake.wav")  # nor does a file name
    touch(root / "real" / "fake" / "k.wav")  # the first component wins
    got = {u.id: (u.label, u.attack) for u in from_folder(root)}
    assert got == {"fake": ("unknown", "-"), "real/fake/k": ("bonafide", "-")}


def test_folder_follows_symlinks_once(tmp_path):
    touch(tmp_path / "elsewhere" / "spoof" / "vits" / "s.wav")
    root = tmp_path / "root"
    touch(root / "bonafide" / "r.wav")
    os.symlink(tmp_path / "elsewhere" / "spoof", root / "spoof")
    os.symlink(root, root / "bonafide" / "loop")  # a cycle must not hang the walk
    got = {u.id: (u.label, u.attack) for u in from_folder(root)}
    assert got == {"bonafide/r": ("bonafide", "-"), "spoof/vits/s": ("spoof", "vits")}


@pytest.fixture
def unreadable_subfolder():
    """(root, its sub-folder that cannot be listed) with a readable file beside it. Tests run as root,
    who lists anything: the walk then runs as user 'nobody', in a folder that user may enter."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="adfd-walk-"))
    root.chmod(0o755)
    touch(root / "bonafide" / "a.wav").chmod(0o644)
    (root / "bonafide").chmod(0o755)
    locked = root / "spoof" / "locked"
    touch(locked / "hidden.wav")
    (root / "spoof").chmod(0o755)
    locked.chmod(0)

    yield root, locked
    locked.chmod(0o755)
    shutil.rmtree(root)


def test_an_unreadable_subfolder_is_named_not_skipped_in_silence(unreadable_subfolder):
    from adfd_core import audio

    root, locked = unreadable_subfolder
    with as_nobody():
        utts = from_folder(root)
        assert [u.id for u in utts] == ["bonafide/a", "spoof/locked"]  # the folder stands for what it holds
        with pytest.raises(audio.AudioError) as caught:  # decoding it names it: a failure of the run
            audio.probe(utts[1].path)
        with pytest.raises(CorpusError, match=f"{locked}: cannot list the folder"):
            from_folder(locked)
    assert caught.value.path == str(locked) and "cannot be read" in caught.value.reason


def test_folder_without_audio_or_missing_is_an_error(tmp_path):
    touch(tmp_path / "notes.txt")
    with pytest.raises(CorpusError, match=f"{tmp_path}: no audio files"):
        from_folder(tmp_path)
    with pytest.raises(CorpusError, match="no such folder"):
        from_folder(tmp_path / "absent")


def test_files_of_one_stem_in_a_folder_get_ids_with_their_suffix(tmp_path, caplog):
    touch(tmp_path / "spoof" / "a.wav")
    touch(tmp_path / "spoof" / "a.flac")
    touch(tmp_path / "spoof" / "b.wav")
    assert [u.id for u in from_folder(tmp_path)] == ["spoof/a.flac", "spoof/a.wav", "spoof/b"]
    assert "2 files share the id 'spoof/a'; their ids are now spoof/a.flac, spoof/a.wav" in caplog.text


# --------------------------------------------------------------------------- lists


def test_list_resolves_against_base_and_infers_labels_from_the_common_parent(tmp_path):
    listed = ["# a comment", "", "  corpus/bonafide/r1.wav  ", "corpus/spoof/melgan/f1.flac",
              str(tmp_path / "corpus" / "spoof" / "f2.wav"), "corpus/missing/never.wav"]
    utts = from_list(listed, base=tmp_path)
    got = {u.id: (u.label, u.attack, u.path) for u in utts}
    c = tmp_path / "corpus"
    assert got == {
        "bonafide/r1": ("bonafide", "-", c / "bonafide" / "r1.wav"),
        "spoof/melgan/f1": ("spoof", "melgan", c / "spoof" / "melgan" / "f1.flac"),
        "spoof/f2": ("spoof", "-", c / "spoof" / "f2.wav"),
        "missing/never": ("unknown", "-", c / "missing" / "never.wav"),  # not checked here
    }


def test_list_defaults_to_cwd_and_single_file_ids_are_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    [utt] = from_list(["spoof/x.wav"])
    assert (utt.id, utt.path, utt.label) == ("x", tmp_path / "spoof" / "x.wav", "unknown")


def test_list_empty_is_an_error_and_clashing_ids_come_from_the_paths(caplog):
    with pytest.raises(CorpusError, match="<list>: no paths listed"):
        from_list(["", "# nothing"])
    assert [u.id for u in from_list(["/d/a.wav", "/d/a.flac"])] == ["a.wav", "a.flac"]
    assert [u.id for u in from_list(["/d/x/a.wav", "/d/y/a.wav", "/d/y/b.wav"])] == ["x/a", "y/a", "y/b"]
    caplog.clear()
    assert [u.id for u in from_list(["/d/a.wav", "/d/b.wav", "/d/../d/a.wav"])] == ["a", "b"]
    assert "/d/a.wav: listed more than once; taken once" in caplog.text
    caplog.clear()
    assert len(from_list([f"/d/{c}.{ext}" for c in "abcdefgh" for ext in ("wav", "flac")])) == 16
    assert len(caplog.records) == 6 and caplog.records[-1].getMessage() == "and 3 more like these"  # a few, then a count


# --------------------------------------------------------------------------- manifests


def test_manifest_tsv_like_the_devset(tmp_path):
    m = write(tmp_path / "set" / "manifest.tsv", lines(
        "path\tlabel\tfamily\tsystem\tsource\tgroup\tduration_s",
        "bonafide/s1/gt__LJ001-0001.flac\tbonafide\tbonafide\tbonafide\ts1\tLJ001-0001\t9.66",
        "spoof/s1/hifigan_v1__LJ001-0001.flac\tspoof\thifigan\thifigan_v1\ts1\tLJ001-0001\t9.70",
    ))
    real, fake = from_manifest(m)
    assert real == Utterance("bonafide/s1/gt__LJ001-0001", tmp_path / "set" / "bonafide/s1/gt__LJ001-0001.flac",
                             "bonafide", "-", "-", "LJ001-0001", {"system": "bonafide", "source": "s1", "duration_s": "9.66"})
    assert (fake.label, fake.attack, fake.group) == ("spoof", "hifigan", "LJ001-0001")
    assert fake.meta == {"system": "hifigan_v1", "source": "s1", "duration_s": "9.70"}


def test_manifest_csv_aliases_ids_speakers_and_audio_root(tmp_path):
    m = write(tmp_path / "m.csv", lines(
        "ID,File,Class,Synthesizer,System,Speaker,Group,Lang",
        "u1,a/one.wav,fake,vits,sys1,spk1,g1,en",
        f"u2,{tmp_path / 'abs.wav'},real,,sys2,spk2,g2,de",
        "u3,\"b, c.wav\",,,,,,fr",
    ))
    audio = tmp_path / "audio"
    u1, u2, u3 = from_manifest(m, audio_root=audio)
    assert (u1.id, u1.path, u1.label, u1.attack, u1.speaker, u1.group) == ("u1", audio / "a" / "one.wav", "spoof", "vits", "spk1", "g1")
    assert u1.meta == {"System": "sys1", "Lang": "en"}  # synthesizer is preferred over system, which stays in meta
    assert (u2.path, u2.label, u2.attack) == (tmp_path / "abs.wav", "bonafide", "-")
    assert (u3.label, u3.attack, u3.speaker, u3.group, u3.path) == ("unknown", "-", "-", "-", audio / "b, c.wav")


@pytest.mark.parametrize(
    ("columns", "chosen"),
    [(("attack", "family", "synthesizer", "system"), "attack"), (("system", "synthesizer", "family"), "family"),
     (("system", "synthesizer"), "synthesizer"), (("system",), "system"), (("attack_id", "system"), "attack_id")],
)
def test_manifest_attack_column_preference(tmp_path, columns, chosen):
    header = ",".join(("filename", "key", *columns))
    row = ",".join(("x.wav", "spoof", *columns))  # each cell holds its column's name
    [utt] = from_manifest(write(tmp_path / "m.csv", lines(header, row)))
    assert utt.attack == chosen
    assert utt.meta == {c: c for c in columns if c != chosen}


@pytest.mark.parametrize("path_column", ["path", "file", "filename", "filepath", "audio"])
def test_manifest_path_column_aliases(tmp_path, path_column):
    [utt] = from_manifest(write(tmp_path / "m.csv", lines(f"{path_column},label", "sub/x.wav,spoof")))
    assert (utt.id, utt.path) == ("sub/x", tmp_path / "sub" / "x.wav")


def test_manifest_errors_name_file_and_line(tmp_path):
    bad_label = write(tmp_path / "a.csv", lines("path,label", "x.wav,spoof", "", "y.wav,maybe"))
    with pytest.raises(CorpusError, match=rf"{bad_label}:4: unknown label 'maybe'"):
        from_manifest(bad_label)
    no_path = write(tmp_path / "b.csv", lines("name,label", "x.wav,spoof"))
    with pytest.raises(CorpusError, match=rf"{no_path}: no path column .*columns found: name, label"):
        from_manifest(no_path)
    ragged = write(tmp_path / "c.tsv", lines("path\tlabel", "x.wav\tspoof\textra"))
    with pytest.raises(CorpusError, match=rf"{ragged}:2: 3 fields, but the header has 2"):
        from_manifest(ragged)
    dup = write(tmp_path / "d.csv", lines("path,label", "x.wav,spoof", "x.flac,bonafide"))
    with pytest.raises(CorpusError, match="duplicate utterance ids: x"):
        from_manifest(dup)
    header_only = write(tmp_path / "e.csv", "path,label\n")
    with pytest.raises(CorpusError, match="no rows after the header"):
        from_manifest(header_only)
    with pytest.raises(CorpusError, match="no such file"):
        from_manifest(tmp_path / "absent.csv")


# --------------------------------------------------------------------------- ASVspoof 2019


def test_asvspoof2019_finds_flac_next_to_the_protocol(tmp_path):
    proto = write(tmp_path / "protocol.txt", lines(*LA2019))
    touch(tmp_path / "flac" / "LA_T_1138215.flac")
    utts = from_asvspoof2019(proto)
    assert [(u.id, u.label, u.attack, u.speaker) for u in utts] == [
        ("LA_T_1138215", "bonafide", "-", "LA_0079"),
        ("LA_T_1271820", "spoof", "A01", "LA_0079"),
        ("LA_T_1333333", "spoof", "A06", "LA_0080"),
    ]
    assert utts[1].path == tmp_path / "flac" / "LA_T_1271820.flac"


def test_asvspoof2019_conventional_layout_and_explicit_folder(tmp_path):
    la = tmp_path / "LA"
    proto = write(la / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.train.trn.txt", lines(*LA2019))
    touch(la / "ASVspoof2019_LA_train" / "flac" / "LA_T_1138215.flac")
    assert from_asvspoof2019(proto)[0].path == la / "ASVspoof2019_LA_train" / "flac" / "LA_T_1138215.flac"
    # an explicit folder holding flac/, or holding the files themselves
    assert from_asvspoof2019(proto, la / "ASVspoof2019_LA_train")[2].path.parent == la / "ASVspoof2019_LA_train" / "flac"
    touch(tmp_path / "mine" / "LA_T_1138215.flac")
    assert from_asvspoof2019(proto, tmp_path / "mine")[2].path == tmp_path / "mine" / "LA_T_1333333.flac"


def test_asvspoof2019_missing_audio_names_where_it_looked(tmp_path):
    proto = write(tmp_path / "p" / "protocol.txt", lines(*LA2019))
    with pytest.raises(CorpusError, match=r"cannot find LA_T_1138215\.flac; looked in .*") as err:
        from_asvspoof2019(proto)
    assert str(tmp_path / "p" / "flac") in str(err.value)
    with pytest.raises(CorpusError, match=f"looked in {tmp_path / 'nowhere' / 'flac'}, {tmp_path / 'nowhere'}"):
        from_asvspoof2019(proto, tmp_path / "nowhere")


def test_asvspoof2019_bad_lines(tmp_path):
    touch(tmp_path / "flac" / "LA_T_1138215.flac")
    short = write(tmp_path / "a.txt", lines(LA2019[0], "LA_0079 LA_T_1271820 A01 spoof"))
    with pytest.raises(CorpusError, match=rf"{short}:2: expected 5 fields"):
        from_asvspoof2019(short)
    bad_key = write(tmp_path / "b.txt", lines(LA2019[0], "LA_0079 LA_T_1271820 - A01 target"))
    with pytest.raises(CorpusError, match=rf"{bad_key}:2: unknown label 'target'"):
        from_asvspoof2019(bad_key)
    dup = write(tmp_path / "c.txt", lines(LA2019[0], LA2019[0]))
    with pytest.raises(CorpusError, match="duplicate utterance ids: LA_T_1138215"):
        from_asvspoof2019(dup)
    with pytest.raises(CorpusError, match="no entries"):
        from_asvspoof2019(write(tmp_path / "d.txt", "\n\n"))


# --------------------------------------------------------------------------- ASVspoof 2021


def test_asvspoof2021_la_key_keeps_the_eval_subset(tmp_path):
    key = write(tmp_path / "keys" / "LA" / "CM" / "trial_metadata.txt", lines(*LA2021))
    touch(tmp_path / "ASVspoof2021_LA_eval" / "flac" / "LA_E_5932896.flac")
    real, fake = from_asvspoof2021(key)  # found four levels up, in the release folder
    assert real.path == tmp_path / "ASVspoof2021_LA_eval" / "flac" / "LA_E_5932896.flac"
    assert (real.id, real.label, real.attack, real.speaker) == ("LA_E_5932896", "bonafide", "-", "LA_0007")
    assert (fake.label, fake.attack) == ("spoof", "A07")
    assert fake.meta == {"codec": "alaw", "transmission": "ita_tx", "trim": "notrim", "subset": "eval"}


@pytest.mark.parametrize(
    ("subset", "ids"),
    [("eval", ["LA_E_5932896", "LA_E_9332881"]), ("progress", ["LA_E_1000001"]),
     ("hidden_track", ["LA_E_1000002"]), ("all", ["LA_E_5932896", "LA_E_9332881", "LA_E_1000001", "LA_E_1000002"])],
)
def test_asvspoof2021_subsets(tmp_path, subset, ids):
    key = write(tmp_path / "trial_metadata.txt", lines(*LA2021))
    for i in ids:
        touch(tmp_path / "flac" / f"{i}.flac")
    assert [u.id for u in from_asvspoof2021(key, subset=subset)] == ids


def test_asvspoof2021_df_key(tmp_path):
    key = write(tmp_path / "trial_metadata.txt", lines(*DF2021))
    audio = tmp_path / "ASVspoof2021_DF_eval"
    touch(audio / "flac" / "DF_E_2000013.flac")
    vcc, real = from_asvspoof2021(key, audio_dir=audio)
    assert (vcc.id, vcc.label, vcc.attack, vcc.speaker) == ("DF_E_2000013", "spoof", "Task1-team20", "TEF2")
    assert vcc.path == audio / "flac" / "DF_E_2000013.flac"
    assert vcc.meta == {"codec": "low_m4a", "source": "vcc2020", "trim": "notrim", "subset": "eval",
                        "vocoder": "neural_vocoder_nonautoregressive", "task": "Task1", "team": "team20",
                        "gender_pair": "FF", "language": "E"}
    assert (real.label, real.attack, real.meta["vocoder"]) == ("bonafide", "-", "bonafide")
    touch(audio / "flac" / "DF_E_2000011.flac")
    [prog] = from_asvspoof2021(key, audio_dir=audio, subset="progress")
    assert (prog.attack, prog.meta["source"], prog.meta["subset"]) == ("A14", "asvspoof", "progress")


def test_asvspoof2021_errors(tmp_path):
    key = write(tmp_path / "trial_metadata.txt", lines(*LA2021))
    with pytest.raises(CorpusError, match=r"no trials in subset 'evl'; subsets present: eval, hidden, progress"):
        from_asvspoof2021(key, tmp_path, subset="evl")
    with pytest.raises(CorpusError, match=r"cannot find LA_E_5932896\.flac"):
        from_asvspoof2021(key)
    mixed = write(tmp_path / "mixed.txt", lines(LA2021[0], DF2021[0]))
    with pytest.raises(CorpusError, match=rf"{mixed}:2: 13 fields, but the first line has 8"):
        from_asvspoof2021(mixed, tmp_path)
    old = write(tmp_path / "old.txt", lines(*LA2019))
    with pytest.raises(CorpusError, match=rf"{old}:1: expected 8 fields"):
        from_asvspoof2021(old, tmp_path)


# --------------------------------------------------------------------------- In-the-Wild


def test_in_the_wild(tmp_path):
    meta = write(tmp_path / "release_in_the_wild" / "meta.csv", ITW)
    fake, real = from_in_the_wild(meta)
    assert (fake.id, fake.path, fake.label, fake.speaker, fake.attack) == (
        "0", tmp_path / "release_in_the_wild" / "0.wav", "spoof", "Alec Guinness", "-")
    assert (real.id, real.label, real.speaker) == ("4", "bonafide", "Christopher Hitchens")
    assert from_in_the_wild(meta, tmp_path / "audio")[0].path == tmp_path / "audio" / "0.wav"


def test_in_the_wild_needs_its_header_and_labels(tmp_path):
    with pytest.raises(CorpusError, match="expected the In-the-Wild header"):
        from_in_the_wild(write(tmp_path / "a.csv", lines("path,label", "0.wav,spoof")))
    with pytest.raises(CorpusError, match=r"b\.csv:3: unknown label 'unsure'"):
        from_in_the_wild(write(tmp_path / "b.csv", lines("file,speaker,label", "0.wav,A,spoof", "1.wav,B,unsure")))


# --------------------------------------------------------------------------- read_corpus


def test_read_corpus_folder_and_in_the_wild_folder(tmp_path):
    touch(tmp_path / "plain" / "spoof" / "x" / "a.wav")
    assert [(u.id, u.attack) for u in read_corpus(tmp_path / "plain")] == [("spoof/x/a", "x")]
    itw = tmp_path / "itw"
    write(itw / "meta.csv", ITW)
    touch(itw / "0.wav")
    assert [u.id for u in read_corpus(str(itw))] == ["0", "4"]  # meta.csv wins over scanning
    write(tmp_path / "plain" / "meta.csv", "whatever,else\n")  # a meta.csv of another kind is not used, and said so
    assert len(read_corpus(tmp_path / "plain")) == 1


def test_a_folder_with_a_manifest_is_read_through_it_and_says_so(tmp_path, caplog):
    """As in the devset: folders named after sources, the attack (family) and more columns in manifest.tsv."""
    corpus = tmp_path / "devset"
    touch(corpus / "bonafide" / "ljs" / "r1.flac")
    touch(corpus / "spoof" / "ljs" / "f1.flac")
    write(corpus / "manifest.tsv", lines("path\tlabel\tfamily\tsystem\tsource\tgroup",
                                         "bonafide/ljs/r1.flac\tbonafide\tbonafide\tbonafide\tljs\tg1",
                                         "spoof/ljs/f1.flac\tspoof\tdiffwave\tdiffwave_v2\tljs\tg1"))
    caplog.set_level(logging.INFO)
    utts = read_corpus(corpus)
    assert [(u.id, u.label, u.attack, u.group, u.meta["source"]) for u in utts] == [
        ("bonafide/ljs/r1", "bonafide", "-", "g1", "ljs"), ("spoof/ljs/f1", "spoof", "diffwave", "g1", "ljs")]
    assert f"{corpus / 'manifest.tsv'}: 2 recordings, labels and columns" in caplog.text
    write(corpus / "manifest.tsv", lines("label\tfamily", "spoof\tdiffwave"))
    assert [u.attack for u in read_corpus(corpus)] == ["-", "ljs"]  # scanned: attacks from folder names
    assert "manifest.tsv: not used, so the folder is scanned for audio and labelled by its folder names: " in caplog.text


def test_read_corpus_sniffs_files(tmp_path):
    write(tmp_path / "m.tsv", lines("path\tlabel", "a.wav\tspoof"))
    assert read_corpus(tmp_path / "m.tsv")[0].path == tmp_path / "a.wav"
    write(tmp_path / "la19.txt", lines(*LA2019))
    touch(tmp_path / "flac" / "LA_T_1138215.flac")
    assert len(read_corpus(tmp_path / "la19.txt")) == 3
    write(tmp_path / "key.txt", lines(*LA2021))
    touch(tmp_path / "flac" / "LA_E_1000001.flac")
    assert [u.id for u in read_corpus(tmp_path / "key.txt", subset="progress")] == ["LA_E_1000001"]
    write(tmp_path / "meta.csv", ITW)
    assert read_corpus(tmp_path / "meta.csv")[1].label == "bonafide"


def test_read_corpus_with_protocol_reads_audio_from_source(tmp_path):
    audio = tmp_path / "audio"
    touch(audio / "flac" / "LA_T_1138215.flac")
    touch(audio / "DF_E_2000013.flac")
    cases = {
        "la19.txt": (lines(*LA2019), audio / "flac" / "LA_T_1138215.flac"),
        "trial_metadata.txt": (lines(*DF2021), audio / "DF_E_2000013.flac"),
        "meta.csv": (ITW, audio / "0.wav"),
        "list.csv": (lines("file,label", "LA_T_1138215.flac,spoof"), audio / "LA_T_1138215.flac"),
    }
    for name, (text, first_path) in cases.items():
        proto = write(tmp_path / "protocols" / name, text)
        assert read_corpus(audio, protocol=proto)[0].path == first_path, name
    with pytest.raises(CorpusError, match="no such folder"):
        read_corpus(tmp_path / "absent", protocol=proto)


def test_read_corpus_rejects_unknown_formats(tmp_path):
    pa2021 = write(tmp_path / "pa.txt", "PA_0010 PA_E_1000001 R3 M3 d4 r1 m1 s4 c4 bonafide notrim eval\n")
    for bad in [pa2021, write(tmp_path / "ids.txt", "LA_E_9332881\n"), write(tmp_path / "x.csv", "a,b\n1,2\n")]:
        with pytest.raises(CorpusError, match=rf"{bad}: unrecognised corpus description; accepted: ASVspoof 2019"):
            read_corpus(bad)
    with pytest.raises(CorpusError, match="empty"):
        read_corpus(tmp_path, protocol=write(tmp_path / "empty.txt", "\n"))
    with pytest.raises(CorpusError, match="no such file or folder"):
        read_corpus(tmp_path / "absent")


def test_read_corpus_from_list_file_and_stdin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    listing = lines("c/bonafide/a.wav", "c/spoof/vits/b.flac")
    stdin = read_corpus("-", from_list=True, stdin=io.StringIO(listing))
    assert [(u.id, u.label, u.attack, u.path) for u in stdin] == [
        ("bonafide/a", "bonafide", "-", tmp_path / "c" / "bonafide" / "a.wav"),
        ("spoof/vits/b", "spoof", "vits", tmp_path / "c" / "spoof" / "vits" / "b.flac"),
    ]
    assert read_corpus(write(tmp_path / "list.txt", listing), from_list=True) == stdin
    with pytest.raises(CorpusError, match="<stdin>: no paths listed"):
        read_corpus("-", from_list=True, stdin=io.StringIO("\n"))
    with pytest.raises(CorpusError, match="absent.txt: no such file"):
        read_corpus("absent.txt", from_list=True)


def test_large_key_reads_quickly(tmp_path):
    n = 50_000
    rows = [f"LA_{i % 90:04d} DF_E_{2_000_000 + i} nocodec asvspoof A{i % 19 + 1:02d} spoof notrim eval neural - - - -" for i in range(n)]
    key = write(tmp_path / "trial_metadata.txt", lines(*rows))
    touch(tmp_path / "flac" / "DF_E_2000000.flac")
    utts = read_corpus(key)
    assert len(utts) == n and Counter(u.label for u in utts) == {"spoof": n}


def test_read_inputs_keeps_the_order_given_and_takes_a_file_given_twice_once(tmp_path, make_audio, caplog):
    from adfd_core.corpus import read_inputs

    folder = tmp_path / "calls"
    make_audio.write(folder / "b.wav", make_audio.tone(seconds=0.2))
    single = make_audio.write(tmp_path / "a.flac", make_audio.tone(seconds=0.2))
    listed = make_audio.write(tmp_path / "listed" / "c.wav", make_audio.tone(seconds=0.2))
    utts = read_inputs([str(folder), str(single)], path_list="-", stdin=io.StringIO(f"{listed}\n"))
    assert [u.id for u in utts] == ["c", "b", "a"]
    assert [(u.id, u.path) for u in read_inputs([str(single), str(single)])] == [("a", single)]
    assert f"{single}: listed more than once; taken once" in caplog.text
    other = make_audio.write(tmp_path / "a.wav", make_audio.tone(seconds=0.2))
    assert [u.id for u in read_inputs([str(single), str(other)])] == ["a.flac", "a.wav"]
    elsewhere = make_audio.write(tmp_path / "x" / "a.wav", make_audio.tone(seconds=0.2))
    assert [u.id for u in read_inputs([str(other), str(elsewhere)])] == ["a.wav", "x/a.wav"]
