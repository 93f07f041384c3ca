"""The score table: one row per recording, as `adfd score` writes it and `fuse` and `evaluate` read it.

Native format: UTF-8 TSV with a header, columns ``id path score p_spoof decision label attack``
and optional extra columns after them (``error`` for a recording that could not be scored: its
score is empty or ``nan``). ``score`` is a log-odds, ln(P(bonafide)/P(spoof)): higher means more
bona fide (the ASVspoof convention). The table holds nothing else, so pandas (``read_csv(sep="\t")``),
csvkit, awk and R read it as it is.

What made a table (its provenance) is written beside a file, in ``FILE.meta.json`` (``adfd_core.sidecar``),
whatever the format, with the sha256 of the table it describes. Asked for (``inline_provenance``), it
also goes in the table itself: leading ``#`` lines in TSV, a first ``{"_meta": {...}}`` record in JSON
lines. Reading takes the sidecar while it matches the table (a table changed since is not described
by it), else what the table holds, ``#`` lines of tables from earlier adfd versions included.

Also read: JSON lines (one object per row, as written here), ASVspoof 2019 CM score files
(``ID ATTACK KEY SCORE``), ASVspoof 2021 score files (``ID SCORE``) and ASVspoof 5 TSVs (header
``filename  cm-score`` with an optional ``cm-label``/``label``/``key`` column). Written in all of
these; the ASVspoof formats never carry provenance inline, so official scorers read them.
Text cells (ids, paths, attacks, errors) are written with ``adfd_core.escaping``'s backslash escapes
(spaces too in the whitespace-separated ASVspoof 2019 and 2021 formats) and unescaped on reading, so
any file name survives a round trip; JSON lines use JSON's own escapes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, TextIO

import numpy as np

from adfd_core import jsontext
from adfd_core.audio import AUDIO_SUFFIXES
from adfd_core.corpus import normalize_label, read_key
from adfd_core.errors import AdfdError
from adfd_core.escaping import escape, unescape
from adfd_core.option_values import FORMATS
from adfd_core.outputs import atomic_text, why_unwritable
from adfd_core.provenance import digest
from adfd_core.sidecar import file_sha256, read_sidecar, sidecar_path, write_sidecar

COLUMNS = ("id", "path", "score", "p_spoof", "decision", "label", "attack")
DECISIONS = ("bonafide", "spoof")
UNKNOWN = "-"  # an unknown path or attack, or no decision (a row without a score)
SCORE_LIMIT = 30.0  # |log-odds| cap: probabilities of exactly 0 or 1 stay finite

META_KEY = "_meta"  # the key of a JSON lines table's provenance record
TABLE_SHA256 = "table_sha256"  # the sidecar's record of the table it describes
INLINE_PROVENANCE = ("tsv", "jsonl")  # the formats that can carry their provenance inside
_ASV5_ID, _ASV5_SCORE = "filename", "cm-score"
_ASV5_LABELS = ("cm-label", "label", "key")
_FORMATS_READ = (
    "adfd TSV (header id ... score ...), JSON lines, ASVspoof 2019 CM scores (ID ATTACK KEY SCORE), "
    "ASVspoof 2021 scores (ID SCORE) or ASVspoof 5 TSV (header filename, cm-score)"
)


class ScoreTableError(AdfdError):
    """An unreadable or inconsistent score table; the message names the file (and line)."""


@dataclass
class ScoreTable:
    """Per-recording scores, one list (or array) per column, all of the same length.

    ``scores`` are log-odds (higher = more bona fide), NaN where a recording has no score;
    ``p_spoof`` the matching probability of spoof. ``source`` names where the table came
    from and ``sha256`` is the digest of the text it was read from (empty when made in memory);
    ``provenance`` what made it (see the module doc).
    """

    ids: list[str]
    paths: list[str]
    scores: np.ndarray
    p_spoof: np.ndarray
    decisions: list[str]
    labels: list[str]
    attacks: list[str]
    extra: dict[str, list[str]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    source: str = "<table>"
    sha256: str = ""

    def __post_init__(self) -> None:
        columns = [self.paths, self.scores, self.p_spoof, self.decisions, self.labels, self.attacks, *self.extra.values()]
        if any(len(c) != len(self.ids) for c in columns):
            raise ValueError(f"score table columns differ in length from the {len(self.ids)} ids")

    @classmethod
    def build(cls, ids: Sequence[str], scores: Sequence[float] | np.ndarray, *, p_spoof: np.ndarray | None = None,
              paths: Sequence[str] | None = None, labels: Sequence[str] | None = None,
              attacks: Sequence[str] | None = None, extra: dict[str, list[str]] | None = None,
              provenance: dict[str, Any] | None = None, source: str = "<table>", threshold: float = 0.0) -> ScoreTable:
        """A table from ids and scores; p_spoof (default: from the scores) and decisions at ``threshold`` follow."""
        n = len(ids)
        scores = np.asarray(scores, dtype=np.float64)
        return cls(
            ids=list(ids),
            paths=list(paths) if paths is not None else [UNKNOWN] * n,
            scores=scores,
            p_spoof=np.asarray(p_spoof, dtype=np.float64) if p_spoof is not None else spoof_probability(scores),
            decisions=decide(scores, threshold),
            labels=list(labels) if labels is not None else ["unknown"] * n,
            attacks=list(attacks) if attacks is not None else [UNKNOWN] * n,
            extra=dict(extra or {}),
            provenance=dict(provenance or {}),
            source=source,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: Sequence[int] | np.ndarray) -> ScoreTable:
        """The table restricted to ``rows`` (indices), in that order."""
        rows = np.asarray(rows, dtype=np.int64)

        def pick(values: list[str]) -> list[str]:
            return [values[i] for i in rows]

        return replace(
            self, ids=pick(self.ids), paths=pick(self.paths), scores=self.scores[rows], p_spoof=self.p_spoof[rows],
            decisions=pick(self.decisions), labels=pick(self.labels), attacks=pick(self.attacks),
            extra={k: pick(v) for k, v in self.extra.items()},
        )


def log_odds(p_spoof: np.ndarray) -> np.ndarray:
    """Scores ln((1 - p) / p) of spoof probabilities, capped at +-SCORE_LIMIT; NaN stays NaN."""
    p_spoof = np.asarray(p_spoof, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.clip(np.log1p(-p_spoof) - np.log(p_spoof), -SCORE_LIMIT, SCORE_LIMIT)


def spoof_probability(scores: np.ndarray) -> np.ndarray:
    """P(spoof) of log-odds scores ln(P(bonafide)/P(spoof)): 1 / (1 + e^score), NaN stays NaN."""
    with np.errstate(invalid="ignore"):
        return np.exp(-np.logaddexp(0.0, scores))


def decide(scores: Sequence[float] | np.ndarray, threshold: float = 0.0) -> list[str]:
    """spoof where the score < ``threshold`` (at 0: p_spoof > 0.5 for log-odds), bonafide at or above it,
    "-" without a score."""
    return [UNKNOWN if np.isnan(s) else "spoof" if s < threshold else "bonafide" for s in scores]


# --------------------------------------------------------------------------- reading


def read_scores(source: str | Path | TextIO) -> ScoreTable:
    """A score table in any format this module reads (see the module doc); "-" reads stdin.
    Its ``provenance``: its sidecar's while that matches the table, else what the table holds."""
    name, text = _read_text(source)
    lines = text.splitlines()
    comments, start = [], 0
    while start < len(lines) and (not lines[start].strip() or lines[start].startswith("#")):
        if lines[start].startswith("#"):
            comments.append(unescape(lines[start][1:].strip()))
        start += 1
    if start == len(lines):
        raise ScoreTableError(f"{name}: no scores")
    numbers = [n for n, line in enumerate(lines[start:], start + 1) if line.strip()]
    texts = [lines[n - 1] for n in numbers]
    record = _meta_record(name, numbers[0], texts[0])
    if record is not None:
        numbers, texts = numbers[1:], texts[1:]
        if not texts:
            raise ScoreTableError(f"{name}: no scores")
    table = _table(name, *_parser_for(name, texts[0])(name, numbers, texts))
    table.source = name
    table.sha256 = hashlib.sha256(text.encode()).hexdigest()
    inline = record if record is not None else _from_comments(comments)
    table.provenance = _matching_sidecar(source, table.sha256) or inline
    return table


