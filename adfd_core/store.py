"""The HDF5 feature file: writer, reader and torch Dataset.

Layout of format ``adfd-features`` version 1::

    /                      attrs: format, format_version, complete, identity, provenance (JSON),
                                  n_utterances, n_failures (what is committed)
    /utterances/<field>    one row per utterance: id, path, label, attack, speaker, group,
                           meta (JSON), content_hash (sha256 of the file), duration_s
    /features/<name>/data  segment features, (rows, C, F, T) float32; for a whole-utterance
                           feature (``wave``) the concatenated samples, (samples,) float32
    /features/<name>/start, /count
                           per utterance: first row (or sample) and how many
                           attrs: spec (JSON: name, version, every parameter), n_rows (committed)
    /failures/<field>      id, path, reason of each input that could not be featurized

While a run is under way the file is ``NAME.partial`` with ``complete = False``; only a finished
run renames it to ``NAME``. Rows past the committed counts are debris from an interruption and
are cut away when the run resumes, so a crash loses at most the uncommitted utterances.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from adfd_core import jsontext
from adfd_core.corpus import Utterance
from adfd_core.errors import AdfdError

if TYPE_CHECKING:
    import torch

FORMAT_NAME = "adfd-features"
FORMAT_VERSION = 1
PARTIAL_SUFFIX = ".partial"
STRING_FIELDS = ("id", "path", "label", "attack", "speaker", "group", "meta", "content_hash")
FAILURE_FIELDS = ("id", "path", "reason")
LABEL_INDEX = {"spoof": 0, "bonafide": 1, "unknown": -1}  # class index used by datasets and models
_ROW_CHUNK_BYTES = 1 << 20  # target HDF5 chunk size
# Buffered feature rows are written to disk past this size: small enough that joining them reuses
# heap memory instead of mapping (and page-faulting) a fresh block each time.
_FLUSH_BYTES = 8 << 20
COMMIT_SECONDS = 1.0  # end_batch commits when the last commit is this old: a kill loses at most this much work

_STR = h5py.string_dtype("utf-8")
log = logging.getLogger(__name__)


class StoreError(AdfdError):
    """A feature file that cannot be used: missing, foreign, of an unknown version, incomplete, or in the way."""


def partial_path(path: Path) -> Path:
    """Where a run writes before it completes: ``feats.h5`` -> ``feats.h5.partial``."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


@dataclass(frozen=True)
class StoredUtterance:
    """One utterance as a feature file holds it."""

    utterance: Utterance
    content_hash: str
    duration_s: float


# --------------------------------------------------------------------------- writing


