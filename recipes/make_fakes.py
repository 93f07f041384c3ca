"""Make training fakes: copy synthesis of real clips through DSP vocoders, and offline TTS.

    python recipes/make_fakes.py OUT --real MANIFEST [--real MANIFEST ...]
        [--systems world,griffinlim,...] [--jobs N] [--limit N | --limit SYSTEM=N,...] [--seed S] [--takes K]

Copy synthesis (world, griffinlim, griffinlim-mel, lpc, mlsa) resynthesizes every `bonafide` row
of each real manifest (`path label family system source group duration_s [language speaker]`,
paths relative to the manifest); each fake keeps the real clip's group. TTS (piper, espeak,
festival, flite) reads the sentences of recipes/fakes/sentences.py, K takes each with voices
and settings drawn from the seed; a sentence is one group (`gen_tts:<n>`) across engines.

Rerunnable: an output that exists is skipped, and each file appears only when complete, so an
interrupted run resumes (one run per OUT at a time). OUT/manifest.tsv lists every existing output of the plan that the
options make (all systems, whichever --systems this run made), and OUT/README.md says how they
were made. A system whose package or program is missing is skipped with a message. Exit 0 when
all went well, 3 when some outputs failed (listed), 1 on a bad manifest, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import importlib.util
import os
import platform
import signal
import sys
import time
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes.level import PEAK_LIMIT, SR, TARGET_DBFS, to_16k, write_flac  # noqa: E402
from fakes.sentences import SENTENCES  # noqa: E402
from fakes.tts import ENGINES, Take  # noqa: E402
from fakes.vocoders import VOCODERS  # noqa: E402

COLUMNS = ("path", "label", "family", "system", "source", "group", "duration_s", "language", "speaker")
SYSTEMS = tuple(VOCODERS) + tuple(ENGINES)


class ManifestError(Exception):
    """A real manifest that cannot be read; the message names the file and the reason."""


@dataclass(frozen=True)
class RealClip:
    """A bona fide clip of a real manifest."""

    path: Path
    out_stem: str
    group: str
    language: str
    speaker: str


@dataclass(frozen=True)
class CopyTask:
    """Resynthesize one real clip through the listed vocoders into the listed output paths."""

    real: Path
    outputs: tuple[tuple[str, str], ...]
    seed: int


@dataclass(frozen=True)
class TtsTask:
    """Render one sentence as planned into one output path."""

    take: Take
    text: str
    output: str


def read_real(manifests: list[Path]) -> list[RealClip]:
    """The bonafide rows of every manifest, with output stems `SET/NAME` that never collide."""
    clips: dict[str, RealClip] = {}
    for manifest in manifests:
        try:
            with open(manifest, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f, delimiter="\t"))
        except OSError as e:
            raise ManifestError(f"{manifest}: cannot read ({e.strerror})") from e
        if not rows or not {"path", "label", "group"} <= set(rows[0]):
            raise ManifestError(f"{manifest}: not a manifest (needs a header with path, label and group)")
        for row in rows:
            if row["label"] != "bonafide":
                continue
            rel = Path(row["path"])
            parts = rel.with_suffix("").parts
            stem = f"{manifest.parent.name}/" + "__".join(parts[1:] if parts[0] == "bonafide" else parts)
            clips.setdefault(stem, RealClip(manifest.parent / rel, stem, row["group"],
                                            row.get("language") or "und", row.get("speaker") or "-"))
    return sorted(clips.values(), key=lambda c: c.out_stem)


def parse_limit(text: str | None) -> dict[str, int]:
    """`N` (every system) or `SYSTEM=N,...` -> {system: N}; systems not named are unlimited."""
    if not text:
        return {}
    if text.isdigit():
        return dict.fromkeys(SYSTEMS, int(text))
    limits = {}
    for item in text.split(","):
        key, _, n = item.partition("=")
        if key not in SYSTEMS or not n.isdigit():
            raise argparse.ArgumentTypeError(f"--limit: expected N or SYSTEM=N,... with SYSTEM in {','.join(SYSTEMS)}")
        limits[key] = int(n)
    return limits


def _clip_seed(seed: int, name: str) -> int:
    return (zlib.crc32(name.encode()) ^ seed) & 0x7FFFFFFF


def plan(reals: list[RealClip], seed: int, takes: int, limits: dict[str, int]) -> tuple[dict[str, dict], list]:
    """Every output of the plan: ({path: manifest row without duration}, [tasks]) for all systems.

    Real clips are taken in a seeded random order, so a limit picks a spread of sources. TTS
    tasks come first: they are quick, so an interrupted run has some of every system.
    """
    rows: dict[str, dict] = {}
    tasks: list = []
    order = [reals[i] for i in np.random.default_rng(seed).permutation(len(reals))]
    per_clip: dict[Path, list[tuple[str, str]]] = defaultdict(list)
    clip_of = {}
    for voc in VOCODERS.values():
        for clip in order[: limits.get(voc.key, len(order))]:
            out = f"{voc.key}/{clip.out_stem}.flac"
            rows[out] = {"path": out, "label": "spoof", "family": voc.family, "system": voc.system,
                         "source": f"gen_{voc.key.replace('-', '_')}", "group": clip.group,
                         "language": clip.language, "speaker": clip.speaker}
            per_clip[clip.path].append((voc.key, out))
            clip_of[clip.path] = clip
    for engine in ENGINES.values():
        if engine.missing():
            continue
        sentences = [(n, lang, text) for n, (lang, text) in enumerate(SENTENCES) if lang in engine.languages]
        for n, language, text in sentences[: limits.get(engine.key, len(sentences))]:
            for t in range(takes):
                rng = np.random.default_rng([seed, zlib.crc32(engine.key.encode()), n, t])
                take = engine.plan(language, n * takes + t, rng)
                out = f"{engine.key}/s{n:03d}_t{t}_{take.slug}.flac"
                rows[out] = {"path": out, "label": "spoof", "family": take.family, "system": take.system,
                             "source": f"gen_{engine.key}", "group": f"gen_tts:{n}", "language": language,
                             "speaker": take.speaker}
                tasks.append(TtsTask(take, text, out))
    for path, outputs in per_clip.items():
        tasks.append(CopyTask(path, tuple(outputs), _clip_seed(seed, clip_of[path].out_stem)))
    return rows, tasks


def missing_reason(system: str) -> str | None:
    """Why a system cannot run here (a package or program is missing), or None."""
    if system in VOCODERS:
        absent = [m for m in VOCODERS[system].requires if importlib.util.find_spec(m) is None]
        return f"{', '.join(absent)} not installed (pip install '.[recipes]')" if absent else None
    return ENGINES[system].missing()


def run_task(task: CopyTask | TtsTask, out_dir: Path, systems: frozenset[str]) -> tuple[int, list[tuple[str, str]]]:
    """Make the task's missing outputs for the chosen systems; returns (clips made, [(path, error)])."""
    made, failed = 0, []
    if isinstance(task, TtsTask):
        if task.take.engine in systems and not (out_dir / task.output).exists():
            try:
                wave, sr = ENGINES[task.take.engine].render(task.take, task.text)
                write_flac(out_dir / task.output, wave, sr)
                made += 1
            except Exception as e:  # one bad rendering must not stop the batch
                failed.append((task.output, f"{type(e).__name__}: {e}"))
        return made, failed
    todo = [(key, out) for key, out in task.outputs if key in systems and not (out_dir / out).exists()]
    if not todo:
        return made, failed
    try:
        wave, sr = sf.read(task.real, dtype="float64", always_2d=True)
        wave = to_16k(wave.mean(axis=1), sr)
    except Exception as e:
        return made, [(out, f"cannot read {task.real}: {e}") for _, out in todo]
    for key, out in todo:
        try:
            write_flac(out_dir / out, VOCODERS[key].run(wave, task.seed), SR)
            made += 1
        except Exception as e:  # one bad clip must not stop the batch
            failed.append((out, f"{type(e).__name__}: {e}"))
    return made, failed