def read_provenance(path: str | Path) -> tuple[dict[str, Any], str]:
    """(what made the table at ``path``, where that was found: "sidecar", "table" or "none")."""
    table = read_scores(path)
    if _matching_sidecar(path, table.sha256) is not None:
        return table.provenance, "sidecar"
    return table.provenance, "table" if table.provenance else "none"


def _matching_sidecar(source: str | Path | TextIO, sha256: str) -> dict[str, Any] | None:
    """The record of the sidecar of a table file whose text has digest ``sha256``; None when there is
    none or it describes another text (the table was changed or replaced since)."""
    if not isinstance(source, (str, Path)) or str(source) == "-":
        return None
    record = read_sidecar(source)
    if record is None or record.pop(TABLE_SHA256, None) != sha256:
        return None
    return record


def describe_scores(path: str | Path) -> dict[str, Any]:
    """What `adfd info` shows of a score table: rows, labels, decisions, extra columns and its provenance."""
    table = read_scores(path)
    record, found = read_provenance(path)
    return {"path": str(path), "rows": len(table), "unscored": int(np.isnan(table.scores).sum()),
            "labels": dict(Counter(table.labels)), "decisions": dict(Counter(table.decisions)),
            "extra_columns": list(table.extra), "provenance": record, "provenance_from": found,
            "sidecar_outdated": found != "sidecar" and sidecar_path(path).is_file()}


