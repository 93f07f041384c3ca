"""adfd_core.audio: decoding every format to 16 kHz mono float32, streaming, segmenting, and bad inputs."""

from __future__ import annotations

import hashlib
import os
import pickle
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from adfd_core import audio
from adfd_core.audio import AudioError, AudioInfo
from adfd_core.errors import AdfdError
from privileges import as_nobody

SR = audio.TARGET_SR


def _dominant_hz(x: np.ndarray, sr: int = SR) -> float:
    """Frequency of the strongest FFT bin of a (samples,) signal."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sr / len(x))


def _pyav_write(path: Path, planes: np.ndarray, sr: int, codec: str, fmt: str, chunk: int = 16_000) -> Path:
    """Encode (channels, samples) PCM of the dtype ``fmt`` names with PyAV; multi-channel and lossless codecs too."""
    layout = {1: "mono", 2: "stereo"}[planes.shape[0]]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sr, layout=layout)
        for start in range(0, planes.shape[1], chunk):
            part = planes[:, start : start + chunk]
            data = part if fmt.endswith("p") else part.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = sr, start, Fraction(1, sr)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _expected_segments(signal: np.ndarray, n: int) -> list[np.ndarray]:
    """The segmenting rules applied to a whole signal, for reference."""
    if len(signal) < n:
        return [np.resize(signal, n)]
    segments = [signal[i : i + n] for i in range(0, len(signal) - n + 1, n)]
    if len(signal) % n:
        segments.append(signal[-n:])
    return segments


def _stereo(f, seconds: float, sr: int) -> np.ndarray:
    """A (samples, 2) chirp/noise pair."""
    return np.stack([f.chirp(seconds=seconds, sr=sr), f.noise(seconds, sr=sr)], axis=1)


def _with_nan(planes: np.ndarray) -> np.ndarray:
    planes[0, len(planes[0]) * 7 // 8] = np.nan
    return planes


def _blocks_of(signal: np.ndarray, size: int) -> Iterator[np.ndarray]:
    return (signal[i : i + size] for i in range(0, len(signal), size))


def test_public_constants():
    assert audio.TARGET_SR == 16_000
    assert audio.AUDIO_SUFFIXES == {
        ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".mp4", ".wma",
        ".aif", ".aiff", ".au", ".caf", ".webm", ".mka", ".amr",
    }


# --- lossless formats: sample-exact ---------------------------------------------------------------

INT_CASES = [  # (suffix, subtype, dtype written, sample step, full scale)
    (".wav", "PCM_16", np.int16, 1, 2**15),
    (".wav", "PCM_24", np.int32, 2**8, 2**31),
    (".wav", "PCM_32", np.int32, 1, 2**31),
    (".flac", "PCM_16", np.int16, 1, 2**15),
    (".flac", "PCM_24", np.int32, 2**8, 2**31),
    (".aiff", "PCM_16", np.int16, 1, 2**15),
]


@pytest.mark.parametrize("suffix,subtype,dtype,step,scale", INT_CASES, ids=lambda v: str(v) if isinstance(v, str) else None)
def test_integer_pcm_decodes_sample_exact(tmp_path, make_audio, suffix, subtype, dtype, step, scale):
    wave = make_audio.vowel(seconds=0.7)
    ints = (np.round(wave.astype(np.float64) * (scale - 1) / step) * step).astype(dtype)
    path = make_audio.write(tmp_path / f"x{suffix}", ints, SR, subtype=subtype)
    got = audio.load(path)
    assert got.dtype == np.float32 and got.shape == (len(ints),)
    np.testing.assert_array_equal(got, (ints / scale).astype(np.float32))
    info = audio.probe(path)
    assert info == AudioInfo(str(path), "soundfile", SR, 1, pytest.approx(0.7))


def test_load_within_decodes_only_what_is_short_enough(tmp_path, make_audio):
    path = make_audio.write(tmp_path / "x.flac", make_audio.chirp(seconds=1.5, sr=22_050), 22_050, subtype="PCM_16")
    info, wave = audio.load_within(path, max_seconds=2.0)
    assert info == audio.probe(path)
    np.testing.assert_array_equal(wave, audio.load(path))  # resampled as load resamples
    info, wave = audio.load_within(path, max_seconds=1.0)
    assert wave is None and info.duration_s == pytest.approx(1.5)
    (tmp_path / "e.wav").write_bytes(b"")
    with pytest.raises(audio.AudioError, match="e.wav: empty file"):
        audio.load_within(tmp_path / "e.wav", 2.0)


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_float_wav_decodes_sample_exact(tmp_path, make_audio, subtype):
    wave = make_audio.chirp(seconds=0.5) + make_audio.noise(0.5, amp=0.05)
    path = make_audio.write(tmp_path / "f.wav", wave, SR, subtype=subtype)
    got = audio.load(path)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, wave)


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_stereo_and_six_channels_downmix_to_the_channel_mean(tmp_path, make_audio, suffix):
    for channels in (2, 6):
        wave = np.stack([make_audio.tone(200.0 * (c + 1), 0.5, amp=0.15) for c in range(channels)], axis=1)
        subtype = "FLOAT" if suffix == ".wav" else "PCM_24"
        path = make_audio.write(tmp_path / f"c{channels}{suffix}", wave, SR, subtype=subtype)
        assert audio.probe(path).channels == channels
        written, _ = sf.read(str(path), dtype="float32")  # what the file holds, after any quantisation
        np.testing.assert_allclose(audio.load(path), written.mean(axis=1), atol=1e-7, rtol=0)


# --- PyAV: every sample format, packed and planar ---------------------------------------------------

PYAV_PCM_CASES = [  # (codec, PyAV format, numpy dtype, sample step, offset, full scale)
    ("pcm_u8", "u8", np.uint8, 1, 128, 128),
    ("pcm_s16le", "s16", np.int16, 1, 0, 2**15),
    ("pcm_s24le", "s32", np.int32, 2**8, 0, 2**31),
    ("pcm_s32le", "s32", np.int32, 1, 0, 2**31),
    ("alac", "s16p", np.int16, 1, 0, 2**15),
    ("alac", "s32p", np.int32, 2**8, 0, 2**31),
]


@pytest.mark.parametrize("codec,fmt,dtype,step,offset,scale", PYAV_PCM_CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_pyav_integer_formats_decode_exactly_and_downmix(tmp_path, codec, fmt, dtype, step, offset, scale):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype)
    ints = (rng.integers(info.min, info.max, size=(2, 5000), endpoint=True) // step * step).astype(dtype)
    path = _pyav_write(tmp_path / "x.mka", ints, SR, codec, fmt)
    floats = ((ints.astype(np.float64) - offset) / scale).astype(np.float32)
    assert audio.probe(path).backend == "pyav" and audio.probe(path).channels == 2
    got = audio.load(path)
    assert got.dtype == np.float32
    assert np.abs(got).max() <= 1.0
    np.testing.assert_allclose(got, floats.mean(axis=0), atol=1e-7, rtol=0)


@pytest.mark.parametrize("codec,fmt,dtype", [("pcm_f32le", "flt", np.float32), ("pcm_f64le", "dbl", np.float64)])
def test_pyav_float_formats_decode_exactly(tmp_path, make_audio, codec, fmt, dtype):
    planes = np.stack([make_audio.noise(0.3, seed=1), make_audio.chirp(seconds=0.3)]).astype(dtype)
    path = _pyav_write(tmp_path / "x.mka", planes, 8_000, codec, fmt)
    native = planes.astype(np.float32).mean(axis=0)
    np.testing.assert_allclose(audio.load(path, sr=8_000), native, atol=1e-7, rtol=0)
    np.testing.assert_allclose(audio.load(path), soxr.resample(native, 8_000, SR, quality="VHQ"), atol=1e-6)


# --- lossy codecs: duration within codec padding, frequency kept ----------------------------------

LOSSY_CASES = [  # (file name, encoder or None for soundfile, backend that must decode it, allowed extra samples)
    ("x.ogg", None, "soundfile", 0),
    ("x.mp3", "libmp3lame", "pyav", 0),
    ("x.m4a", "aac", "pyav", 2048),
    ("x.opus", "libopus", "pyav", 0),
    ("opus_in.ogg", "libopus", "pyav", 0),
]


@pytest.mark.parametrize("name,codec,backend,padding", LOSSY_CASES, ids=[c[0] for c in LOSSY_CASES])
def test_lossy_codecs_keep_duration_and_frequency(tmp_path, make_audio, name, codec, backend, padding):
    wave = make_audio.tone(1000.0, 1.5, amp=0.4)
    if codec is None:
        path = make_audio.write(tmp_path / name, wave, SR)
    else:
        path = make_audio.encode(tmp_path / name, wave, SR, codec=codec, bitrate=96_000)
    info = audio.probe(path)
    assert info.backend == backend and info.channels == 1
    assert info.duration_s == pytest.approx(1.5, abs=0.15)
    got = audio.load(path)
    assert got.dtype == np.float32 and got.ndim == 1
    assert len(wave) - 64 <= len(got) <= len(wave) + padding + 64
    assert _dominant_hz(got) == pytest.approx(1000.0, abs=5.0)
    middle = slice(len(got) // 4, len(got) // 2)
    assert np.sqrt(np.mean(got[middle] ** 2)) == pytest.approx(0.4 / np.sqrt(2), rel=0.1)


# --- resampling -----------------------------------------------------------------------------------


@pytest.mark.parametrize("native,freq", [(44_100, 3000.0), (48_000, 5000.0), (8_000, 1000.0), (22_050, 440.0)])
def test_other_rates_are_resampled_to_16k(tmp_path, make_audio, native, freq):
    wave = make_audio.tone(freq, 2.0, sr=native, amp=0.5)
    path = make_audio.write(tmp_path / "r.wav", wave, native, subtype="FLOAT")
    assert audio.probe(path).sample_rate == native
    got = audio.load(path)
    assert got.dtype == np.float32 and len(got) == 2 * SR
    assert _dominant_hz(got) == pytest.approx(freq, abs=2.0)
    np.testing.assert_allclose(got, soxr.resample(wave, native, SR, quality="VHQ"), atol=1e-6)
    np.testing.assert_array_equal(audio.load(path, sr=native), wave)  # no resampling when rates match


def test_load_to_another_rate(tmp_path, make_audio):
    path = make_audio.write(tmp_path / "t.flac", make_audio.tone(500.0, 1.0), SR)
    got = audio.load(path, sr=22_050)
    assert len(got) == 22_050 and _dominant_hz(got, 22_050) == pytest.approx(500.0, abs=2.0)
    with pytest.raises(ValueError):
        audio.load(path, sr=0)


# --- streaming ------------------------------------------------------------------------------------

STREAM_CASES = {
    "wav-16k": lambda f, d: f.write(d / "a.wav", f.vowel(seconds=2.3), SR),
    "flac-44k1-stereo": lambda f, d: f.write(d / "b.flac", _stereo(f, 2.3, 44_100), 44_100),
    "wav-8k": lambda f, d: f.write(d / "c.wav", f.tone(700.0, 2.3, sr=8_000), 8_000),
    "mp3-pyav": lambda f, d: f.encode(d / "d.mp3", f.vowel(seconds=2.3), SR, "libmp3lame"),
    "opus-pyav-48k": lambda f, d: f.encode(d / "e.opus", f.chirp(seconds=2.3), SR, "libopus"),
    "m4a-pyav-22k": lambda f, d: f.encode(d / "g.m4a", f.noise(2.3, sr=22_050), 22_050, "aac"),
}


@pytest.mark.parametrize("case", list(STREAM_CASES))
@pytest.mark.parametrize("block_seconds", [0.05, 0.37])
def test_stream_equals_load(tmp_path, make_audio, case, block_seconds):
    path = STREAM_CASES[case](make_audio, tmp_path)
    blocks = list(audio.stream(path, block_seconds=block_seconds))
    assert len(blocks) > 4
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    whole = audio.load(path)
    streamed = np.concatenate(blocks)
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() < 1e-5


def test_stream_blocks_have_the_requested_length(tmp_path, make_audio):
    path = make_audio.write(tmp_path / "a.wav", make_audio.noise(3.1), SR)
    lengths = [len(b) for b in audio.stream(path, block_seconds=0.5)]
    assert lengths == [8000] * 6 + [1600]
    with pytest.raises(ValueError):
        next(audio.stream(path, block_seconds=0))


def test_stream_can_be_abandoned_early(tmp_path, make_audio):
    path = make_audio.encode(tmp_path / "a.mp3", make_audio.noise(3.0), SR)
    blocks = audio.stream(path, block_seconds=0.1)
    first = next(blocks)
    blocks.close()
    assert len(first) >= 1600


def _write_long_wav(path: Path, minutes: float, sr: int) -> Path:
    """A tone of ``minutes`` written in one-minute pieces (never whole in memory)."""
    with sf.SoundFile(str(path), "w", sr, 1, subtype="PCM_16") as f:
        t = np.arange(60 * sr) / sr
        piece = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
        for _ in range(int(minutes)):
            f.write(piece)
    return path


def _write_long_mka(path: Path, minutes: float, sr: int) -> Path:
    """A noise track of ``minutes`` as s16 PCM in Matroska, encoded in ten-second pieces."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=sr, layout="mono")
        for i in range(int(minutes * 6)):
            piece = rng.integers(-3000, 3000, size=(1, 10 * sr), dtype=np.int16)
            frame = av.AudioFrame.from_ndarray(piece, format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sr, i * 10 * sr, Fraction(1, sr)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("writer,native,block_seconds", [(_write_long_wav, 44_100, 10.0), (_write_long_mka, SR, 30.0)])
def test_streaming_ten_minutes_keeps_memory_bounded(tmp_path, writer, native, block_seconds):
    path = writer(tmp_path / ("long.wav" if writer is _write_long_wav else "long.mka"), 10, native)
    decoded_bytes = 600 * SR * 4
    tracemalloc.start()
    try:
        total = sum(len(block) for block in audio.stream(path, block_seconds=block_seconds))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert abs(total - 600 * SR) <= 1
    assert peak < decoded_bytes / 4, f"peak {peak / 1e6:.1f} MB for {decoded_bytes / 1e6:.1f} MB decoded"


# --- segmenting -----------------------------------------------------------------------------------

SEG = 250


@pytest.mark.parametrize("n", [1, 7, SEG - 1, SEG, SEG + 1, 2 * SEG, 5 * SEG + 7, 9 * SEG - 1])
@pytest.mark.parametrize("block", [1, 7, SEG, 3 * SEG + 1])
def test_iter_segments_follows_the_rules_across_block_boundaries(n, block):
    signal = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    got = list(audio.iter_segments(_blocks_of(signal, block), SEG))
    expected = _expected_segments(signal, SEG)
    assert len(got) == len(expected) == audio.segment_count(n, SEG)
    for g, e in zip(got, expected):
        assert g.shape == (SEG,) and g.dtype == np.float32
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("n", [1, 7, SEG - 1, SEG, SEG + 1, 2 * SEG, 5 * SEG + 7, 9 * SEG - 1])
def test_segments_of_a_loaded_signal_are_those_of_the_stream(n):
    signal = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    got = audio.segments(signal, SEG)
    assert got.shape == (audio.segment_count(n, SEG), SEG) and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.stack(_expected_segments(signal, SEG)))