def execute(tasks: list, out_dir: Path, systems: frozenset[str], jobs: int) -> tuple[int, list[tuple[str, str]]]:
    """Run the tasks, in this process or in `jobs` worker processes, printing progress."""
    made, failed, start = 0, [], time.monotonic()
    step = max(1, len(tasks) // 40)

    def report(done: int, result: tuple[int, list]) -> None:
        nonlocal made
        made += result[0]
        for path, reason in result[1]:
            print(f"failed: {path}: {reason}", file=sys.stderr, flush=True)
        failed.extend(result[1])
        if done % step == 0 or done == len(tasks):
            print(f"[{done}/{len(tasks)}] {made} made, {len(failed)} failed, {(time.monotonic() - start) / 60:.1f} min",
                  flush=True)

    if jobs <= 1:
        for done, task in enumerate(tasks, 1):
            report(done, run_task(task, out_dir, systems))
        return made, failed
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_task, task, out_dir, systems) for task in tasks]
        try:
            for done, future in enumerate(as_completed(futures), 1):
                report(done, future.result())
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return made, failed


def write_manifest(out_dir: Path, rows: dict[str, dict]) -> list[dict]:
    """Write OUT/manifest.tsv for the planned outputs that exist; returns its rows."""
    done = []
    for path in sorted(rows):
        file = out_dir / path
        if file.exists():
            done.append({**rows[path], "duration_s": f"{sf.info(str(file)).duration:.2f}"})
    tmp = out_dir / ".manifest.tsv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(done)
    os.replace(tmp, out_dir / "manifest.tsv")
    return done