def _meta_record(name: str, line: int, text: str) -> dict[str, Any] | None:
    """The provenance of a JSON lines table's first record {"_meta": {...}}; None for any other line."""
    if not text.lstrip().startswith("{" + json.dumps(META_KEY)):
        return None
    try:
        obj = jsontext.loads(text)
    except json.JSONDecodeError as exc:
        raise ScoreTableError(f"{name}:{line}: not JSON ({exc.msg})") from None
    if not (isinstance(obj, dict) and list(obj) == [META_KEY] and isinstance(obj[META_KEY], dict)):
        raise ScoreTableError(f"{name}:{line}: a {META_KEY} record holds one object and nothing else")
    return obj[META_KEY]


def _from_comments(comments: list[str]) -> dict[str, Any]:
    """Provenance from ``#`` lines "key: value" (value JSON where it parses); other lines under "comments"."""
    record: dict[str, Any] = {}
    for comment in comments:
        key, sep, value = comment.partition(": ")
        if not sep or not key or " " in key:
            record.setdefault("comments", []).append(comment)
            continue
        try:
            record[key] = json.loads(value)
        except json.JSONDecodeError:
            record[key] = value
    return record


def _read_text(source: str | Path | TextIO) -> tuple[str, str]:
    """(name for messages, whole text) of a file, "-" (stdin) or an open text stream."""
    if not isinstance(source, (str, Path)):
        return getattr(source, "name", "<stream>"), source.read()
    if str(source) == "-":
        return "<stdin>", sys.stdin.read()
    try:
        return str(source), Path(source).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ScoreTableError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ScoreTableError(f"{source}: is a folder, not a score table") from None
    except UnicodeDecodeError:
        raise ScoreTableError(f"{source}: not a UTF-8 text file") from None
    except OSError as exc:
        raise ScoreTableError(f"{source}: {exc.strerror or exc}") from None


