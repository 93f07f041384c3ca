"""Corpus readers: folders, path lists, CSV/TSV manifests, ASVspoof 2019 LA protocols, ASVspoof 2021
LA/DF keys and In-the-Wild's ``meta.csv``, each turned into a list of ``Utterance``.

Readers only name audio files; they never open them, so a listed file that is missing or broken is
reported later, per file, by whoever decodes it. Every problem with the corpus description itself
is a ``CorpusError`` naming the file (and line).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple, TextIO

from adfd_core.audio import AUDIO_SUFFIXES
from adfd_core.errors import AdfdError

LABELS = ("bonafide", "spoof", "unknown")

_LABEL_WORDS = {
    **dict.fromkeys(("bonafide", "bona-fide", "bona_fide", "genuine", "real", "human"), "bonafide"),
    **dict.fromkeys(("spoof", "fake", "synthetic", "deepfake", "generated"), "spoof"),
    **dict.fromkeys(("", "-", "unknown"), "unknown"),
}
_FOLDER_LABEL_WORDS = frozenset({"bonafide", "bona-fide", "real", "genuine", "spoof", "fake"})

_PATH_COLUMNS = ("path", "file", "filename", "filepath", "audio")
_LABEL_COLUMNS = ("label", "key", "class", "cm-label")
_ATTACK_COLUMNS = ("attack", "attack_id", "family", "synthesizer", "system")
_ITW_HEADER = ["file", "speaker", "label"]

_KEYS = frozenset({"bonafide", "spoof"})
_ASV2019_FIELDS = 5  # SPEAKER FILE_ID - SYSTEM_ID KEY
_ASV2021_LA = ("speaker", "trial", "codec", "transmission", "attack", "key", "trim", "subset")
_ASV2021_DF = ("speaker", "trial", "codec", "source", "attack", "key", "trim", "subset",
               "vocoder", "task", "team", "gender_pair", "language")
_ASV2021_NOT_META = frozenset({"speaker", "trial", "attack", "key"})
_SUBSET_ALIASES = {"hidden_track": "hidden"}  # stage-1 name of the full keys' "hidden" subset
_RELEASE_PARTS = {"T": "train", "D": "dev", "E": "eval"}  # letter in ASVspoof file ids: LA_T_..., DF_E_...
_SEARCH_LEVELS = 5  # a protocol's folder and its parents searched for the audio (keys/LA/CM/ sits deep)
_FOLDER_MANIFESTS = ("manifest.tsv", "manifest.csv", "meta.csv")  # read in place of scanning a folder that holds one
_FORMATS_ACCEPTED = (
    "ASVspoof 2019 LA protocol (SPEAKER FILE_ID - SYSTEM_ID KEY), ASVspoof 2021 LA/DF trial_metadata.txt, "
    "In-the-Wild meta.csv (file,speaker,label), or a CSV/TSV manifest whose header names a path column "
    f"({', '.join(_PATH_COLUMNS)})"
)


log = logging.getLogger(__name__)


class CorpusError(AdfdError):
    """Unreadable or inconsistent corpus description; the message names the file (and line)."""


@dataclass(frozen=True)
class Utterance:
    """One audio file of a corpus, with what the corpus says about it."""

    id: str
    path: Path
    label: str
    attack: str = "-"
    speaker: str = "-"
    group: str = "-"
    meta: Mapping[str, str] = field(default_factory=dict)


def normalize_label(value: str) -> str:
    """Map the usual spellings of a label to one of LABELS; ValueError for anything else."""
    label = _LABEL_WORDS.get(value.strip().lower())
    if label is None:
        raise ValueError(f"unknown label {value!r}: use bonafide or spoof (or leave it empty)")
    return label


# --------------------------------------------------------------------------- shared helpers


def _absolute(path: Path | str, base: Path | None = None) -> Path:
    """``path`` made absolute against ``base`` (default: cwd), with ``..`` folded but symlinks kept."""
    return Path(os.path.abspath((Path.cwd() if base is None else Path(base)) / path))


def _strip_suffix(path: str) -> str:
    """A path as a posix id, without its last suffix."""
    return PurePosixPath(path).with_suffix("").as_posix()


def _attack(value: str, label: str) -> str:
    """The attack column's value, or "-" for bona fide speech and empty cells."""
    return "-" if label == "bonafide" or not value.strip() else value.strip()