class FeatureWriter:
    """Appends utterances and their feature rows to a ``.partial`` file; ``commit`` makes them durable.

    Use :meth:`open`, then for each utterance ``add_rows`` (any number of times per feature, in
    order) followed by ``end_utterance``; ``add_failure`` for inputs that failed; ``end_batch``
    between utterances (it commits every COMMIT_SECONDS: a commit costs milliseconds, and every
    batch of a fast front-end is a few); ``finish`` at the end. ``close`` without ``finish`` leaves
    a resumable partial file.
    """

    def __init__(self, h5: h5py.File, final_path: Path, specs: Mapping[str, dict]):
        self._h5 = h5
        self.final_path = final_path
        self._specs = dict(specs)
        self._rows: dict[str, list[np.ndarray]] = {name: [] for name in specs}
        self._row_count: dict[str, int] = {name: 0 for name in specs}  # rows of the open utterance
        self._starts: dict[str, list[int]] = {name: [] for name in specs}
        self._counts: dict[str, list[int]] = {name: [] for name in specs}
        # groups and datasets looked up once: the lookups cost as much as a commit's writes
        self._groups = {name: h5["features"][name] for name in specs}
        self._datasets = {name: {key: group[key] for key in ("data", "start", "count")} for name, group in self._groups.items()}
        self._columns = {field: h5["utterances"][field] for field in (*STRING_FIELDS, "duration_s")}
        self._failure_columns = {field: h5["failures"][field] for field in FAILURE_FIELDS}
        self._next_row = {name: int(group.attrs["n_rows"]) for name, group in self._groups.items()}
        self._utts: list[StoredUtterance] = []
        self._failures: list[tuple[str, str, str]] = []
        self._buffered_bytes = 0
        self._committed_at = time.monotonic()
        self.done_ids: set[str] = set(_read_strings(self._columns["id"], int(h5.attrs["n_utterances"])))

    @classmethod
    def open(
        cls,
        path: Path,
        specs: Mapping[str, dict],
        identity: str,
        provenance: Mapping[str, Any],
        force: bool = False,
    ) -> "FeatureWriter | None":
        """Start or resume a run writing ``path``; None when ``path`` is already complete for ``identity``.

        specs: feature name -> front-end spec dict. identity: a digest of everything that determines
        the file's contents (specs and inputs); a file or partial of another identity is refused
        unless ``force``, which deletes it.
        """
        path = Path(path)
        part = partial_path(path)
        if path.exists() and not force:
            if identity_of(path) == identity:
                return None
            raise StoreError(f"{path}: exists and was made from other inputs or features; use --force to overwrite it")
        h5 = _resume(part, identity, force) if part.exists() else None
        if h5 is None:
            part.parent.mkdir(parents=True, exist_ok=True)
            h5 = _create(part, specs, identity, provenance)
        if path.exists():
            path.unlink()  # only reached with force
        return cls(h5, path, specs)

    def take_failures(self) -> list[tuple[str, str, str]]:
        """Failures recorded by an earlier attempt; they are dropped so this run retries those inputs."""
        n = int(self._h5.attrs["n_failures"])
        old = list(zip(*(_read_strings(self._failure_columns[f], n) for f in FAILURE_FIELDS))) if n else []
        self._h5.attrs["n_failures"] = 0
        return old

    def add_rows(self, name: str, rows: np.ndarray) -> None:
        """Append rows of feature ``name`` for the open utterance: (n, C, F, T), or (samples,) for whole-utterance."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        self._rows[name].append(rows)
        self._row_count[name] += len(rows)
        self._buffered_bytes += rows.nbytes
        if self._buffered_bytes > _FLUSH_BYTES:
            self._flush_rows()

    def end_utterance(self, stored: StoredUtterance) -> None:
        """Close the open utterance: the rows added since the last call belong to it."""
        for name in self._specs:
            committed_or_buffered = self._next_row[name] + sum(len(r) for r in self._rows[name])
            self._starts[name].append(committed_or_buffered - self._row_count[name])
            self._counts[name].append(self._row_count[name])
            self._row_count[name] = 0
        self._utts.append(stored)
        self.done_ids.add(stored.utterance.id)

    def discard_utterance(self) -> None:
        """Drop the rows added for the open utterance (it failed part-way)."""
        for name, pending in self._rows.items():
            buffered = sum(len(r) for r in pending)
            start = self._next_row[name] + buffered - self._row_count[name]
            if start >= self._next_row[name]:
                keep = start - self._next_row[name]
                self._rows[name] = [np.concatenate(pending)[:keep]] if keep else []
            else:  # part of it was flushed already, and with it everything before it
                self._rows[name] = []
                self._next_row[name] = start
            self._row_count[name] = 0
        self._buffered_bytes = sum(r.nbytes for pending in self._rows.values() for r in pending)

    def add_failure(self, utt_id: str, path: str, reason: str) -> None:
        self._failures.append((utt_id, path, reason))

    def end_batch(self) -> None:
        """Every utterance added so far has ended: commit if the last commit is COMMIT_SECONDS old."""
        if time.monotonic() - self._committed_at >= COMMIT_SECONDS:
            self.commit()

    def commit(self) -> None:
        """Write everything added so far and move the committed counts past it."""
        if any(self._row_count.values()):
            raise RuntimeError("commit() inside an open utterance")
        self._flush_rows()
        h5 = self._h5
        n_old = int(h5.attrs["n_utterances"])
        if self._utts:
            for field, values in _utterance_columns(self._utts).items():
                _write_at(self._columns[field], n_old, values)
            for name, datasets in self._datasets.items():
                _write_at(datasets["start"], n_old, np.asarray(self._starts[name], dtype=np.int64))
                _write_at(datasets["count"], n_old, np.asarray(self._counts[name], dtype=np.int64))
                self._starts[name].clear()
                self._counts[name].clear()
        n_fail = int(h5.attrs["n_failures"])
        if self._failures:
            for i, field in enumerate(FAILURE_FIELDS):
                _write_at(self._failure_columns[field], n_fail, [f[i] for f in self._failures])
        for name, group in self._groups.items():
            group.attrs["n_rows"] = self._next_row[name]
        h5.attrs["n_utterances"] = n_old + len(self._utts)
        h5.attrs["n_failures"] = n_fail + len(self._failures)
        self._utts.clear()
        self._failures.clear()
        h5.flush()
        self._committed_at = time.monotonic()

    def finish(self) -> Path:
        """Commit, mark complete, close and move the partial file to its final name."""
        self.commit()
        self._h5.attrs["complete"] = True
        part = Path(self._h5.filename)
        self._h5.close()
        os.replace(part, self.final_path)
        return self.final_path

    def close(self) -> None:
        """Close without completing: the partial file stays, resumable up to the last commit."""
        if self._h5.id.valid:
            self._h5.close()

    def _flush_rows(self) -> None:
        for name, pending in self._rows.items():
            if not pending:
                continue
            block = np.concatenate(pending) if len(pending) > 1 else pending[0]
            _write_at(self._datasets[name]["data"], self._next_row[name], block)
            self._next_row[name] += len(block)
            pending.clear()
        self._buffered_bytes = 0


def _create(part: Path, specs: Mapping[str, dict], identity: str, provenance: Mapping[str, Any]) -> h5py.File:
    h5 = h5py.File(part, "w")
    h5.attrs.update(
        format=FORMAT_NAME,
        format_version=FORMAT_VERSION,
        complete=False,
        identity=identity,
        provenance=json.dumps(provenance, sort_keys=True),
        n_utterances=0,
        n_failures=0,
    )
    utts = h5.create_group("utterances")
    for field in STRING_FIELDS:
        utts.create_dataset(field, shape=(0,), maxshape=(None,), dtype=_STR, chunks=(1024,))
    utts.create_dataset("duration_s", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(1024,))
    failures = h5.create_group("failures")
    for field in FAILURE_FIELDS:
        failures.create_dataset(field, shape=(0,), maxshape=(None,), dtype=_STR, chunks=(256,))
    feats = h5.create_group("features")
    for name, spec in specs.items():
        group = feats.create_group(name)
        group.attrs["spec"] = json.dumps(spec, sort_keys=True)
        group.attrs["n_rows"] = 0
        row_shape = tuple(spec["row_shape"])
        row_bytes = 4 * int(np.prod(row_shape)) if row_shape else 4
        chunk_rows = max(1, _ROW_CHUNK_BYTES // row_bytes)
        group.create_dataset(
            "data", shape=(0, *row_shape), maxshape=(None, *row_shape), dtype=np.float32, chunks=(chunk_rows, *row_shape)
        )
        for index in ("start", "count"):
            group.create_dataset(index, shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
    h5.flush()
    return h5


def _resume(part: Path, identity: str, force: bool) -> h5py.File | None:
    """Reopen an interrupted run's partial file, copied up to its committed length; None to start afresh.

    A partial of another identity is refused (or deleted with ``force``); one too damaged to resume
    (the process was killed mid-write) is deleted with a warning, since it was never complete.
    """
    try:
        h5 = h5py.File(part, "r+")
    except OSError as err:
        return _start_over(part, err)
    try:
        found = str(h5.attrs["identity"])
    except (OSError, KeyError) as err:  # killed mid-write: not even its identity can be read
        h5.close()
        return _start_over(part, err)
    if force or found != identity:
        h5.close()
        if not force:
            raise StoreError(f"{part}: an interrupted run with other inputs or features is in the way; use --force to start over")
        part.unlink()
        return None
    try:
        n_utts = int(h5.attrs["n_utterances"])
        h5 = _fresh_copy(part, h5)
    except (OSError, KeyError, ValueError, RuntimeError) as err:  # opened, but killed mid-write: damaged
        if h5.id.valid:
            h5.close()
        return _start_over(part, err)
    log.info("%s: resuming after %d utterances", part, n_utts)
    return h5


def _fresh_copy(part: Path, h5: h5py.File) -> h5py.File:
    """The committed contents of a partial file copied into a new file that replaces it, open for writing.

    Only committed elements are read, and the copy is made the way a new run makes its file. A kill
    inside a commit's flush can leave a string column's chunk on disk holding references, past the
    committed length, to heap objects that never reached the disk ("bad heap index" to any code that
    copies or overwrites whole chunks); a new file has none. Reading everything committed also raises
    on damage that a resumed run would meet later.
    """
    n_utts, n_fail = int(h5.attrs["n_utterances"]), int(h5.attrs["n_failures"])
    specs = {name: json.loads(group.attrs["spec"]) for name, group in h5["features"].items()}
    fresh = part.with_name(part.name + ".resume")
    out = _create(fresh, specs, str(h5.attrs["identity"]), json.loads(h5.attrs["provenance"]))
    try:
        for group, n in (("utterances", n_utts), ("failures", n_fail)):
            for field in out[group]:
                _write_at(out[group][field], 0, _read_committed(h5[group][field], 0, n))
        for name, group in h5["features"].items():
            copy = out["features"][name]
            for index in ("start", "count"):
                _write_at(copy[index], 0, _read_committed(group[index], 0, n_utts))
            data, n_rows = group["data"], int(group.attrs["n_rows"])
            step = max(1, _FLUSH_BYTES // (data.dtype.itemsize * math.prod(data.shape[1:])))
            for start in range(0, n_rows, step):
                _write_at(copy["data"], start, _read_committed(data, start, min(n_rows, start + step)))
            copy.attrs["n_rows"] = n_rows
        out.attrs.update(n_utterances=n_utts, n_failures=n_fail)
        out.close()
    except BaseException:
        out.close()
        fresh.unlink()
        raise
    h5.close()
    os.replace(fresh, part)
    return h5py.File(part, "r+")


def _read_committed(ds: h5py.Dataset, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a partial file's dataset; ValueError if it holds fewer (it was cut short)."""
    values = ds[start:stop]
    if len(values) != stop - start:
        raise ValueError(f"{ds.name} holds {ds.shape[0]} rows, fewer than the {stop} committed")
    return values