# A parser turns the numbers and texts of the non-blank lines into (line numbers of the data rows,
# column -> cells, names of the extra columns), the columns it knows named as in COLUMNS.
_Parsed = tuple[list[int], dict[str, list[str]], list[str]]


def _parser_for(name: str, first: str) -> Callable[[str, list[int], list[str]], _Parsed]:
    """The parser for a table whose first data line is ``first``."""
    if first.lstrip().startswith("{"):
        return _parse_jsonl
    header = [h.strip().lower() for h in first.split("\t")]
    if "id" in header and "score" in header:
        return _parse_tsv
    if _ASV5_ID in header and _ASV5_SCORE in header:
        return _parse_asvspoof5
    tokens = first.split()
    if len(tokens) == 4 and tokens[2].lower() in (*DECISIONS, "unknown"):
        return _parse_asvspoof2019
    if len(tokens) == 2:
        return _parse_asvspoof2021
    raise ScoreTableError(f"{name}: unrecognised score table; accepted: {_FORMATS_READ}")


def _tab_separated(name: str, numbers: list[int], texts: list[str]) -> tuple[list[str], list[int], list[list[str]]]:
    """Header names, data line numbers and columns of a tab-separated table; every row as wide as the header."""
    names = [h.strip() for h in texts[0].split("\t")]
    repeated = [c for c, n in Counter(h.lower() for h in names).items() if n > 1]
    if repeated:
        raise ScoreTableError(f"{name}:{numbers[0]}: column {repeated[0]!r} appears more than once")
    return names, numbers[1:], _split(name, numbers[1:], texts[1:], "\t", len(names), "tab-separated fields (as in the header)")


def _split(name: str, numbers: list[int], texts: list[str], sep: str | None, width: int, what: str) -> list[list[str]]:
    """``width`` columns of lines split at ``sep`` (None: whitespace); a line of another width is an error."""
    widths = [len(text.split(sep)) for text in texts]
    bad = next((i for i, n in enumerate(widths) if n != width), None)
    if bad is not None:
        raise ScoreTableError(f"{name}:{numbers[bad]}: expected {width} {what}, found {widths[bad]}")
    if not texts:
        return [[] for _ in range(width)]
    cells = (sep or " ").join(texts).split(sep)  # one flat list: far fewer objects than a list per line
    return [cells[k::width] for k in range(width)]


def _unescaped(texts: list[str], columns: dict[str, list[str]], text_columns: Sequence[str]) -> dict[str, list[str]]:
    """``columns`` with the cells of ``text_columns`` unescaped (looked at only when a line holds a backslash)."""
    if not any("\\" in text for text in texts):
        return columns
    return {k: [unescape(c) for c in v] if k in text_columns else v for k, v in columns.items()}


def _parse_tsv(name: str, numbers: list[int], texts: list[str]) -> _Parsed:
    names, data, columns = _tab_separated(name, numbers, texts)
    keys = [n.lower() if n.lower() in COLUMNS else n for n in map(unescape, names)]
    extra = [k for k in keys if k not in COLUMNS]
    return data, _unescaped(texts, dict(zip(keys, columns)), ["id", "path", "attack", *extra]), extra


def _parse_asvspoof5(name: str, numbers: list[int], texts: list[str]) -> _Parsed:
    names, data, columns = _tab_separated(name, numbers, texts)
    by_name = dict(zip((n.lower() for n in names), columns))
    found = {"id": by_name[_ASV5_ID], "score": by_name[_ASV5_SCORE]}
    label = next((c for c in _ASV5_LABELS if c in by_name), None)
    return data, _unescaped(texts, found, ["id"]) | ({"label": by_name[label]} if label else {}), []


def _parse_asvspoof2019(name: str, numbers: list[int], texts: list[str]) -> _Parsed:
    columns = _split(name, numbers, texts, None, 4, "fields (ID ATTACK KEY SCORE)")
    return numbers, _unescaped(texts, dict(zip(("id", "attack", "label", "score"), columns)), ["id", "attack"]), []


