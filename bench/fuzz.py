"""Fuzz `adfd score` and `adfd featurize` with mutated audio files: no batch may abort, hang or hit an internal error.

Makes valid seed files of every format (WAV 8/16/24-bit, float and WAVE_FORMAT_EXTENSIBLE, FLAC, AIFF,
Ogg Vorbis, Ogg Opus, MP3, M4A), then mutates copies of them, seeded: header fields set to odd values
(sample rates of 1-7 Hz or 1 MHz, 64 or 3,592 bits, unknown codec tags), random bytes changed in the
header or anywhere, cuts, deleted or inserted runs of bytes, appended junk. The files go in batches
through `adfd score` and `adfd featurize` (subprocesses, with a timeout), and each batch is judged:

  abort     exit code other than 0 or 3, or not one row per file in the output
  hang      the batch ran past its timeout (--timeout s plus --per-file-timeout s per file)
  internal  "internal error:" or a traceback on stderr

Each file of a batch must end as a score or as a named failure. Peak memory (maxrss of each adfd
process) is reported per command; --memory also scores alone the mutated file that states the most
audio, and a few crafted worst cases under 10 MB, and reports their peak memory.

    python bench/fuzz.py --files 2400 --batch 100 --jobs 2         # the full run (an hour on 2 cores)
    python bench/fuzz.py --files 60 --batch 30 --no-featurize      # what the test suite runs

Exit status 1 when any batch aborted, hung or hit an internal error; the counts go to stdout as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ADFD = [sys.executable, "-m", "adfd_cli"]
SR = 16_000


# --------------------------------------------------------------------------- seeds


def _signal(seconds: float, sr: int, seed: int) -> np.ndarray:
    """A voiced-like tone with noise: (samples,) float32 in [-0.5, 0.5]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 + 0.05 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def _soundfile(path: Path, wave: np.ndarray, sr: int, fmt: str, subtype: str) -> None:
    import soundfile as sf

    sf.write(path, wave, sr, format=fmt, subtype=subtype)