def _start_over(part: Path, err: Exception) -> None:
    log.warning("%s: interrupted run left an unreadable file (%s); starting over", part, err)
    part.unlink()


def committed_ids(path: Path) -> set[str]:
    """The utterance ids an interrupted run committed to ``path``'s partial file; empty when there is
    none or it cannot be read (``FeatureWriter.open`` then decides what to do with it)."""
    part = partial_path(Path(path))
    try:
        with h5py.File(part, "r") as h5:
            return set(_read_strings(h5["utterances"]["id"], int(h5.attrs["n_utterances"])))
    except (OSError, KeyError):
        return set()


def identity_of(path: Path) -> str | None:
    """The identity a feature file records (None when it cannot be read)."""
    try:
        with h5py.File(path, "r") as h5:
            return str(h5.attrs.get("identity", ""))
    except OSError:
        return None


def _write_at(ds: h5py.Dataset, offset: int, values: Sequence | np.ndarray) -> None:
    n = len(values)
    if ds.shape[0] < offset + n:
        ds.resize(offset + n, axis=0)
    if n and isinstance(values, list) and isinstance(values[0], str):
        values = [v.encode("utf-8", "surrogateescape") for v in values]  # a file name's bytes that are not UTF-8 kept as they are
    if n:
        ds[offset : offset + n] = values


