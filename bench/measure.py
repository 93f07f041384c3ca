"""What the benchmark scripts share: the `adfd` command, the corpus they read, timing a step function, and the
process's memory (Linux /proc)."""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

MIB = 1 << 20
DEVSET = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "devset" / "manifest.tsv"  # beside the checkout
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"}


def corpus_files(corpus: Path | None, files: int, default: Path = DEVSET) -> list[Path]:
    """The first ``files`` audio files of ``corpus`` (a folder, or a TSV manifest with a ``path`` column relative to
    it), or of the ``default`` manifest when None. A corpus that is not there ends the script with one line saying so."""
    where = corpus if corpus is not None else default
    if not where.exists():
        why = "no such file or folder" if corpus is not None else "the default corpus is absent; give --corpus FOLDER or MANIFEST.tsv"
        sys.exit(f"{Path(sys.argv[0]).name}: {where}: {why}")
    if where.is_dir():
        return sorted(p for p in where.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)[:files]
    lines = where.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t") if lines else []
    if "path" not in header:
        sys.exit(f"{Path(sys.argv[0]).name}: {where}: a manifest needs a header with a 'path' column")
    column = header.index("path")
    return [where.parent / line.split("\t")[column] for line in lines[1 : files + 1]]


def adfd_command() -> list[str]:
    """The `adfd` executable as users run it: the console script beside this interpreter, else
    ``python -m adfd_cli``. Not ``-m`` first: on CPython 3.11, runpy's extra frames put ``import
    torch`` at a depth where its calls cross a boundary of the interpreter's frame stack, which maps
    and unmaps 16 KB at every crossing: 17,000 times, 0.14 s of every featurize run."""
    script = Path(sys.executable).with_name("adfd")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "adfd_cli"]


def rss_mib() -> float:
    """The current resident set (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB
    except OSError:
        return 0.0


def peak_rss_mib() -> float:
    """The process's peak resident set so far (ru_maxrss)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def time_steps(step: Callable[[], None], device, warmup: int, steps: int, max_seconds: float) -> tuple[int, float]:
    """Run ``warmup`` untimed steps, reset CUDA's peak memory, then time up to ``steps`` steps (at least
    one, at most ``max_seconds``), waiting for the device after each: (timed steps, seconds)."""
    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timed, start = 0, time.perf_counter()
    while timed < steps and (timed == 0 or time.perf_counter() - start < max_seconds):
        step()
        sync()
        timed += 1
    return timed, time.perf_counter() - start
