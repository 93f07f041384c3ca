"""What made an output: recorded in every feature file, model file and score table."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from adfd_core import __version__

_PACKAGES = ("torch", "torchaudio", "numpy", "librosa", "h5py", "soundfile", "av")


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape adfd's numbers."""
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def provenance(command: list[str] | None = None, **details: Any) -> dict[str, Any]:
    """adfd version, time, command line, platform and package versions, plus the caller's details."""
    return {
        "adfd_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else list(sys.argv),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        **details,
    }


def digest(obj: Any) -> str:
    """A stable sha256 of a JSON-serializable object (keys sorted)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
