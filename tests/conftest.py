"""Shared fixtures. Test audio comes from tests/audio_factory.py, made fresh in temp folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# One torch thread per process: the CLI tests run adfd in subprocesses beside this one, and on a
# 2-core machine threads spinning against each other slow the suite several times over.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import audio_factory  # noqa: E402


@pytest.fixture
def make_audio():
    """The audio_factory module, for building signals and files in a test's tmp_path."""
    return audio_factory
