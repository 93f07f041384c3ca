"""What made an output, kept beside it: ``FILE.meta.json``, so the output itself stays plain for other tools.

A score table or a plot carries no provenance of its own that pandas, awk, R or an image viewer
would trip on; its sidecar holds adfd's provenance record (see ``adfd_core.provenance``) and an
``identity``: a digest of what the output was made from. A command about to replace an output
compares identities (``check_replaceable``), as featurize does with the identity inside its
feature file: the same inputs may be written again, other inputs only with ``--force``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adfd_core.errors import AdfdError
from adfd_core.outputs import OutputError, atomic_text

SUFFIX = ".meta.json"
HASH_CHUNK_BYTES = 1 << 20


class SidecarError(AdfdError):
    """A sidecar that is not a JSON object; the message names it."""


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the provenance of ``path`` goes: the same name with ``.meta.json`` added (scores.tsv.meta.json)."""
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def write_sidecar(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write ``record`` as JSON beside ``path`` (atomically) and return where."""
    where = sidecar_path(path)
    with atomic_text(where) as f:
        json.dump(record, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    return where


def read_sidecar(path: str | os.PathLike) -> dict[str, Any] | None:
    """The record beside ``path``; None when there is none."""
    where = sidecar_path(path)
    try:
        record = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SidecarError(f"{where}: unreadable provenance ({exc})") from None
    if not isinstance(record, dict):
        raise SidecarError(f"{where}: expected a JSON object")
    return record


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def recorded_identity(path: str | os.PathLike) -> str | None:
    """The identity the sidecar of ``path`` records; None when it has no readable one."""
    try:
        return (read_sidecar(path) or {}).get("identity")
    except SidecarError:
        return None


def check_replaceable(path: str | os.PathLike, identity: str, force: bool,
                      recorded: Callable[[Path], str | None] = recorded_identity) -> None:
    """Refuse, before any work, to replace an existing ``path`` made from other inputs, unless ``force``:
    one whose ``recorded`` identity (default: its sidecar's) is not ``identity``. "-" (stdout) is never refused."""
    if force or str(path) == "-" or not Path(path).is_file():
        return
    if recorded(Path(path)) != identity:
        raise OutputError(f"{path}: exists and was made from other inputs; use --force to overwrite it")
