"""Shared fixtures. Test audio comes from tests/audio_factory.py, made fresh in temp folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import audio_factory  # noqa: E402


@pytest.fixture
def make_audio():
    """The audio_factory module, for building signals and files in a test's tmp_path."""
    return audio_factory