def _parse_asvspoof2021(name: str, numbers: list[int], texts: list[str]) -> _Parsed:
    columns = _split(name, numbers, texts, None, 2, "fields (ID SCORE)")
    return numbers, _unescaped(texts, dict(zip(("id", "score"), columns)), ["id"]), []


def _parse_jsonl(name: str, numbers: list[int], texts: list[str]) -> _Parsed:
    records = []
    for line, text in zip(numbers, texts):
        try:
            obj = jsontext.loads(text)
        except json.JSONDecodeError as exc:
            raise ScoreTableError(f"{name}:{line}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or "id" not in obj or "score" not in obj:
            raise ScoreTableError(f"{name}:{line}: expected an object with at least id and score")
        records.append({k: "" if v is None else str(v) for k, v in obj.items()})
    keys = list(dict.fromkeys(k for r in records for k in r))
    return numbers, {k: [r.get(k, "") for r in records] for k in keys}, [k for k in keys if k not in COLUMNS]


def _table(name: str, numbers: list[int], columns: dict[str, list[str]], extra: list[str]) -> ScoreTable:
    """A table from parsed columns (cells as text); missing columns take their defaults."""
    if not numbers:
        raise ScoreTableError(f"{name}: no rows after the header")
    blank = [""] * len(numbers)
    ids = [c.strip() for c in columns["id"]]
    if "" in ids:
        raise ScoreTableError(f"{name}:{numbers[ids.index('')]}: empty id")
    _check_unique_ids(name, ids, numbers)
    scores = _numbers(name, numbers, "score", columns["score"])
    p_spoof = _numbers(name, numbers, "p_spoof", columns["p_spoof"]) if "p_spoof" in columns else spoof_probability(scores)
    outside = np.flatnonzero((p_spoof < 0) | (p_spoof > 1))
    if outside.size:
        raise ScoreTableError(f"{name}:{numbers[outside[0]]}: p_spoof {p_spoof[outside[0]]} is not in [0, 1]")
    decisions = _mapped(name, numbers, columns["decision"], _decision) if "decision" in columns else decide(scores)
    labels = _mapped(name, numbers, columns.get("label", blank), normalize_label)
    attacks = [UNKNOWN if label == "bonafide" else a.strip() or UNKNOWN for a, label in zip(columns.get("attack", blank), labels)]
    paths = [p.strip() or UNKNOWN for p in columns.get("path", blank)]
    return ScoreTable(ids, paths, scores, p_spoof, decisions, labels, attacks, {k: columns[k] for k in extra})


def _check_unique_ids(name: str, ids: list[str], numbers: list[int]) -> None:
    """A ScoreTableError at the line of the first repeated id."""
    if len(set(ids)) == len(ids):
        return
    seen: set[str] = set()
    for id_, line in zip(ids, numbers):
        if id_ in seen:
            raise ScoreTableError(f"{name}:{line}: duplicate id {id_!r}")
        seen.add(id_)


def _numbers(name: str, numbers: list[int], column: str, cells: list[str]) -> np.ndarray:
    """A numeric column; empty cells and "nan" are NaN (no score). Errors name the first bad line."""
    try:
        return np.array([c.strip() or "nan" for c in cells], dtype=np.float64)
    except ValueError:
        pass  # find the culprit cell by cell
    values = []
    for line, cell in zip(numbers, cells):
        try:
            values.append(float(cell.strip() or "nan"))
        except ValueError:
            raise ScoreTableError(f"{name}:{line}: {column} {cell.strip()!r} is not a number") from None
    return np.array(values, dtype=np.float64)


def _mapped(name: str, numbers: list[int], cells: list[str], convert: Callable[[str], str]) -> list[str]:
    """``convert`` applied to each cell (once per distinct value); its ValueError names the first bad line."""
    converted = {}
    for value in dict.fromkeys(cells):  # distinct values, in order of first appearance
        try:
            converted[value] = convert(value)
        except ValueError as exc:
            raise ScoreTableError(f"{name}:{numbers[cells.index(value)]}: {exc}") from None
    return [converted[c] for c in cells]


def _decision(value: str) -> str:
    value = value.strip().lower()
    if value not in (*DECISIONS, UNKNOWN, ""):
        raise ValueError(f"decision {value!r} is neither bonafide nor spoof")
    return value or UNKNOWN


# --------------------------------------------------------------------------- writing


def write_scores(table: ScoreTable, dest: str | Path | TextIO, fmt: str = "tsv", inline_provenance: bool = False) -> None:
    """Write ``table`` to a file, "-" (stdout) or an open text stream, in one of FORMATS. A file gets
    its provenance beside it (FILE.meta.json); ``inline_provenance`` puts it in the table as well
    (TSV and JSON lines only: see the module doc)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown score table format {fmt!r}; choose from {', '.join(FORMATS)}")
    if inline_provenance and fmt not in INLINE_PROVENANCE:
        raise ValueError(f"the {fmt} format carries no provenance inside; official scorers would not read it")
    if fmt == "asvspoof2019":
        unlabelled = sum(label == "unknown" for label in table.labels)
        if unlabelled:
            raise ScoreTableError(
                f"{dest}: the asvspoof2019 format carries every trial's key, but {unlabelled} rows have no label; "
                "write asvspoof2021 or asvspoof5 instead, or label the inputs"
            )
    with _opened_for_writing(dest) as out:
        if inline_provenance:
            out.writelines(_INLINE[fmt](table.provenance))
        out.writelines(_LINES[fmt](table))
    if isinstance(dest, (str, Path)) and str(dest) != "-" and Path(dest).is_file():
        write_provenance(dest, table.provenance)


def write_provenance(path: str | Path, record: dict[str, Any]) -> None:
    """Write ``record`` as the provenance of the table file at ``path``: its sidecar, with the table's sha256."""
    write_sidecar(path, {**record, TABLE_SHA256: file_sha256(path)})


@contextmanager
def _opened_for_writing(dest: str | Path | TextIO) -> Iterator[TextIO]:
    """A stream for ``dest``; a file is written atomically (no partial table is ever left), stdout flushed at the end."""
    if not isinstance(dest, (str, Path)):
        yield dest
    elif str(dest) == "-":
        try:
            yield sys.stdout
            sys.stdout.flush()
        except OSError as exc:  # a full disk or a closed pipe behind stdout
            raise ScoreTableError(f"<stdout>: cannot write: {why_unwritable(exc)}") from None
    else:
        with atomic_text(dest) as f:
            yield f


def _num(x: float) -> str:
    """A float written so that reading it back gives the same float; NaN as "nan"."""
    return repr(float(x))


def _spaced(text: str) -> str:
    """A field of a whitespace-separated format: ``escape`` with the spaces escaped too."""
    return escape(text, whitespace=True)


def _comment_lines(record: dict[str, Any]) -> Iterator[str]:
    """Provenance as TSV comment lines "# key: value" (value as JSON unless it is text)."""
    for key, value in record.items():
        yield f"# {escape(f'{key}: {value if isinstance(value, str) else json.dumps(value, default=str)}')}\n"


def _meta_line(record: dict[str, Any]) -> Iterator[str]:
    yield json.dumps({META_KEY: record}, default=str) + "\n"


_INLINE = {"tsv": _comment_lines, "jsonl": _meta_line}


def _tsv_lines(t: ScoreTable) -> Iterator[str]:
    yield "\t".join(map(escape, [*COLUMNS, *t.extra])) + "\n"
    ids, paths, attacks, *extra = [list(map(escape, column)) for column in (t.ids, t.paths, t.attacks, *t.extra.values())]
    columns = [ids, paths, map(_num, t.scores), map(_num, t.p_spoof), t.decisions, t.labels, attacks, *extra]
    for cells in zip(*columns):
        yield "\t".join(cells) + "\n"


def _jsonl_lines(t: ScoreTable) -> Iterator[str]:
    def number(x: float) -> float | None:
        return None if np.isnan(x) else float(x)

    for i in range(len(t)):
        row = {"id": t.ids[i], "path": t.paths[i], "score": number(t.scores[i]), "p_spoof": number(t.p_spoof[i]),
               "decision": t.decisions[i], "label": t.labels[i], "attack": t.attacks[i]}
        yield json.dumps({**row, **{k: v[i] for k, v in t.extra.items()}}) + "\n"


def _asvspoof2019_lines(t: ScoreTable) -> Iterator[str]:
    for i in range(len(t)):
        yield f"{_spaced(t.ids[i])} {_spaced(t.attacks[i])} {t.labels[i]} {_num(t.scores[i])}\n"


def _asvspoof2021_lines(t: ScoreTable) -> Iterator[str]:
    for i in range(len(t)):
        yield f"{_spaced(t.ids[i])} {_num(t.scores[i])}\n"


def _asvspoof5_lines(t: ScoreTable) -> Iterator[str]:
    yield f"{_ASV5_ID}\t{_ASV5_SCORE}\n"
    for i in range(len(t)):
        yield f"{escape(t.ids[i])}\t{_num(t.scores[i])}\n"


_LINES = {
    "tsv": _tsv_lines,
    "jsonl": _jsonl_lines,
    "asvspoof2019": _asvspoof2019_lines,
    "asvspoof2021": _asvspoof2021_lines,
    "asvspoof5": _asvspoof5_lines,
}


# --------------------------------------------------------------------------- labels from a key


def utterance_name(id_: str) -> str:
    """The part of an id that keys match on: its last path component, without an audio suffix."""
    name = PurePosixPath(id_)
    return name.stem if name.suffix.lower() in AUDIO_SUFFIXES else name.name


def evaluation_identity(table: ScoreTable, key_path: str | Path | None, subset: str = "all") -> str:
    """A digest of what an evaluation of ``table`` is made from: the table's text and the key's bytes."""
    key = None if key_path is None else (str(key_path), file_sha256(key_path), subset)
    return digest({"scores": table.sha256, "key": key})


def apply_key(table: ScoreTable, key_path: str | Path, subset: str = "all") -> ScoreTable:
    """``table`` with labels and attacks from a protocol, key, meta.csv or manifest, and the key's other columns
    (speaker, codec, source, ...) as extra columns where the table has none of that name ("-" where unlisted).

    A row matches a key entry with the same id, else one with the same utterance name (the id's
    last path component, without an audio suffix). Rows the key does not list keep their label.
    """
    entries = read_key(Path(key_path), subset)
    by_name: dict[str, dict[str, str] | None] = {}
    for id_, entry in entries.items():
        name = utterance_name(id_)
        by_name[name] = None if name in by_name else entry  # None: two entries share the name
    found: list[dict[str, str] | None] = []
    for id_ in table.ids:
        name = utterance_name(id_)
        entry = entries.get(id_) or by_name.get(name)
        if entry is None and name in by_name:
            raise ScoreTableError(f"{key_path}: several entries are named {name!r}; cannot tell which is {id_!r}")
        found.append(entry)
    if not any(found):
        raise ScoreTableError(f"{key_path}: none of the {len(table)} ids of {table.source} is listed (e.g. {table.ids[0]!r})")
    labels = [e["label"] if e else label for e, label in zip(found, table.labels)]
    attacks = [e["attack"] if e else attack for e, attack in zip(found, table.attacks)]
    names = dict.fromkeys(k for e in found if e for k in e)
    added = {k: [(e or {}).get(k, UNKNOWN) for e in found] for k in names if k not in COLUMNS and k not in table.extra}
    return replace(table, labels=labels, attacks=attacks, extra={**table.extra, **added})