def _utterance_columns(utts: Sequence[StoredUtterance]) -> dict[str, list | np.ndarray]:
    cols: dict[str, list | np.ndarray] = {
        "id": [s.utterance.id for s in utts],
        "path": [str(s.utterance.path) for s in utts],
        "label": [s.utterance.label for s in utts],
        "attack": [s.utterance.attack for s in utts],
        "speaker": [s.utterance.speaker for s in utts],
        "group": [s.utterance.group for s in utts],
        "meta": [json.dumps(dict(s.utterance.meta), sort_keys=True) for s in utts],
        "content_hash": [s.content_hash for s in utts],
    }
    cols["duration_s"] = np.asarray([s.duration_s for s in utts], dtype=np.float64)
    return cols


def _read_strings(ds: h5py.Dataset, n: int) -> list[str]:
    return list(ds.asstr(errors="surrogateescape")[:n]) if n else []


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class FeatureInfo:
    """One feature dataset of a file: its front-end spec, the shape of a row, and how many rows."""

    name: str
    spec: dict
    row_shape: tuple[int, ...]
    n_rows: int

    @property
    def whole_utterance(self) -> bool:
        """True for features stored as one waveform per utterance (``wave``) rather than segment rows."""
        return self.spec.get("params", {}).get("segment_seconds") is None