def _pyav(path: Path, wave: np.ndarray, sr: int, codec: str) -> None:
    import av

    rate = 48_000 if codec == "libopus" else sr
    if rate != sr:
        import soxr

        wave = soxr.resample(wave, sr, rate).astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = 48_000
        frame = av.AudioFrame.from_ndarray(wave[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


# name -> (suffix, writer(path, wave, sr))
SEED_FORMATS: dict[str, tuple[str, Callable[[Path, np.ndarray, int], None]]] = {
    "wav16": (".wav", lambda p, w, sr: _soundfile(p, w, sr, "WAV", "PCM_16")),
    "wav24": (".wav", lambda p, w, sr: _soundfile(p, w, sr, "WAV", "PCM_24")),
    "wav8": (".wav", lambda p, w, sr: _soundfile(p, w, sr, "WAV", "PCM_U8")),
    "wavfloat": (".wav", lambda p, w, sr: _soundfile(p, w, sr, "WAV", "FLOAT")),
    "wavex": (".wav", lambda p, w, sr: _soundfile(p, w, sr, "WAVEX", "PCM_24")),
    "flac": (".flac", lambda p, w, sr: _soundfile(p, w, sr, "FLAC", "PCM_16")),
    "aiff": (".aiff", lambda p, w, sr: _soundfile(p, w, sr, "AIFF", "PCM_16")),
    "vorbis": (".ogg", lambda p, w, sr: _soundfile(p, w, sr, "OGG", "VORBIS")),
    "opus": (".opus", lambda p, w, sr: _pyav(p, w, sr, "libopus")),
    "mp3": (".mp3", lambda p, w, sr: _pyav(p, w, sr, "libmp3lame")),
    "m4a": (".m4a", lambda p, w, sr: _pyav(p, w, sr, "aac")),
}


def make_seeds(folder: Path, seconds: float = 1.0) -> dict[str, Path]:
    """One valid file per entry of SEED_FORMATS, ``seconds`` long."""
    folder.mkdir(parents=True, exist_ok=True)
    seeds = {}
    for i, (name, (suffix, write)) in enumerate(SEED_FORMATS.items()):
        path = folder / f"seed-{name}{suffix}"
        write(path, _signal(seconds, SR, i), SR)
        seeds[name] = path
    return seeds


# --------------------------------------------------------------------------- mutations


def _riff_field(data: bytearray, offset: int, fmt: str, value: int) -> None:
    """Set a field of a WAV's fmt chunk (offset from the chunk's payload) if the file has one."""
    at = data.find(b"fmt ")
    if at >= 0 and at + 8 + offset + struct.calcsize(fmt) <= len(data):
        struct.pack_into("<" + fmt, data, at + 8 + offset, value)


ODD_RATES = [0, 1, 2, 3, 5, 7, 500, 999, 385_000, 1_000_000, 0x7FFFFFFF, 0xFFFFFFFF]


def _odd_header_field(data: bytearray, rng: random.Random) -> str:
    """A WAV fmt field (rate, bits, channels, tag, block align) or a FLAC/AIFF/Ogg header byte set to an odd value."""
    if data[:4] in (b"RIFF", b"RIFX"):
        field, fmt, values = rng.choice([
            ("rate", "I", ODD_RATES), ("bits", "H", [0, 1, 7, 64, 3592, 0xFFFF]), ("channels", "H", [0, 3, 255, 0xFFFF]),
            ("tag", "H", [0, 2, 3, 0x55, 0x1234, 0xFFFE]), ("block_align", "H", [0, 1, 7, 0xFFFF]),
        ])
        offset = {"tag": 0, "channels": 2, "rate": 4, "block_align": 12, "bits": 14}[field]
        value = rng.choice(values)
        _riff_field(data, offset, fmt, value)
        return f"wav-{field}={value}"
    return _flip_bytes(data, rng, 1, 3, head=64)


def _flip_bytes(data: bytearray, rng: random.Random, low: int, high: int, head: int | None = None) -> str:
    n = rng.randint(low, high)
    span = min(len(data), head or len(data))
    for _ in range(n):
        data[rng.randrange(span)] = rng.randrange(256)
    return f"flip-{n}{'-head' if head else ''}"


def _cut(data: bytearray, rng: random.Random) -> str:
    keep = rng.uniform(0.02, 0.98)
    del data[max(1, int(len(data) * keep)) :]
    return f"cut-{keep:.2f}"


def _delete_run(data: bytearray, rng: random.Random) -> str:
    start, length = rng.randrange(len(data)), rng.randint(1, 4096)
    del data[start : start + length]
    return "delete-run"


def _insert_run(data: bytearray, rng: random.Random) -> str:
    start = rng.randrange(len(data))
    data[start:start] = rng.randbytes(rng.randint(1, 4096))
    return "insert-run"


def _zero_run(data: bytearray, rng: random.Random) -> str:
    start, length = rng.randrange(len(data)), rng.randint(1, 2048)
    data[start : start + length] = bytes(len(data[start : start + length]))
    return "zero-run"


def _append_junk(data: bytearray, rng: random.Random) -> str:
    data += rng.randbytes(rng.randint(1, 8192))
    return "append-junk"


MUTATIONS: list[tuple[str, Callable[[bytearray, random.Random], str]]] = [
    ("odd-header-field", _odd_header_field),
    ("flip-head", lambda d, r: _flip_bytes(d, r, 1, 4, head=64)),
    ("flip-anywhere", lambda d, r: _flip_bytes(d, r, 1, 20)),
    ("cut", _cut),
    ("delete-run", _delete_run),
    ("insert-run", _insert_run),
    ("zero-run", _zero_run),
    ("append-junk", _append_junk),
]


def mutate(seed: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A mutated copy of ``seed`` (one to three mutations) and a description of what was done."""
    data = bytearray(seed)
    done = [rng.choice(MUTATIONS)[1](data, rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    return bytes(data or b"\0"), "+".join(done)


def make_fuzz_files(folder: Path, seeds: dict[str, Path], n: int, seed: int) -> dict[Path, str]:
    """``n`` mutated files, evenly over the seed formats: path -> how it was made."""
    rng = random.Random(seed)
    names = list(seeds)
    made = {}
    for i in range(n):
        name = names[i % len(names)]
        data, how = mutate(seeds[name].read_bytes(), rng)
        path = folder / f"f{i:05d}-{name}{seeds[name].suffix}"
        path.write_bytes(data)
        made[path] = f"{name}: {how}"
    return made


# --------------------------------------------------------------------------- running


def _run(args: list[str], timeout: float) -> tuple[int | None, str, float, float]:
    """Run adfd: (exit code or None on timeout, stderr, wall seconds, peak memory in MB of it and its workers)."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([*ADFD, *args], stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, start_new_session=True)
        deadline = start + timeout
        code, usage = None, None
        while time.monotonic() < deadline:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.05)
        if code is None:
            os.killpg(proc.pid, 9)
            _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = code if code is not None else -9
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return code, stderr, time.monotonic() - start, usage.ru_maxrss / 1024


def _judge(code: int | None, stderr: str, rows: int | None, expected: int) -> list[str]:
    """What went wrong with a batch: abort, hang, internal (none when it went as it should)."""
    problems = []
    if code is None:
        problems.append("hang")
    elif code not in (0, 3) or (rows is not None and rows != expected):
        problems.append("abort")
    if "internal error:" in stderr or "Traceback (most recent call last)" in stderr:
        problems.append("internal")
    return problems


def _table_rows(path: Path) -> tuple[int | None, int]:
    """(rows, rows with an error) of a score table adfd wrote; (None, 0) when there is none."""
    if not path.exists():
        return None, 0
    sys.path.insert(0, str(ROOT))
    from adfd_core.scoretable import read_scores

    table = read_scores(path)
    return len(table), sum(bool(e) for e in table.extra.get("error", []))


def run_batches(files: list[Path], work: Path, batch: int, jobs: int, timeout: float, per_file: float,
                featurize: bool, model: list[str]) -> dict:
    """Score (and featurize) the files batch by batch; the counts, and the worst batches' details."""
    counts: Counter = Counter()
    details, peaks, slowest = [], Counter(), Counter()
    for b, start in enumerate(range(0, len(files), batch)):
        part = files[start : start + batch]
        folder = work / f"batch{b:03d}"
        folder.mkdir()
        for path in part:
            os.link(path, folder / path.name)
        limit = timeout + per_file * len(part)
        out = work / f"batch{b:03d}.tsv"
        models = [arg for m in model for arg in ("-m", m)]
        runs = [("score", ["score", str(folder), "-o", str(out), "--jobs", str(jobs), *models])]
        if featurize:
            runs.append(("featurize", ["featurize", str(folder), "-o", str(work / f"batch{b:03d}.h5"), "-f", "stft-lf",
                                       "--jobs", str(jobs)]))
        for command, args in runs:
            code, stderr, wall, peak_mb = _run(args, limit)
            rows, failed = (None, 0) if command != "score" or code is None else _table_rows(out)
            problems = _judge(code, stderr, rows, len(part))
            counts[f"{command}_batches"] += 1
            counts[f"{command}_files"] += len(part)
            if command == "score" and rows is not None:
                counts["score_files_failed_named"] += failed
            counts[f"{command}_warnings"] += sum(line.startswith("warning: ") for line in stderr.splitlines())
            for problem in problems:
                counts[f"{command}_{problem}"] += 1
            peaks[command] = max(peaks[command], peak_mb)
            slowest[command] = max(slowest[command], wall)
            if problems:
                details.append({"command": command, "batch": str(folder), "problems": problems, "exit": code,
                                "stderr_tail": stderr[-1500:]})
            print(f"{command} batch {b}: {len(part)} files, exit {code}, {wall:.1f} s, {peak_mb:.0f} MB"
                  f"{', ' + ', '.join(problems) if problems else ''}", file=sys.stderr, flush=True)
    return {"counts": dict(counts), "peak_mb": dict(peaks), "slowest_batch_s": dict(slowest), "problems": details}


# --------------------------------------------------------------------------- memory


def _stated_frames(path: Path) -> int:
    """Native-rate frames x channels the header states (0 when it cannot be probed)."""
    sys.path.insert(0, str(ROOT))
    from adfd_core import audio

    try:
        info = audio.probe(path)
    except audio.AudioError:
        return 0
    return round((info.duration_s or 0) * info.sample_rate) * info.channels


def crafted_worst_cases(folder: Path) -> list[Path]:
    """Files under 10 MB that make the most audio a file of that size can legitimately hold, fast to score:
    16-bit stereo PCM at 384 kHz (13 s, loaded whole), and a Matroska file stating 0.5 s that holds
    156 s of float PCM (decoding runs past what the header states: streamed)."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    high = folder / "pcm-384k-stereo.wav"
    frames = (9_900_000 - 44) // 4
    _soundfile(high, np.stack([_signal(frames / 384_000, 384_000, 1)] * 2, axis=1), 384_000, "WAV", "PCM_16")
    lying = folder / "states-half-a-second.mka"
    wave = _signal(9_900_000 / 4 / SR, SR, 2)
    with av.open(str(lying), "w") as container:
        stream = container.add_stream("pcm_f32le", rate=SR, layout="mono")
        for start in range(0, len(wave), SR * 10):
            frame = av.AudioFrame.from_ndarray(wave[None, start : start + SR * 10], format="flt", layout="mono")
            frame.sample_rate = SR
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = lying.read_bytes()
    at = data.index(b"\x44\x89\x88") + 3  # Matroska's Duration element: an 8-byte float in milliseconds
    lying.write_bytes(data[:at] + struct.pack(">d", 500.0) + data[at + 8 :])
    return [high, lying]


def memory_check(files: list[Path], work: Path, model: list[str]) -> list[dict]:
    """Score alone the fuzzed file that states the most audio and the crafted worst cases: peak memory of each."""
    under = [p for p in files if p.stat().st_size < 10 << 20]
    biggest = max(under, key=_stated_frames)
    results = []
    for path in [biggest, *crafted_worst_cases(work / "worst")]:
        models = [arg for m in model for arg in ("-m", m)]
        code, stderr, wall, peak_mb = _run(["score", str(path), "-o", str(work / "one.tsv"), "--force", *models], 1800)
        results.append({"file": path.name, "bytes": path.stat().st_size, "stated_frames": _stated_frames(path),
                        "exit": code, "wall_s": round(wall, 1), "peak_mb": round(peak_mb)})
        print(f"memory: {path.name}: exit {code}, {wall:.1f} s, {peak_mb:.0f} MB", file=sys.stderr, flush=True)
    return results


def fuzz(n_files: int, batch: int, jobs: int, seed: int, timeout: float, per_file: float, featurize: bool,
         memory: bool, model: list[str], keep: Path | None = None) -> dict:
    """Make the seeds and ``n_files`` mutated files, run them, and return the report."""
    work = Path(tempfile.mkdtemp(prefix="adfd-fuzz-")) if keep is None else keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        for sub in ("files", "runs"):
            (work / sub).mkdir()
        made = make_fuzz_files(work / "files", make_seeds(work / "seeds"), n_files, seed)
        started = time.monotonic()
        report = run_batches(sorted(made), work / "runs", batch, jobs, timeout, per_file, featurize, model)
        report.update(files=n_files, seed=seed, batch=batch, jobs=jobs, seconds=round(time.monotonic() - started),
                      mutations=dict(Counter(how.split(": ")[1].split("-")[0] for how in made.values())))
        for item in report["problems"]:
            folder = Path(item["batch"])
            item["files"] = {p.name: made[work / "files" / p.name] for p in sorted(folder.iterdir())}
        if memory:
            report["memory"] = memory_check(sorted(made), work, model)
        return report
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2400, help="mutated files to make and run")
    parser.add_argument("--batch", type=int, default=100, help="files per adfd run")
    parser.add_argument("--jobs", type=int, default=2, help="adfd --jobs")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a batch may take, plus --per-file-timeout per file")
    parser.add_argument("--per-file-timeout", type=float, default=1.0)
    parser.add_argument("--no-featurize", action="store_true", help="run only `adfd score`")
    parser.add_argument("--memory", action="store_true", help="also score the worst files alone and report peak memory")
    parser.add_argument("-m", "--model", action="append", default=[], help="model file for score (default: the bundled one)")
    parser.add_argument("--keep", type=Path, help="make the files here and keep them")
    args = parser.parse_args(argv)
    report = fuzz(args.files, args.batch, args.jobs, args.seed, args.timeout, args.per_file_timeout,
                  not args.no_featurize, args.memory, args.model, args.keep)
    print(json.dumps(report, indent=1))
    counts = report["counts"]
    bad = sum(v for k, v in counts.items() if k.endswith(("_abort", "_hang", "_internal")))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
