"""Importing the project's scripts (bench/, recipes/), which are not packages, in tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative: str) -> ModuleType:
    """The module of the script at ``relative`` (e.g. "recipes/loso.py") under the project root."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(f"adfd_script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