def _versions() -> list[str]:
    found = [f"Python {platform.python_version()}"]
    for dist in ("numpy", "scipy", "librosa", "soundfile", "soxr", "pyworld", "pysptk", "piper-tts", "onnxruntime"):
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{dist} (not installed)")
    for key, engine in ENGINES.items():
        if key != "piper" and not engine.missing():
            found.append(engine.version())
    return found


def _command(args: argparse.Namespace) -> str:
    """The command line that plans these outputs (without --systems and --jobs)."""
    parts = ["python recipes/make_fakes.py", str(args.out)] + [f"--real {m}" for m in args.real]
    parts += [f"--limit {args.limit}"] if args.limit else []
    return " ".join(parts + [f"--seed {args.seed}", f"--takes {args.takes}"])


def write_readme(out_dir: Path, args: argparse.Namespace, done: list[dict], skipped: dict[str, str],
                 failed: list[tuple[str, str]]) -> None:
    """Write OUT/README.md: how the clips were made, with versions, parameters and counts."""
    clips, seconds = Counter(), Counter()
    for row in done:
        key = (row["source"], row["family"])
        clips[key] += 1
        seconds[key] += float(row["duration_s"])
    lines = [
        "# Generated fakes for training", "",
        f"{len(done)} spoof clips ({sum(seconds.values()) / 3600:.2f} h), made by `recipes/make_fakes.py` of the adfd "
        f"project (last run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC). To remake them, or what is missing:", "",
        "    " + _command(args), "",
        f"Seed {args.seed}, {args.takes} TTS takes per sentence, limits {args.limit or 'none'}. `--systems` and "
        "`--jobs` choose what a run makes and how; the outputs and this manifest do not depend on them.", "",
        "## Files",
        "- `manifest.tsv`: `" + " ".join(COLUMNS) + "`, tab-separated, as in the shared train set. Every clip is "
        "`spoof`. `source` is the generator (`gen_world`, `gen_piper`, ...). `group`: a copy-synthesis fake "
        "keeps the group of the real clip it was made from, so a recording and its resyntheses share a group; "
        "a TTS sentence is one group `gen_tts:<n>` across engines and takes. `language` and `speaker` are the "
        "real clip's for copy synthesis (`und` and `-` where its manifest has no such column) and the TTS "
        "language and voice otherwise.",
        "- `SYSTEM/SET/NAME.flac` (copy synthesis of `SET`'s clip `bonafide/NAME`) and `ENGINE/sNNN_tK_VOICE_SETTINGS.flac`.",
        "",
        "## Format",
        f"Each output was downmixed to mono, resampled to {SR // 1000} kHz (soxr HQ), RMS-normalized to "
        f"{TARGET_DBFS:g} dBFS with a {PEAK_LIMIT} peak limit, and written as 16-bit FLAC, like the shared sets.",
        "",
        "## Copy synthesis",
    ]
    for voc in VOCODERS.values():
        params = ", ".join(f"{k} {v}" for k, v in voc.params.items())
        lines.append(f"- `{voc.key}` ({voc.family}): {voc.system}. {params}.")
    lines += ["", "## TTS", f"{len(SENTENCES)} sentences written for the recipe (recipes/fakes/sentences.py): "
              f"{Counter(lang for lang, _ in SENTENCES)['en']} English, the rest in other languages (eSpeak NG only). "
              "Voices cycle per take; settings are drawn from the seed:"]
    for engine in ENGINES.values():
        lines.append(f"- `{engine.key}`: {(engine.__doc__ or '').strip()}")
    lines += ["", "## Versions", "- " + "; ".join(_versions()), "", "## Counts",
              "| source | family | clips | minutes |", "|---|---|---|---|"]
    for (source, family), n in sorted(clips.items()):
        lines.append(f"| {source} | {family} | {n} | {seconds[(source, family)] / 60:.1f} |")
    lines += ["", "## Caveats",
              "- Copy-synthesis fakes of dev-set recordings (`*/devset/*`) share the dev set's groups: leave them "
              "out of training when you evaluate on the dev set.",
              "- WORLD resynthesizes the pauses of a noisy recording 15-35 dB quieter than the original: quiet "
              "pauses can become a cue for `fake`. Augment with added noise, or check per-source results.",
              "- Copy synthesis keeps the real clip's words, speaker and recording channel; only the vocoder differs. "
              "TTS clips are clean, read, mostly US English and in voices no real clip has: a model can tell them "
              "from the real clips by voice and wording alone, so check per-source results.",
              ]
    if skipped:
        lines += ["", "## Skipped on the last run"] + [f"- `{k}`: {v}" for k, v in sorted(skipped.items())]
    if failed:
        lines += ["", f"## Failed on the last run ({len(failed)})"] + [f"- `{p}`: {r}" for p, r in failed[:50]]
    (out_dir / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="output folder (created)")
    ap.add_argument("--real", type=Path, action="append", default=[], help="a manifest of real clips (repeatable)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--limit", default=None, help="N (per system: real clips or sentences) or SYSTEM=N,...")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--takes", type=int, default=2, help="TTS renderings per sentence and engine")
    args = ap.parse_args(argv)
    chosen = [s for s in args.systems.split(",") if s]
    unknown = [s for s in chosen if s not in SYSTEMS]
    if unknown:
        ap.error(f"unknown system(s) {','.join(unknown)}; choose from {','.join(SYSTEMS)}")
    try:
        limits = parse_limit(args.limit)
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    try:
        reals = read_real(args.real)
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    skipped = {s: reason for s in chosen if (reason := missing_reason(s))}
    for system, reason in skipped.items():
        print(f"skipping {system}: {reason}", file=sys.stderr)
    systems = frozenset(chosen) - set(skipped)
    rows, tasks = plan(reals, args.seed, args.takes, limits)
    args.out.mkdir(parents=True, exist_ok=True)
    for stale in args.out.glob("**/.*.tmp"):  # left by a run that was killed mid-write
        stale.unlink()
    print(f"{len(reals)} real clips, {len(rows)} planned outputs, systems {','.join(sorted(systems)) or 'none'}",
          flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # kill PID stops as cleanly as Ctrl-C
    try:
        made, failed = execute(tasks, args.out, systems, args.jobs)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    done = write_manifest(args.out, rows)
    write_readme(args.out, args, done, skipped, failed)
    print(f"made {made}, failed {len(failed)}; {args.out / 'manifest.tsv'} lists {len(done)} clips")
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
