"""recipes/make_fakes.py on two generated real clips: manifest rows, groups, format, level, reruns."""

from __future__ import annotations

import csv
import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "make_fakes.py"
_spec = importlib.util.spec_from_file_location("make_fakes", RECIPE)
make_fakes = importlib.util.module_from_spec(_spec)
sys.modules["make_fakes"] = make_fakes  # dataclasses look their module up there
_spec.loader.exec_module(make_fakes)

COPY_SYSTEMS = {"world": "pyworld", "griffinlim": None, "griffinlim-mel": None, "lpc": "pysptk", "mlsa": "pysptk"}


def _real_set(root: Path, factory) -> list[Path]:
    """Two real clips in two manifests: one with the train set's language/speaker columns, one without."""
    manifests = []
    for name, f0, extra in (("setA", 110.0, ("en", "VCTK p001")), ("setB", 190.0, None)):
        folder = root / name
        factory.write(folder / "bonafide" / "src" / "clip.flac", factory.vowel(f0, seconds=1.5, seed=int(f0)))
        factory.write(folder / "spoof" / "src" / "fake.flac", factory.chirp(seconds=1.0))
        head = ["path", "label", "family", "system", "source", "group", "duration_s"] + (["language", "speaker"] if extra else [])
        rows = [["bonafide/src/clip.flac", "bonafide", "bonafide", "bonafide", "src", f"G:{name}", "1.50", *(extra or ())],
                ["spoof/src/fake.flac", "spoof", "x", "x", "src", "G:fake", "1.00", *(extra or ())]]
        manifest = folder / "manifest.tsv"
        manifest.write_text("\n".join("\t".join(r) for r in [head, *rows]) + "\n")
        manifests.append(manifest)
    return manifests