def test_segment_batch_stacks_each_signals_segments_in_order():
    lengths = [SEG // 3, 2 * SEG + 17, SEG, 3 * SEG]  # short, with a tail, exact, several
    signals = [np.random.default_rng(n).standard_normal(n).astype(np.float32) for n in lengths]
    got, counts = audio.segment_batch(signals, SEG)
    assert counts == [audio.segment_count(n, SEG) for n in lengths] == [1, 3, 1, 3]
    np.testing.assert_array_equal(got, np.concatenate([np.stack(_expected_segments(s, SEG)) for s in signals]))
    with pytest.raises(ValueError, match="empty"):
        audio.segment_batch([signals[0], np.zeros(0, np.float32)], SEG)


def test_short_signal_is_padded_by_repetition():
    signal = np.arange(1, 101, dtype=np.float32)
    (segment,) = audio.iter_segments(_blocks_of(signal, 7), 250)
    np.testing.assert_array_equal(segment, np.concatenate([signal, signal, signal[:50]]))
    assert not np.any(segment == 0)


def test_tail_segment_is_the_last_samples():
    signal = np.arange(1, 2 * SEG + 101, dtype=np.float32)
    segments = list(audio.iter_segments(_blocks_of(signal, 3), SEG))
    assert len(segments) == 3 == audio.segment_count(len(signal), SEG)
    np.testing.assert_array_equal(segments[0], signal[:SEG])
    np.testing.assert_array_equal(segments[1], signal[SEG : 2 * SEG])
    np.testing.assert_array_equal(segments[2], signal[-SEG:])


def test_segment_count_values_and_refusals():
    assert [audio.segment_count(n, 10) for n in (1, 9, 10, 11, 20, 21)] == [1, 1, 1, 2, 2, 3]
    for bad in [(0, 10), (10, 0), (-1, 10)]:
        with pytest.raises(ValueError):
            audio.segment_count(*bad)
    with pytest.raises(ValueError):
        list(audio.iter_segments([], 10))
    with pytest.raises(ValueError):
        audio.segments(np.zeros(0, np.float32), 10)
    with pytest.raises(ValueError):
        list(audio.iter_segments([np.zeros((4, 2), np.float32)], 10))


def test_iter_segments_is_lazy():
    taken = []

    def blocks():
        for i in range(1000):
            taken.append(i)
            yield np.full(100, i, dtype=np.float32)

    segments = audio.iter_segments(blocks(), 250)
    first = next(segments)
    assert len(taken) <= 3
    np.testing.assert_array_equal(first, np.repeat(np.arange(3, dtype=np.float32), 100)[:250])


def test_segments_are_independent_copies():
    signal = np.arange(1, 601, dtype=np.float32)
    segments = audio.iter_segments(_blocks_of(signal, 600), 250)
    first, second = next(segments), next(segments)
    second[:] = 0  # the caller scribbles on a segment it was given
    (tail,) = list(segments)
    np.testing.assert_array_equal(tail, signal[-250:])
    np.testing.assert_array_equal(signal[:250], first)


def test_segmenter_push_and_finish():
    segmenter = audio.Segmenter(4)
    out = segmenter.push(np.arange(1, 7, dtype=np.float32))
    assert [s.tolist() for s in out] == [[1, 2, 3, 4]]
    out = segmenter.push(np.array([7.0], dtype=np.float32))
    assert out == []
    assert [s.tolist() for s in segmenter.finish()] == [[4, 5, 6, 7]]


# --- bad inputs -----------------------------------------------------------------------------------


def _cut(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _nan_wav(f, d: Path, value: float = np.nan, at: int = -1) -> Path:
    wave = f.noise(1.0)
    wave[at] = value
    return f.write(d / "nan.wav", wave, SR, subtype="FLOAT")


# name -> (make the file, words the reason holds, whether probe alone already refuses it)
BAD_CASES: dict[str, tuple[Callable[[object, Path], Path], str, bool]] = {
    "missing": (lambda f, d: d / "absent.wav", "no such file", True),
    "directory": (lambda f, d: _folder(d / "folder.wav"), "directory", True),
    "empty": (lambda f, d: _bytes(d / "empty.wav", b""), "empty file", True),
    "text-as-wav": (lambda f, d: _bytes(d / "notes.wav", b"this is not audio\n" * 20), "not a decodable audio file", True),
    "random-bytes-flac": (lambda f, d: _bytes(d / "r.flac", np.random.default_rng(1).bytes(20_000)), "not a decodable", True),
    "zero-samples-wav": (lambda f, d: f.write(d / "z.wav", np.zeros(0, np.float32), SR), "zero samples", False),
    "zero-samples-aiff": (lambda f, d: f.write(d / "z.aiff", np.zeros((0, 2), np.float32), SR), "zero samples", False),
    "truncated-wav": (lambda f, d: _cut(f.write(d / "t.wav", f.noise(2.0), SR)), "truncated", True),
    "truncated-24bit-stereo": (lambda f, d: _cut(f.write(d / "t.wav", np.zeros((16000, 2)), SR, "PCM_24"), 0.7), "truncated", True),
    "truncated-aiff": (lambda f, d: _cut(f.write(d / "t.aiff", f.noise(2.0), SR)), "truncated", True),
    "truncated-flac": (lambda f, d: _cut(f.write(d / "t.flac", f.chirp(seconds=3.0), SR)), "truncated or corrupt", False),
    "nearly-whole-flac": (lambda f, d: _cut(f.write(d / "t.flac", f.chirp(seconds=3.0), SR), 0.99), "corrupt", False),
    "nan-wav": (lambda f, d: _nan_wav(f, d), "NaN or Inf", False),
    "inf-wav-first-sample": (lambda f, d: _nan_wav(f, d, np.inf, 0), "NaN or Inf", False),
    "nan-pyav": (
        lambda f, d: _pyav_write(d / "nan.mka", _with_nan(np.full((1, 8000), 0.1, np.float32)), SR, "pcm_f32le", "flt"),
        "NaN or Inf",
        False,
    ),
    "no-audio-stream": (lambda f, d: _video_only(d / "v.mkv"), "no audio stream", True),
    # issue 15: each of these stopped a whole batch with a traceback or ran for minutes
    "no-decoder-pcm-wav": (lambda f, d: f.wav_without_decoder(d / "b.wav"), "no decoder", True),
    "no-decoder-extensible-wav": (lambda f, d: f.wav_without_decoder(d / "x.wav", extensible=True), "no decoder", True),
    "one-sample-at-48k": (lambda f, d: f.write(d / "one.wav", np.full(1, 0.5, np.float32), 48_000), "too short", False),
    "rate-7-hz": (lambda f, d: f.write(d / "r7.wav", f.noise(0.01, sr=48_000), 7), "sample rate 7 Hz is outside", True),
    "rate-1-mhz": (lambda f, d: f.write(d / "r1m.wav", f.noise(0.01), 1_000_000), "sample rate 1000000 Hz is outside", True),
    "hours-in-a-small-flac": (lambda f, d: _huge_total_samples(f.write(d / "h.flac", f.noise(1.0, sr=8000), 8000)), "far more than", True),
}


def _huge_total_samples(path: Path) -> Path:
    """A FLAC whose STREAMINFO states 2^36 - 1 samples (2,386 hours at 8 kHz) in a few KB."""
    data = bytearray(path.read_bytes())
    at = 8 + 10  # after "fLaC" and the block header, the 64 bits that end with the 36-bit sample count
    packed = int.from_bytes(data[at : at + 8], "big") | ((1 << 36) - 1)
    data[at : at + 8] = packed.to_bytes(8, "big")
    path.write_bytes(bytes(data))
    return path


def _video_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=5)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _assert_names_file(err: AudioError, path: Path, words: str) -> None:
    message = str(err)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert err.path == str(path)
    assert words.lower() in err.reason.lower()
    assert isinstance(err, AdfdError)


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_inputs_raise_audio_error_naming_the_file(tmp_path, make_audio, case):
    build, words, probe_refuses = BAD_CASES[case]
    path = build(make_audio, tmp_path)
    calls = {"load": audio.load, "stream": lambda p: list(audio.stream(p, block_seconds=0.1))}
    if probe_refuses:
        calls["probe"] = audio.probe
    else:
        assert audio.probe(path).path == str(path)  # probe reads the header only, and the header is fine
    for name, call in calls.items():
        with pytest.raises(AudioError) as caught:
            call(path)
        _assert_names_file(caught.value, path, words)


def test_64_bit_integer_pcm_decodes_sample_exact(tmp_path, make_audio):
    ints = np.round(make_audio.vowel(seconds=0.3).astype(np.float64) * 2**40).astype(np.int64) << 22
    path = make_audio.pcm_s64_wav(tmp_path / "s64.wav", ints)
    np.testing.assert_array_equal(audio.load(path), (ints / 2.0**63).astype(np.float32))
    assert audio.probe(path).backend == "pyav"


def test_tags_that_are_not_utf8_do_not_stop_an_m4a(tmp_path, make_audio):
    path = make_audio.m4a_with_bad_tags(tmp_path / "tags.m4a", make_audio.tone(440.0, 1.0))
    wave = audio.load(path)
    assert abs(len(wave) / SR - 1.0) < 0.1 and _dominant_hz(wave) == pytest.approx(440.0, abs=5)


def test_a_file_name_that_is_not_utf8_decodes(tmp_path, make_audio):
    good = make_audio.write(tmp_path / "a.wav", make_audio.noise(0.2), SR)
    for suffix in (b".wav", b".mp3"):
        path = os.fsdecode(bytes(tmp_path) + b"/bad\xff\xfe" + suffix)
        if suffix == b".wav":
            Path(path).write_bytes(good.read_bytes())
        else:
            make_audio.encode(Path(path), make_audio.noise(0.5))
        assert len(audio.load(path)) > 0 and audio.probe(path).path == path


def test_a_named_pipe_is_refused_at_once(tmp_path):
    """Opening a FIFO for reading waits for a writer: the check must not open it that way."""
    import threading

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def probe() -> None:
        try:
            audio.probe(fifo)
            outcome.append(None)
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            outcome.append(err)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # release the blocked open so the thread ends, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("probing a named pipe waited for a writer")
    assert isinstance(outcome[0], AudioError)
    _assert_names_file(outcome[0], fifo, "named pipe")
    for call in (audio.load, lambda p: list(audio.stream(p))):
        with pytest.raises(AudioError, match="not a regular file"):
            call(fifo)


def _mka_stating(path: Path, planes: np.ndarray, stated_ms: float) -> Path:
    """A Matroska file of float PCM whose header states a duration of ``stated_ms`` whatever it holds."""
    import struct

    _pyav_write(path, planes, SR, "pcm_f32le", "flt")
    data = path.read_bytes()
    at = data.index(b"\x44\x89\x88") + 3  # the Duration element: an 8-byte float, in milliseconds
    path.write_bytes(data[:at] + struct.pack(">d", stated_ms) + data[at + 8 :])
    return path


def test_load_within_streams_a_file_that_decodes_far_longer_than_its_header_states(tmp_path, make_audio):
    path = _mka_stating(tmp_path / "lying.mka", make_audio.noise(6.0)[None, :], stated_ms=500.0)
    info, wave = audio.load_within(path, max_seconds=1.0)
    assert info.duration_s == 0.5 and wave is None  # decoding ran past twice the limit: stream it, in bounded memory
    assert sum(len(b) for b in audio.stream(path)) == 6 * SR


def test_reads_stay_bounded_for_many_channels(tmp_path, make_audio, monkeypatch):
    frames = np.random.default_rng(4).standard_normal((5000, 24)).astype(np.float32) * 0.1
    path = make_audio.write(tmp_path / "many.wav", frames, SR, subtype="FLOAT")
    whole = audio.load(path)
    monkeypatch.setattr(audio, "READ_SAMPLES", 24 * 300)  # 300 frames per read
    blocks = list(audio.stream(path, block_seconds=1000 / SR))
    assert [len(b) for b in blocks] == [1000] * 5
    np.testing.assert_array_equal(np.concatenate(blocks), whole)
    np.testing.assert_array_equal(audio.load(path), whole)


# Whole files of the stream formats whose end may be cut off; a cut one decodes in part, with a warning.
WHOLE_STREAMS = {
    "mp3": lambda f, d: f.encode(d / "c.mp3", f.vowel(seconds=3.0)),
    "ogg-opus": lambda f, d: f.encode(d / "c.opus", f.vowel(seconds=3.0), codec="libopus"),
    "ogg-vorbis": lambda f, d: f.write(d / "c.ogg", f.noise(20.0, amp=0.3)),
}


@pytest.mark.parametrize("case", list(WHOLE_STREAMS))
def test_a_cut_stream_decodes_with_a_warning_naming_the_file(tmp_path, make_audio, case):
    path = make_audio.cut(WHOLE_STREAMS[case](make_audio, tmp_path), 0.6)
    with audio.collected_warnings() as found:
        wave = audio.load(path)
    assert len(wave) > 0
    assert found and all(w.path == str(path) and "\n" not in str(w) for w in found)
    assert any("ended early" in w.reason for w in found), [w.reason for w in found]


@pytest.mark.parametrize("case", list(WHOLE_STREAMS))
def test_a_whole_stream_gives_no_warning(tmp_path, make_audio, case):
    path = WHOLE_STREAMS[case](make_audio, tmp_path)
    with audio.collected_warnings() as found:
        audio.load(path)
        list(audio.stream(path))
    assert found == []


def test_what_libmpg123_prints_becomes_a_warning_about_the_file(tmp_path, make_audio, capfd):
    path = make_audio.cut(make_audio.encode(tmp_path / "c.mp3", make_audio.vowel(seconds=3.0)), 0.6)
    with audio.collected_warnings() as found:
        audio.load(path)
    assert "Xing" not in capfd.readouterr().err  # not printed raw, naming no file
    assert any("its decoder printed" in w.reason and "Xing" in w.reason for w in found)


def test_collected_warnings_hold_them_even_when_decoding_fails(tmp_path, make_audio):
    path = make_audio.cut(make_audio.write(tmp_path / "v.ogg", make_audio.noise(3.0, amp=0.3)), 0.2)
    with pytest.raises(AudioError), audio.collected_warnings() as found:
        audio.load(path)
    assert [w.path for w in found] == [str(path)]


def test_nan_in_a_late_block_stops_the_stream_there(tmp_path, make_audio):
    path = _nan_wav(make_audio, tmp_path, at=-1)
    blocks = audio.stream(path, block_seconds=0.25)
    good = [next(blocks) for _ in range(3)]
    assert all(np.isfinite(b).all() for b in good)
    with pytest.raises(AudioError, match="NaN or Inf"):
        next(blocks)


@contextmanager
def _without_read_permission(path: Path) -> Iterator[None]:
    """Make the file unreadable; as root (who reads anything) act as user 'nobody' meanwhile."""
    path.chmod(0)
    try:
        with as_nobody():
            yield
    finally:
        path.chmod(0o644)


def test_unreadable_file_raises_audio_error(tmp_path, make_audio):
    path = make_audio.write(tmp_path / "locked.wav", make_audio.noise(0.2), SR)
    with _without_read_permission(path):
        for call in (audio.probe, audio.load, lambda p: list(audio.stream(p)), audio.file_sha256):
            with pytest.raises(AudioError) as caught:
                call(path)
            _assert_names_file(caught.value, path, "permission denied")


def test_probe_does_not_decode(tmp_path, make_audio):
    path = _cut(make_audio.write(tmp_path / "long.flac", make_audio.noise(4.0), SR))
    info = audio.probe(path)  # the header is intact; the damage is found only by decoding
    assert info.duration_s == pytest.approx(4.0) and info.sample_rate == SR
    with pytest.raises(AudioError):
        audio.load(path)


def test_a_wav_with_an_unknown_data_length_is_not_called_truncated(tmp_path, make_audio):
    wave = make_audio.tone(300.0, 0.5)
    path = make_audio.write(tmp_path / "s.wav", wave, SR, subtype="FLOAT")
    data = bytearray(path.read_bytes())
    at = data.index(b"data")
    data[at + 4 : at + 8] = (0xFFFFFFFF).to_bytes(4, "little")  # what a writer to a pipe leaves
    path.write_bytes(bytes(data))
    np.testing.assert_array_equal(audio.load(path), wave)


def test_audio_error_is_one_line_and_pickles(tmp_path):
    err = AudioError(tmp_path / "x.wav", "bad\nthing  here")
    assert str(err) == f"{tmp_path / 'x.wav'}: bad thing here"
    assert (err.path, err.reason) == (str(tmp_path / "x.wav"), "bad thing here")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.reason == err.reason


def test_audio_info_is_frozen(tmp_path, make_audio):
    info = audio.probe(make_audio.write(tmp_path / "a.wav", make_audio.noise(0.1), SR))
    with pytest.raises(AttributeError):
        info.sample_rate = 8000


# --- hashing --------------------------------------------------------------------------------------


def test_file_sha256_matches_hashlib(tmp_path):
    data = np.random.default_rng(3).bytes(3 * audio.HASH_CHUNK_BYTES + 12_345)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert audio.file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert audio.file_sha256(str(path)) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert audio.file_sha256(empty) == hashlib.sha256(b"").hexdigest()
    with pytest.raises(AudioError, match="no such file"):
        audio.file_sha256(tmp_path / "absent")
    with pytest.raises(AudioError, match="directory"):
        audio.file_sha256(tmp_path)