class FeatureFile:
    """Read-only view of a feature file; refuses foreign, newer and incomplete files.

    ``allow_incomplete=True`` opens a ``.partial`` file too (for ``adfd info``), showing what is committed.
    """

    def __init__(self, path: str | os.PathLike, allow_incomplete: bool = False):
        self.path = Path(path)
        if not self.path.exists():
            hint = f" (an interrupted run left {partial_path(self.path)}: rerun featurize to finish it)" if partial_path(
                self.path
            ).exists() else ""
            raise StoreError(f"{self.path}: no such feature file{hint}")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as err:
            raise StoreError(f"{self.path}: not an HDF5 feature file ({err})") from err
        attrs = self._h5.attrs
        if attrs.get("format") != FORMAT_NAME:
            self._h5.close()
            raise StoreError(f"{self.path}: not an adfd feature file (format attribute is {attrs.get('format')!r})")
        version = int(attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            self._h5.close()
            raise StoreError(
                f"{self.path}: feature file format version {version}; this adfd reads version {FORMAT_VERSION}"
            )
        self.complete = bool(attrs.get("complete", False))
        if not self.complete and not allow_incomplete:
            self._h5.close()
            raise StoreError(f"{self.path}: incomplete feature file (an interrupted run); rerun featurize to finish it")
        try:
            self._read_layout()
        except StoreError:
            self._h5.close()
            raise

    def _read_layout(self) -> None:
        """Counts, front-end specs and per-utterance extents, each checked against what the file really holds
        before anything of that size is read; a StoreError for a file that reads elsewhere or declares more."""
        h5 = self._h5
        self.n_utterances = _count(self.path, h5.attrs, "n_utterances")
        self.provenance: dict = _json_attr(self.path, h5.attrs, "provenance")
        for group, fields in (("utterances", (*STRING_FIELDS, "duration_s")), ("failures", FAILURE_FIELDS)):
            n = self.n_utterances if group == "utterances" else _count(self.path, h5.attrs, "n_failures")
            for field in fields:
                _stored(self.path, _member(self.path, _member(self.path, h5, group, h5py.Group), field, h5py.Dataset), n)
        features = _member(self.path, h5, "features", h5py.Group)
        self.features: dict[str, FeatureInfo] = {}
        self._starts: dict[str, np.ndarray] = {}
        self._counts: dict[str, np.ndarray] = {}
        for name in features:
            group = _member(self.path, features, name, h5py.Group)
            spec, n_rows = _json_attr(self.path, group.attrs, "spec"), _count(self.path, group.attrs, "n_rows")
            if not isinstance(spec, dict) or not isinstance(spec.get("params"), dict):
                raise StoreError(f"{self.path}: feature {name!r} has a spec without params")
            data = _stored(self.path, _member(self.path, group, "data", h5py.Dataset), n_rows, np.float32)
            starts, counts = (self._index(group, key) for key in ("start", "count"))
            outside = np.flatnonzero((starts < 0) | (counts < 0) | (counts > n_rows - np.maximum(starts, 0)))
            if outside.size:
                i = outside[0]
                raise StoreError(f"{self.path}: feature {name!r} gives utterance {i} rows {starts[i]} to "
                                 f"{starts[i]} + {counts[i]}, outside its {n_rows} rows")
            self.features[name] = FeatureInfo(name, spec, tuple(data.shape[1:]), n_rows)
            self._starts[name], self._counts[name] = starts, counts

    def _index(self, group: h5py.Group, key: str) -> np.ndarray:
        """A feature's ``start`` or ``count`` column, (n_utterances,) int64."""
        ds = _stored(self.path, _member(self.path, group, key, h5py.Dataset), self.n_utterances, np.int64)
        return ds[: self.n_utterances]

    def __enter__(self) -> "FeatureFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._h5.id.valid:
            self._h5.close()

    def column(self, field: str) -> list[str] | np.ndarray:
        """One utterance field for every utterance: strings, or float64 for ``duration_s``."""
        ds = self._h5["utterances"][field]
        if field == "duration_s":
            return ds[: self.n_utterances]
        return _read_strings(ds, self.n_utterances)

    def field(self, key: str) -> list[str] | None:
        """One field of every utterance as strings: a column (``id``, ``label``, ``attack``, ``speaker``,
        ``group``, ...) or a manifest column kept in ``meta`` (``source``, ``family``; "" where an
        utterance lacks it); None when no utterance has it."""
        if key in STRING_FIELDS and key != "meta":
            return self.column(key)
        meta = [json.loads(m) for m in self.column("meta")]
        if not any(key in m for m in meta):
            return None
        return [str(m.get(key, "")) for m in meta]

    def utterances(self) -> list[StoredUtterance]:
        """Every committed utterance, in file order."""
        cols = {f: self.column(f) for f in (*STRING_FIELDS, "duration_s")}
        return [
            StoredUtterance(
                Utterance(
                    id=cols["id"][i],
                    path=Path(cols["path"][i]),
                    label=cols["label"][i],
                    attack=cols["attack"][i],
                    speaker=cols["speaker"][i],
                    group=cols["group"][i],
                    meta=self._meta(cols["id"][i], cols["meta"][i]),
                ),
                content_hash=cols["content_hash"][i],
                duration_s=float(cols["duration_s"][i]),
            )
            for i in range(self.n_utterances)
        ]

    def _meta(self, utt_id: str, text: str) -> dict:
        try:
            meta = jsontext.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{self.path}: utterance {utt_id!r} has meta that is not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise StoreError(f"{self.path}: utterance {utt_id!r} has meta that is not a JSON object")
        return meta

    def failures(self) -> list[dict[str, str]]:
        """Inputs the run could not featurize: id, path, reason."""
        n = int(self._h5.attrs["n_failures"])
        group = self._h5["failures"]
        return [dict(zip(FAILURE_FIELDS, row)) for row in zip(*(_read_strings(group[f], n) for f in FAILURE_FIELDS))]

    def feature(self, name: str) -> FeatureInfo:
        """The feature called ``name``; a clear error listing those present when absent."""
        if name not in self.features:
            raise StoreError(f"{self.path}: has no feature {name!r} (it holds: {', '.join(self.features) or 'none'})")
        return self.features[name]

    def rows(self, name: str, index: int) -> np.ndarray:
        """Feature rows of utterance ``index``: (segments, C, F, T), or (samples,) for whole-utterance features."""
        self.feature(name)
        start, count = int(self._starts[name][index]), int(self._counts[name][index])
        return self._h5["features"][name]["data"][start : start + count]

    def all_rows(self, name: str) -> np.ndarray:
        """Every committed row (or sample) of feature ``name`` in one read: (n_rows, C, F, T) float32."""
        return self._h5["features"][name]["data"][: self.feature(name).n_rows]

    def extent(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Per utterance, the first row (or sample) of feature ``name`` and how many: two (n_utterances,) int64."""
        self.feature(name)
        return self._starts[name], self._counts[name]

    @property
    def attrs(self) -> Mapping[str, Any]:
        return self._h5.attrs


def _member(path: Path, group: h5py.Group, name: str, kind: type) -> Any:
    """``group[name]``, refused unless it is a plain (hard) link to a ``kind`` (h5py.Group or h5py.Dataset):
    a soft or external link could lead into another file on the machine, or round in a loop."""
    link = group.get(name, getlink=True)
    where = f"{group.name.rstrip('/')}/{name}"
    if link is None:
        raise StoreError(f"{path}: not a complete feature file (it lacks {where})")
    if not isinstance(link, h5py.HardLink):
        link_kind = {h5py.SoftLink: "a soft", h5py.ExternalLink: "an external"}.get(type(link), f"a {type(link).__name__}")
        raise StoreError(f"{path}: {where} is {link_kind} link; feature files hold none (one could lead into another file, or loop)")
    member = group[name]
    if not isinstance(member, kind):
        raise StoreError(f"{path}: {where} is not a {'group' if kind is h5py.Group else 'dataset'}")
    return member


def _stored(path: Path, ds: h5py.Dataset, n: int, dtype: type | None = None) -> h5py.Dataset:
    """``ds``, refused if its data lies in other files (external or virtual storage), is filtered (adfd writes
    none, and a filter hides how much a read makes), is not of ``dtype`` (when given), or holds fewer than
    the ``n`` rows the file declares: rows past the end, or declared by a shape that no stored data backs."""
    if dtype is not None and ds.dtype != dtype:
        raise StoreError(f"{path}: {ds.name} holds {ds.dtype}, not {np.dtype(dtype)}")
    if ds.external or ds.is_virtual:
        raise StoreError(f"{path}: {ds.name} keeps its data in other files ({'external' if ds.external else 'virtual'} storage)")
    if ds.id.get_create_plist().get_nfilters():
        raise StoreError(f"{path}: {ds.name} is compressed or filtered; adfd feature files are not")
    if not ds.shape:
        raise StoreError(f"{path}: {ds.name} is a scalar, not a column of rows")
    row_bytes = ds.id.get_type().get_size() * math.prod(ds.shape[1:])
    if ds.shape[0] < n or ds.id.get_storage_size() < n * row_bytes:
        held = min(ds.shape[0], ds.id.get_storage_size() // max(row_bytes, 1))
        raise StoreError(f"{path}: declares {n} rows of {ds.name} but holds {held}")
    return ds


def _count(path: Path, attrs: h5py.AttributeManager, key: str) -> int:
    """An attribute that counts something: an integer >= 0."""
    value = attrs.get(key)
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 0:
        shown = value.item() if isinstance(value, np.generic) else value
        raise StoreError(f"{path}: attribute {key} is {shown!r}, not a count")
    return int(value)


def _json_attr(path: Path, attrs: h5py.AttributeManager, key: str) -> Any:
    """An attribute holding JSON (depth-capped: see jsontext)."""
    try:
        return jsontext.loads(attrs[key])
    except KeyError:
        raise StoreError(f"{path}: not a complete feature file (it lacks the {key} attribute)") from None
    except (TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{path}: attribute {key} is not valid JSON ({exc})") from None


# --------------------------------------------------------------------------- torch Dataset


class SegmentDataset:
    """A torch-style map Dataset over every segment row of one feature.

    Item i: (features (C, F, T) float32 tensor, class index per LABEL_INDEX, utterance index).
    The HDF5 file is opened lazily in each DataLoader worker (h5py handles do not survive fork).
    """

    def __init__(self, path: str | os.PathLike, feature: str, utterance_indices: Iterable[int] | None = None):
        with FeatureFile(path) as ff:
            info = ff.feature(feature)
            if info.whole_utterance:
                raise StoreError(f"{path}: feature {feature!r} holds whole waveforms, not segment rows")
            labels = np.asarray([LABEL_INDEX[label] for label in ff.column("label")], dtype=np.int64)
            starts, counts = ff.extent(feature)
        keep = np.arange(len(counts)) if utterance_indices is None else np.asarray(list(utterance_indices), dtype=np.int64)
        self.path, self.feature, self.spec = Path(path), feature, info.spec
        self.utt_of_row = np.repeat(keep, counts[keep])
        self.rows = np.concatenate([np.arange(starts[u], starts[u] + counts[u]) for u in keep]) if len(keep) else np.zeros(0, np.int64)
        self.labels = labels[self.utt_of_row]
        self._data: h5py.Dataset | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple["torch.Tensor", int, int]:
        import torch

        if self._data is None:
            self._data = h5py.File(self.path, "r")["features"][self.feature]["data"]
        x = torch.from_numpy(np.asarray(self._data[int(self.rows[i])], dtype=np.float32))
        return x, int(self.labels[i]), int(self.utt_of_row[i])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_data"] = None
        return state


# --------------------------------------------------------------------------- summary


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """What a feature file holds, as plain data: version, provenance, features, counts, failures.

    Opens incomplete (``.partial``) files too and says so.
    """
    from collections import Counter

    with FeatureFile(path, allow_incomplete=True) as ff:
        prov = ff.provenance
        labels = Counter(ff.column("label"))
        attacks = Counter(a for a in ff.column("attack") if a != "-")
        return {
            "path": str(ff.path),
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "complete": ff.complete,
            "adfd_version": prov.get("adfd_version", "?"),
            "created_at": prov.get("created_at", "?"),
            "command": prov.get("command", []),
            "inputs": prov.get("inputs", {}),
            "n_utterances": ff.n_utterances,
            "total_duration_s": float(np.sum(ff.column("duration_s"))),
            "features": [
                {"name": f.name, "spec": f.spec, "row_shape": list(f.row_shape), "rows": f.n_rows}
                for f in ff.features.values()
            ],
            "labels": {label: labels.get(label, 0) for label in LABEL_INDEX},
            "attacks": dict(sorted(attacks.items())),
            "failures": ff.failures(),
        }