def _why(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(exc, UnicodeDecodeError):
        return "not a UTF-8 text file"
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


@contextmanager
def _opened(path: Path) -> Iterator[TextIO]:
    """The text file at ``path``; any failure to read it becomes a CorpusError naming it."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            yield f
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: {_why(exc)}") from exc


def _text(path: Path) -> str:
    with _opened(path) as f:
        return f.read()


def _first_line(path: Path) -> str:
    """The first non-blank line of a file ("" when there is none)."""
    with _opened(path) as f:
        return next((line for line in f if line.strip()), "")


def _token_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, whitespace-separated fields) of every non-blank line; there must be one."""
    rows = [(n, line.split()) for n, line in enumerate(_text(path).splitlines(), 1) if line.strip()]
    if not rows:
        raise CorpusError(f"{path}: no entries")
    return rows


def _label_at(path: Path | str, line: int, value: str) -> str:
    try:
        return normalize_label(value)
    except ValueError as exc:
        raise CorpusError(f"{path}:{line}: {exc}") from None


def _check_unique(ids: Iterable[str], source: Path | str) -> None:
    """A CorpusError about ``source`` naming a few duplicates, if ``ids`` has any."""
    dups = [i for i, n in Counter(ids).items() if n > 1]
    if dups:
        more = f" (and {len(dups) - 3} more)" if len(dups) > 3 else ""
        raise CorpusError(f"{source}: duplicate utterance ids: {', '.join(dups[:3])}{more}")


def _unique(utts: list[Utterance], source: Path | str) -> list[Utterance]:
    """``utts`` if their ids are unique; else a CorpusError about ``source`` naming a few duplicates."""
    _check_unique((u.id for u in utts), source)
    return utts


def distinct(utts: Sequence[Utterance]) -> list[Utterance]:
    """``utts`` with each file once, and unique ids, saying on the log what changed.

    A file listed again (the same absolute path) is dropped after its first listing. Files whose ids
    clash (a.wav and a.mp3 are both ``a``) get ids from their paths: the id with the file's suffix
    (``a.wav``, ``a.mp3``), else the path from the files' common folder (``x/a.wav``, ``y/a.wav``).
    """
    first: dict[str, Utterance] = {}
    repeated: list[str] = []
    for utt in utts:
        key = str(utt.path) if str(utt.path) == "-" else str(_absolute(utt.path))
        if key in first:
            repeated.append(f"{utt.path}: listed more than once; taken once")
        else:
            first[key] = utt
    _warn_some(repeated)
    kept = list(first.values())
    counts = Counter(u.id for u in kept)
    clashing = {id_ for id_, n in counts.items() if n > 1}
    if not clashing:
        return kept
    renamed = {id_: _ids_from_paths([u for u in kept if u.id == id_]) for id_ in clashing}
    _warn_some([f"{len(ids)} files share the id {id_!r}; their ids are now {', '.join(ids)}" for id_, ids in renamed.items()])
    taken = (set(counts) - clashing).union(*renamed.values())
    if len(taken) != len(kept):
        raise CorpusError(f"ids clash even with their paths: {', '.join(sorted(clashing)[:3])}")
    queue = {id_: iter(ids) for id_, ids in renamed.items()}
    return [dataclasses.replace(u, id=next(queue[u.id])) if u.id in queue else u for u in kept]


def _warn_some(messages: list[str], shown: int = 5) -> None:
    """The first ``shown`` of ``messages`` as warnings on the log, then how many more there were."""
    for message in messages[:shown]:
        log.warning("%s", message)
    if len(messages) > shown:
        log.warning("and %d more like these", len(messages) - shown)


def _ids_from_paths(utts: list[Utterance]) -> list[str]:
    """Distinct ids for files that share one (see ``distinct``)."""
    with_suffix = [u.id + u.path.suffix for u in utts]
    if len(set(with_suffix)) == len(utts):
        return with_suffix
    paths = [_absolute(u.path) for u in utts]
    common = Path(os.path.commonpath(paths))
    return [p.relative_to(common).as_posix() for p in paths]


# --------------------------------------------------------------------------- folders and lists


def _from_relative(root: Path, path: Path) -> Utterance:
    """An utterance whose label (and attack) come from the folders between ``root`` and ``path``."""
    rel = path.relative_to(root)
    folders = rel.parts[:-1]
    label, attack = "unknown", "-"
    for i, name in enumerate(folders):
        if name.lower() in _FOLDER_LABEL_WORDS:
            label = normalize_label(name)
            attack = _attack(folders[i + 1] if i + 1 < len(folders) else "", label)
            break
    return Utterance(id=_strip_suffix(rel.as_posix()), path=path, label=label, attack=attack)


def _audio_files(root: Path) -> list[Path]:
    """Audio files under ``root``: recursive, symlinks followed (each folder once), hidden ones skipped.
    A sub-folder that cannot be listed is in the list too, so that decoding it reports it as a failure."""
    found: list[Path] = []
    seen: set[str] = set()

    def unlisted(err: OSError) -> None:
        if Path(err.filename) == root:
            raise CorpusError(f"{root}: cannot list the folder ({_why(err)})")
        found.append(Path(err.filename))

    for folder, subfolders, names in os.walk(root, followlinks=True, onerror=unlisted):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found += [Path(folder, n) for n in names if not n.startswith(".") and Path(n).suffix.lower() in AUDIO_SUFFIXES]
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def from_folder(root: Path) -> list[Utterance]:
    """Every audio file under ``root``; labels from bonafide/real/genuine or spoof/fake folders."""
    root = _absolute(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: no such folder")
    files = _audio_files(root)
    if not files:
        raise CorpusError(f"{root}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
    return distinct([_from_relative(root, p) for p in files])


def from_list(lines: Iterable[str], base: Path | None = None, source: str = "<list>") -> list[Utterance]:
    """One audio path per line (blank lines and # comments skipped); relative ones are under ``base``."""
    entries = (line.strip() for line in lines)
    paths = [_absolute(e, base) for e in entries if e and not e.startswith("#")]
    if not paths:
        raise CorpusError(f"{source}: no paths listed")
    parent = Path(os.path.commonpath([p.parent for p in paths]))
    return distinct([_from_relative(parent, p) for p in paths])


# --------------------------------------------------------------------------- manifests


def _delimiter(header: str) -> str:
    return "\t" if "\t" in header else ","


def _header(line: str) -> list[str]:
    """The column names of a CSV/TSV header line, stripped and lowercased."""
    return [name.strip().lower() for name in next(csv.reader([line], delimiter=_delimiter(line)), [])]


def _table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header (as written, stripped) and (line number, fields) of each row of a CSV/TSV file."""
    text = _text(path)
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text.lstrip().split("\n", 1)[0]))
    rows = [(reader.line_num, [f.strip() for f in row]) for row in reader if any(f.strip() for f in row)]
    if not rows:
        raise CorpusError(f"{path}: empty; expected a header line")
    (_, header), body = rows[0], rows[1:]
    repeated = [name for name, n in Counter(h.lower() for h in header).items() if n > 1]
    if repeated:
        raise CorpusError(f"{path}:{rows[0][0]}: column {repeated[0]!r} appears more than once")
    for line, fields in body:
        if len(fields) != len(header):
            raise CorpusError(f"{path}:{line}: {len(fields)} fields, but the header has {len(header)}")
    return header, body


def _pick(columns: list[str], choices: Iterable[str]) -> int | None:
    """Index of the first of ``choices`` among ``columns`` (lowercase names), or None."""
    return next((columns.index(c) for c in choices if c in columns), None)


def from_manifest(path: Path, audio_root: Path | None = None) -> list[Utterance]:
    """A CSV or TSV manifest with a header; relative paths are under ``audio_root`` or the manifest's folder."""
    header, body = _table(path)
    if not body:
        raise CorpusError(f"{path}: no rows after the header")
    columns = [h.lower() for h in header]
    where = _pick(columns, _PATH_COLUMNS)
    if where is None:
        raise CorpusError(f"{path}: no path column ({', '.join(_PATH_COLUMNS)}); columns found: {', '.join(header)}")
    cols = {
        "path": where,
        "id": _pick(columns, ["id"]),
        "label": _pick(columns, _LABEL_COLUMNS),
        "attack": _pick(columns, _ATTACK_COLUMNS),
        "speaker": _pick(columns, ["speaker"]),
        "group": _pick(columns, ["group"]),
    }
    rest = [i for i in range(len(header)) if i not in cols.values()]
    base = audio_root if audio_root is not None else _absolute(path).parent
    utts = [_manifest_row(path, line, fields, cols, {header[i]: fields[i] for i in rest}, base) for line, fields in body]
    return _unique(utts, path)


def _manifest_row(path: Path, line: int, fields: list[str], cols: dict[str, int | None],
                  meta: dict[str, str], base: Path) -> Utterance:
    """One manifest row as an utterance; ``cols`` maps field names to column indices."""

    def cell(name: str) -> str:
        i = cols[name]
        return fields[i] if i is not None else ""

    written = cell("path")
    if not written:
        raise CorpusError(f"{path}:{line}: empty path")
    label = _label_at(path, line, cell("label"))
    return Utterance(
        id=cell("id") or _strip_suffix(written),
        path=_absolute(written, base),
        label=label,
        attack=_attack(cell("attack"), label),
        speaker=cell("speaker") or "-",
        group=cell("group") or "-",
        meta=meta,
    )


def _is_in_the_wild(header: list[str]) -> bool:
    return header == _ITW_HEADER


def from_in_the_wild(meta_csv: Path, audio_dir: Path | None = None) -> list[Utterance]:
    """In-the-Wild's ``meta.csv`` (file,speaker,label); audio next to it unless ``audio_dir`` is given."""
    found = _header(_first_line(meta_csv))
    if not _is_in_the_wild(found):
        raise CorpusError(f"{meta_csv}: expected the In-the-Wild header file,speaker,label; found {','.join(found)}")
    return from_manifest(meta_csv, audio_dir)


# --------------------------------------------------------------------------- ASVspoof


def _release_folder(year: int, file_id: str) -> str | None:
    """The conventional audio folder of an ASVspoof release: LA_T_1138215 -> ASVspoof2019_LA_train."""
    track, part, *_ = [*file_id.split("_"), "", ""]
    return f"ASVspoof{year}_{track}_{_RELEASE_PARTS[part]}" if track and part in _RELEASE_PARTS else None


def _audio_dir(protocol: Path, audio_dir: Path | None, year: int, first_id: str) -> Path:
    """The folder holding ``first_id``.flac: ``audio_dir`` or near the protocol, with or without flac/."""
    bases = [audio_dir] if audio_dir is not None else list(_absolute(protocol).parents)[:_SEARCH_LEVELS]
    release = _release_folder(year, first_id)
    tails = ["flac", ".", *([f"{release}/flac"] if release else [])]
    candidates = list(dict.fromkeys(_absolute(b / tail) for b in bases for tail in tails))
    found = next((c for c in candidates if (c / f"{first_id}.flac").is_file()), None)
    if found is None:
        looked = ", ".join(map(str, candidates))
        raise CorpusError(f"{protocol}: cannot find {first_id}.flac; looked in {looked}; give the audio folder")
    return found


class _Trial(NamedTuple):
    """One parsed line of an ASVspoof protocol or key."""

    trial: str
    label: str
    attack: str
    speaker: str
    meta: dict[str, str]


def _flac_utterances(protocol: Path, audio_dir: Path | None, year: int, trials: list[_Trial]) -> list[Utterance]:
    """Utterances of parsed protocol lines (at least one), with audio at FOLDER/TRIAL.flac."""
    folder = _audio_dir(protocol, audio_dir, year, trials[0].trial)
    return [
        Utterance(id=t.trial, path=folder / f"{t.trial}.flac", label=t.label, attack=t.attack, speaker=t.speaker, meta=t.meta)
        for t in trials
    ]


def _asvspoof2019_trial(protocol: Path, line: int, fields: list[str]) -> _Trial:
    if len(fields) != _ASV2019_FIELDS:
        raise CorpusError(f"{protocol}:{line}: expected 5 fields (SPEAKER FILE_ID - SYSTEM_ID KEY), found {len(fields)}")
    label = _label_at(protocol, line, fields[4])
    return _Trial(fields[1], label, _attack(fields[3], label), fields[0], {})


def _asvspoof2019_trials(protocol: Path) -> list[_Trial]:
    return [_asvspoof2019_trial(protocol, line, fields) for line, fields in _token_rows(protocol)]


def from_asvspoof2019(protocol: Path, audio_dir: Path | None = None) -> list[Utterance]:
    """An ASVspoof 2019 LA CM protocol; audio at AUDIO_DIR/FILE_ID.flac, found near the protocol by default."""
    return _unique(_flac_utterances(protocol, audio_dir, 2019, _asvspoof2019_trials(protocol)), protocol)


def _asvspoof2021_trial(key: Path, line: int, fields: list[str], names: tuple[str, ...]) -> _Trial:
    if len(fields) != len(names):
        raise CorpusError(f"{key}:{line}: {len(fields)} fields, but the first line has {len(names)}")
    row = dict(zip(names, fields))
    label = _label_at(key, line, row["key"])
    meta = {k: v for k, v in row.items() if k not in _ASV2021_NOT_META}
    return _Trial(row["trial"], label, _attack(row["attack"], label), row["speaker"], meta)


def _asvspoof2021_columns(key: Path, line: int, first: list[str]) -> tuple[str, ...]:
    """Column names of a 2021 key by its width: 8 is LA, 9 to 13 is DF (VOCODER and more trailing)."""
    if len(first) == len(_ASV2021_LA):
        return _ASV2021_LA
    if len(_ASV2021_LA) < len(first) <= len(_ASV2021_DF):
        return _ASV2021_DF[: len(first)]
    raise CorpusError(f"{key}:{line}: expected 8 fields (LA key) or 9 to 13 (DF key), found {len(first)}")


def _in_subset(trial: _Trial, subset: str) -> bool:
    """Whether a 2021 trial belongs to ``subset`` ("all" keeps every one; hidden_track is hidden)."""
    wanted = _SUBSET_ALIASES.get(subset, subset)
    return subset == "all" or _SUBSET_ALIASES.get(trial.meta["subset"], trial.meta["subset"]) == wanted


def _asvspoof2021_trials(key: Path, subset: str) -> list[_Trial]:
    """The trials of a 2021 key in ``subset`` (at least one)."""
    rows = _token_rows(key)
    names = _asvspoof2021_columns(key, *rows[0])
    trials = [_asvspoof2021_trial(key, line, fields, names) for line, fields in rows]
    kept = [t for t in trials if _in_subset(t, subset)]
    if not kept:
        present = ", ".join(sorted({t.meta["subset"] for t in trials}))
        raise CorpusError(f"{key}: no trials in subset {subset!r}; subsets present: {present} (or use all)")
    return kept


def from_asvspoof2021(key: Path, audio_dir: Path | None = None, subset: str = "eval") -> list[Utterance]:
    """An ASVspoof 2021 LA or DF ``trial_metadata.txt`` key, keeping ``subset`` (eval, progress, hidden_track, all)."""
    return _unique(_flac_utterances(key, audio_dir, 2021, _asvspoof2021_trials(key, subset)), key)


# --------------------------------------------------------------------------- dispatch


def _sniff(path: Path) -> str:
    """Which reader a corpus description needs: itw, manifest, asvspoof2019 or asvspoof2021."""
    line = _first_line(path)
    if not line:
        raise CorpusError(f"{path}: empty")
    header = _header(line)
    tokens = line.split()
    if _is_in_the_wild(header):
        return "itw"
    if any(name in _PATH_COLUMNS for name in header):
        return "manifest"
    if len(tokens) == _ASV2019_FIELDS and tokens[4] in _KEYS:
        return "asvspoof2019"
    if len(tokens) >= len(_ASV2021_LA) and tokens[5] in _KEYS and tokens[6] in ("trim", "notrim"):
        return "asvspoof2021"
    raise CorpusError(f"{path}: unrecognised corpus description; accepted: {_FORMATS_ACCEPTED}")


def _read_description(path: Path, audio_dir: Path | None, subset: str) -> list[Utterance]:
    """Read a protocol, key, meta.csv or manifest, whichever ``path`` turns out to be."""
    fmt = _sniff(path)
    if fmt == "asvspoof2021":
        return from_asvspoof2021(path, audio_dir, subset)
    if fmt == "asvspoof2019":
        return from_asvspoof2019(path, audio_dir)
    if fmt == "itw":
        return from_in_the_wild(path, audio_dir)
    return from_manifest(path, audio_dir)


def read_key(path: Path, subset: str = "all") -> dict[str, dict[str, str]]:
    """Utterance id -> what a corpus description says of it: label, attack, speaker and its other columns (an
    ASVspoof 2021 key's codec, transmission, ...; every column of a manifest by its header name). Unlike the
    readers, never looks for audio."""
    fmt = _sniff(path)
    if fmt in ("asvspoof2019", "asvspoof2021"):
        trials = _asvspoof2019_trials(path) if fmt == "asvspoof2019" else _asvspoof2021_trials(path, subset)
        entries = [(t.trial, {**t.meta, "label": t.label, "attack": t.attack, "speaker": t.speaker}) for t in trials]
    else:
        header, body = _table(path)
        entries = [(u.id, {**dict(zip(header, fields)), "label": u.label, "attack": u.attack, "speaker": u.speaker})
                   for u, (_, fields) in zip(from_manifest(path), body)]
    _check_unique((e[0] for e in entries), path)
    return dict(entries)


def _read_list(source: str, stdin: TextIO | None) -> list[Utterance]:
    """Paths one per line from the file ``source``, or from ``stdin`` when it is "-"."""
    if source == "-":
        return from_list((stdin or sys.stdin).read().splitlines(), source="<stdin>")
    return from_list(_text(Path(source)).splitlines(), source=source)


def read_corpus(source: str | Path, protocol: Path | None = None, subset: str = "eval",
                from_list: bool = False, stdin: TextIO | None = None) -> list[Utterance]:
    """The utterances ``source`` names: a path list, an audio folder, or a corpus description file.

    With ``protocol``, ``source`` is the folder holding the audio. A folder that holds a manifest
    (manifest.tsv, manifest.csv, or a meta.csv such as In-the-Wild's) is read through it, which gives
    its labels, attacks and other columns; any other folder is scanned for audio files. "-" is audio
    on ``stdin`` (see ``adfd_core.stdin_audio``).
    """
    if from_list:
        return _read_list(str(source), stdin)
    if str(source) == "-":
        from adfd_core.stdin_audio import stdin_utterance

        stream = stdin or sys.stdin
        if stream is None:  # started with standard input closed
            raise CorpusError("<stdin>: closed; pipe the audio in")
        return [stdin_utterance(getattr(stream, "buffer", stream))]
    source = Path(source)
    if protocol is not None:
        if not source.is_dir():
            raise CorpusError(f"{source}: no such folder (with a protocol, give the folder holding the audio)")
        return _read_description(Path(protocol), source, subset)
    if source.is_dir():
        return _from_folder_manifest(source) or from_folder(source)
    if source.is_file():
        return _read_description(source, None, subset)
    raise CorpusError(f"{source}: no such file or folder")


def _from_folder_manifest(folder: Path) -> list[Utterance] | None:
    """The utterances of the first manifest ``folder`` holds (see _FOLDER_MANIFESTS), saying so on the log;
    None, saying why, when there is none or it cannot be used."""
    for name in _FOLDER_MANIFESTS:
        manifest = folder / name
        if not manifest.is_file():
            continue
        try:
            utts = from_in_the_wild(manifest) if _sniff(manifest) == "itw" else from_manifest(manifest)
        except CorpusError as exc:
            log.warning("%s: not used, so the folder is scanned for audio and labelled by its folder names: %s", manifest, exc)
            return None
        log.info("%s: %d recordings, labels and columns (%s) from this manifest", manifest, len(utts),
                 ", ".join(_header(_first_line(manifest))))
        return utts
    return None


def read_inputs(sources: Sequence[str], path_list: str | None = None, protocol: Path | None = None,
                subset: str = "eval", stdin: TextIO | None = None) -> list[Utterance]:
    """The recordings several command-line inputs name, in order: a path list (``path_list``, "-" for
    stdin) first, then each source: an audio file (its id: the name without the suffix), a folder,
    a corpus description, or "-": audio on stdin. Each file is taken once, with unique ids (``distinct``)."""
    if path_list == "-" and "-" in sources:
        raise CorpusError("<stdin>: holds either a path list (--from-list -) or audio ('-'), not both")
    utts = read_corpus(path_list, from_list=True, stdin=stdin) if path_list is not None else []
    for source in sources:
        if Path(source).suffix.lower() in AUDIO_SUFFIXES:
            utts += from_list([source], source="the command line")
        else:
            utts += read_corpus(source, protocol=protocol, subset=subset, stdin=stdin)
    return distinct(utts)
