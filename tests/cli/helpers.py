"""Running `adfd` as a user does: a subprocess, with stdout and stderr kept apart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import audio_factory as factory

ADFD = [sys.executable, "-m", "adfd_cli"]


def adfd(*args: str, stdin: str | None = None, cwd: Path | None = None, timeout: float = 240,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `adfd ARGS` (in ``env``, default this process's) and return the finished process (text stdout/stderr)."""
    return subprocess.run([*ADFD, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


def make_corpus(root: Path, factory, n_real: int = 3, n_fake: int = 3, seconds: float = 2.5) -> list[Path]:
    """Good files under bonafide/ and spoof/<attack>/: vowels (real) and chirps/noise (fake), mixed formats."""
    paths = []
    for i in range(n_real):
        paths.append(factory.write(root / "bonafide" / "spk1" / f"real{i}.wav", factory.vowel(110 + 15 * i, seconds=seconds, seed=i)))
    for i in range(n_fake):
        sig = factory.chirp(200 + 50 * i, 5000, seconds=seconds) + factory.noise(seconds, amp=0.02, seed=i)
        attack = "hifigan" if i % 2 == 0 else "melgan"
        paths.append(factory.write(root / "spoof" / attack / f"fake{i}.flac", sig))
    return paths


def make_bad_files(root: Path) -> dict[str, Path]:
    """One file per kind of bad input, under bonafide/ or spoof/ so the folder reader picks them up."""
    import soundfile as sf

    bad = {}
    bad["text"] = root / "spoof" / "hifigan" / "notes.wav"
    bad["text"].parent.mkdir(parents=True, exist_ok=True)
    bad["text"].write_text("this is not audio\n" * 20)
    bad["empty"] = root / "bonafide" / "empty.wav"
    bad["empty"].parent.mkdir(parents=True, exist_ok=True)
    bad["empty"].write_bytes(b"")
    bad["nan"] = root / "spoof" / "hifigan" / "nan.wav"
    sig = np.zeros(16000, dtype=np.float32)
    sig[500] = np.nan
    sf.write(str(bad["nan"]), sig, 16000, subtype="FLOAT")
    bad["truncated"] = root / "spoof" / "melgan" / "cut.flac"
    full = root / "full.tmp"
    sf.write(str(full), np.sin(np.arange(48000) / 7.0).astype(np.float32) * 0.5, 16000, format="FLAC")
    bad["truncated"].write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    # issue 15: each of these stopped a whole batch (a traceback, hours of audio, or a hang)
    bad["no-decoder"] = factory.wav_without_decoder(root / "spoof" / "hifigan" / "nodec.wav", extensible=True)
    bad["under-one-sample"] = factory.write(root / "bonafide" / "one.wav", np.full(1, 0.5, np.float32), sr=48_000)
    bad["rate-7-hz"] = factory.write(root / "spoof" / "melgan" / "r7.wav", factory.noise(0.01, sr=48_000), sr=7)
    bad["fifo"] = root / "bonafide" / "pipe.wav"
    os.mkfifo(bad["fifo"])
    return bad


def make_odd_files(root: Path) -> dict[str, Path]:
    """Files that decode although they once stopped a batch or were read in silence (issue 15), under bonafide/:
    64-bit PCM, M4A tags that are not UTF-8, names that are not UTF-8 or hold a line break, cut MP3 and Ogg Opus."""
    folder = root / "bonafide"
    odd = {
        "s64": factory.pcm_s64_wav(folder / "s64.wav", (factory.vowel(seconds=1.0) * 2**62).astype(np.int64)),
        "bad-tags": factory.m4a_with_bad_tags(folder / "tags.m4a", factory.vowel(seconds=1.0)),
        "not-utf8": factory.write(Path(os.fsdecode(bytes(folder) + b"/bad\xff\xfename.wav")), factory.noise(1.0)),
        "newline": factory.write(folder / "new\nline.flac", factory.chirp(seconds=1.0)),
        "cut-mp3": factory.cut(factory.encode(folder / "cutmp3.mp3", factory.vowel(seconds=3.0)), 0.6),
        "cut-opus": factory.cut(factory.encode(folder / "cutopus.opus", factory.vowel(seconds=3.0), codec="libopus"), 0.6),
    }
    return odd