def _read(manifest: Path) -> list[dict]:
    with open(manifest, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        assert tuple(reader.fieldnames) == make_fakes.COLUMNS
        return list(reader)


def _run(out: Path, manifests: list[Path], *args: str) -> int:
    argv = [str(out)] + [a for m in manifests for a in ("--real", str(m))] + list(args)
    return make_fakes.main(argv)


@pytest.mark.parametrize("system", sorted(COPY_SYSTEMS))
def test_copy_synthesis_rows_format_level_and_rerun(tmp_path, make_audio, capsys, system):
    if COPY_SYSTEMS[system]:
        pytest.importorskip(COPY_SYSTEMS[system])
    manifests = _real_set(tmp_path, make_audio)
    out = tmp_path / "out"
    assert _run(out, manifests, "--systems", system) == 0
    rows = _read(out / "manifest.tsv")
    assert sorted(r["group"] for r in rows) == ["G:setA", "G:setB"]  # the real clip's group, spoofs ignored
    by_group = {r["group"]: r for r in rows}
    assert (by_group["G:setA"]["language"], by_group["G:setA"]["speaker"]) == ("en", "VCTK p001")
    assert (by_group["G:setB"]["language"], by_group["G:setB"]["speaker"]) == ("und", "-")
    for row in rows:
        assert (row["label"], row["source"]) == ("spoof", "gen_" + system.replace("-", "_"))
        assert row["family"] == make_fakes.VOCODERS[system].family
        info = sf.info(str(out / row["path"]))
        assert (info.samplerate, info.channels, info.format, info.subtype) == (16_000, 1, "FLAC", "PCM_16")
        assert abs(info.duration - 1.5) < 0.02 and row["duration_s"] == f"{info.duration:.2f}"
        wave, _ = sf.read(str(out / row["path"]))
        rms_db = 20 * np.log10(np.sqrt(np.mean(wave**2)))
        peak = np.max(np.abs(wave))
        assert peak <= 0.991
        assert abs(rms_db + 26) < 0.1 or (rms_db < -26 and peak > 0.98)  # -26 dBFS unless the peak limit holds it down
    readme = (out / "README.md").read_text()
    assert system in readme and "-26 dBFS" in readme
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")}
    stale = (out / rows[0]["path"]).parent / ".half.flac.999.tmp"  # what a killed run leaves
    stale.write_bytes(b"partial")
    capsys.readouterr()
    assert _run(out, manifests, "--systems", system) == 0
    assert "made 0, failed 0" in capsys.readouterr().out
    assert not stale.exists()
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")} == stamps
    assert _read(out / "manifest.tsv") == rows


def test_a_later_run_of_another_system_keeps_the_first_systems_rows(tmp_path, make_audio):
    manifests = _real_set(tmp_path, make_audio)
    out = tmp_path / "out"
    assert _run(out, manifests, "--systems", "griffinlim") == 0
    assert _run(out, manifests, "--systems", "griffinlim-mel", "--limit", "griffinlim-mel=1") == 0
    rows = _read(out / "manifest.tsv")
    assert sorted(r["source"] for r in rows) == ["gen_griffinlim", "gen_griffinlim", "gen_griffinlim_mel"]
    mel_group = next(r["group"] for r in rows if r["source"] == "gen_griffinlim_mel")
    assert mel_group in {"G:setA", "G:setB"}


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_tts_rows_share_a_group_per_sentence(tmp_path):
    out = tmp_path / "out"
    assert make_fakes.main([str(out), "--systems", "espeak", "--limit", "espeak=2", "--takes", "2"]) == 0
    rows = _read(out / "manifest.tsv")
    assert sorted(r["group"] for r in rows) == ["gen_tts:0", "gen_tts:0", "gen_tts:1", "gen_tts:1"]
    assert {r["source"] for r in rows} == {"gen_espeak"} and {r["language"] for r in rows} == {"en"}
    assert len({r["speaker"] for r in rows}) == 4  # each take has its own voice
    for row in rows:
        assert sf.info(str(out / row["path"])).samplerate == 16_000


def test_piper_renders_the_same_clip_on_every_run(tmp_path):
    """VITS samples its noise inside the ONNX graph: a clip must not depend on the run or the order of clips."""
    pytest.importorskip("piper")
    if make_fakes.missing_reason("piper"):
        pytest.skip("no *-piper-voice package installed")
    runs = []
    for name, jobs in (("a", "1"), ("b", "2")):
        out = tmp_path / name
        assert make_fakes.main([str(out), "--systems", "piper", "--limit", "piper=2", "--takes", "2", "--jobs", jobs]) == 0
        runs.append({r["path"]: sf.read(str(out / r["path"]))[0] for r in _read(out / "manifest.tsv")})
    assert runs[0].keys() == runs[1].keys() and len(runs[0]) == 4
    for path, wave in runs[0].items():
        assert np.array_equal(wave, runs[1][path]), path
    assert not np.array_equal(*[w[:8000] for w in list(runs[0].values())[:2]])  # the takes differ from each other


def test_a_missing_tool_is_skipped_with_a_message(tmp_path, make_audio, capsys, monkeypatch):
    monkeypatch.setattr(make_fakes, "missing_reason", lambda s: "not here" if s == "griffinlim-mel" else None)
    manifests = _real_set(tmp_path, make_audio)
    assert _run(tmp_path / "out", manifests, "--systems", "griffinlim,griffinlim-mel") == 0
    assert "skipping griffinlim-mel: not here" in capsys.readouterr().err
    assert {r["source"] for r in _read(tmp_path / "out" / "manifest.tsv")} == {"gen_griffinlim"}


def test_an_unreadable_real_clip_fails_that_output_only(tmp_path, make_audio, capsys):
    manifests = _real_set(tmp_path, make_audio)
    (manifests[0].parent / "bonafide" / "src" / "clip.flac").write_bytes(b"not audio")
    assert _run(tmp_path / "out", manifests, "--systems", "griffinlim") == 3
    err = capsys.readouterr().err
    assert "failed: griffinlim/setA/src__clip.flac: cannot read" in err
    assert [r["group"] for r in _read(tmp_path / "out" / "manifest.tsv")] == ["G:setB"]


def test_a_bad_manifest_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "list.tsv"
    bad.write_text("a\tb\n1\t2\n")
    assert make_fakes.main([str(tmp_path / "out"), "--real", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(bad) in err and "\n" not in err


def test_normalize_sets_rms_and_limits_the_peak():
    from fakes.level import normalize

    rng = np.random.default_rng(0)
    speechy = normalize(0.3 * rng.standard_normal(16_000))
    assert abs(20 * np.log10(np.sqrt(np.mean(speechy.astype(np.float64) ** 2))) + 26) < 0.01
    spiky = np.zeros(16_000)
    spiky[::4000] = 1.0  # crest factor far above 26 dB: the peak limit decides the gain
    assert np.isclose(np.max(np.abs(normalize(spiky))), 0.99, atol=1e-6)
    with pytest.raises(ValueError, match="silent"):
        normalize(np.zeros(100))


@pytest.mark.parametrize("system", sorted(COPY_SYSTEMS))
def test_a_band_limited_clip_between_silences_keeps_its_shape(make_audio, system):
    """An 8 kHz-sourced recording (nothing above 3.8 kHz) padded with digital silence once made the
    MLSA filter blow up: one loud burst, the rest silent after normalization."""
    if COPY_SYSTEMS[system]:
        pytest.importorskip(COPY_SYSTEMS[system])
    from scipy.signal import butter, sosfilt

    voiced = sosfilt(butter(10, 3800, fs=16_000, output="sos"), make_audio.vowel(120.0, seconds=1.0))
    wave = np.concatenate([np.zeros(8000), voiced, np.zeros(8000)])
    out = make_fakes.VOCODERS[system].run(wave, 0)

    def loud(y: np.ndarray) -> float:
        frames = y[: len(y) // 320 * 320].reshape(-1, 320)
        energy = np.mean(frames**2, axis=1)
        return float(np.mean(energy > 1e-4 * energy.max()))  # frames within 40 dB of the loudest

    assert np.all(np.isfinite(out)) and abs(loud(out) - loud(wave)) < 0.1
