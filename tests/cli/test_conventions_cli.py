"""What every command keeps to (issue 17, items 5-9 and 17): a closed stdout ends the run quietly with 141;
off a terminal, whole-line messages and progress lines; --quiet, --verbose, -h and --version; exit code 2
naming the option for every bad value; help that shows choices and ends with examples; `adfd models`
without torch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import audio_factory as factory
from feature_factory import random_features

from .helpers import ADFD, adfd, make_corpus

EVERY_STEP = {**os.environ, "ADFD_PROGRESS_SECONDS": "0"}  # a progress line at every step, not every 30 s
COMMANDS = ("featurize", "split", "train", "bundle", "fuse", "merge", "evaluate", "score", "explain", "info", "models", "completions")


def _with_stdout_closed(*args: str) -> tuple[int, str]:
    """Run `adfd ARGS` with its stdout a pipe whose reader has already gone: (exit code, stderr)."""
    proc = subprocess.Popen([*ADFD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    stderr = proc.stderr.read()
    return proc.wait(timeout=240), stderr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    make_corpus(root, factory, n_real=1, n_fake=1, seconds=2.5)
    return root


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scores") / "scores.tsv"
    rows = [f"u{i}\t{(i % 7) - 3.0}\t{'bonafide' if i % 2 else 'spoof'}" for i in range(2000)]
    path.write_text("id\tscore\tlabel\n" + "\n".join(rows) + "\n")
    return path


# --------------------------------------------------------------------------- 5: a closed pipe


@pytest.mark.parametrize("args", [("models", "--json"), ("evaluate", "SCORES", "--json"), ("score", "CORPUS", "-m", "MODEL")])
def test_a_closed_stdout_ends_the_run_quietly_with_141(args, scores, corpus, tmp_path):
    from model_factory import tiny_model

    model = tiny_model(tmp_path / "m.safetensors") if "MODEL" in args else None
    named = {"SCORES": str(scores), "CORPUS": str(corpus), "MODEL": str(model)}
    code, stderr = _with_stdout_closed(*(named.get(a, a) for a in args), *(["--device", "cpu"] if model else []))
    assert code == 141, stderr
    assert "Traceback" not in stderr and "error" not in stderr, stderr


# --------------------------------------------------------------------------- 6: stderr off a terminal


def test_off_a_terminal_messages_are_whole_lines_and_progress_is_a_plain_line(corpus, tmp_path):
    out = tmp_path / ("a-folder-name-long-enough-that-a-wrapped-line-would-cut-it-" * 2) / "features.h5"
    out.parent.mkdir()
    done = adfd("featurize", str(corpus), "-f", "stft-lf", "-o", str(out), "--device", "cpu", env=EVERY_STEP)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert f"{out}: 2 utterances featurized, 0 already there, 0 failed" in lines, done.stderr
    progress = [line for line in lines if line.startswith("featurize: ")]
    assert progress[-1].startswith("featurize: 2/2 (100 %), "), done.stderr
    assert all(re.fullmatch(r"featurize: \d/2 \(\d+ %\), [\d.]+/(s|min)(, eta \d+s)?", line) for line in progress), progress


def test_training_logs_one_line_per_record_and_shows_progress_within_an_epoch(tmp_path):
    feats = random_features(tmp_path / "train.h5", 40, seed=1)
    done = adfd("train", str(feats), "-o", str(tmp_path / "m.safetensors"), "--epochs", "1", "--batch-size", "8",
                "--set", "channels=4,8,8", "--set", "dense=16", "--device", "cpu", env=EVERY_STEP)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("no --val: validating on ") for line in lines), done.stderr  # a log record, unpadded
    assert not any(line.startswith(("INFO", "WARNING")) for line in lines), done.stderr
    assert any(re.match(r"epoch 1: \d+/\d+ \(\d+ %\), ", line) for line in lines), done.stderr


def test_explain_shows_a_progress_line_per_file_off_a_terminal(tmp_path):
    from model_factory import tiny_fdl

    model = tiny_fdl(tmp_path / "fdl.safetensors")
    clips = [str(factory.write(tmp_path / f"c{i}.wav", factory.vowel(120 + 10 * i, seconds=1.0))) for i in range(2)]
    done = adfd("explain", str(model), *clips, "-o", str(tmp_path / "out"), "--device", "cpu", env=EVERY_STEP)
    assert done.returncode == 0, done.stderr
    progress = [line.split(",")[0] for line in done.stderr.splitlines() if line.startswith("explain: ")]
    assert progress == ["explain: 1/2 (50 %)", "explain: 2/2 (100 %)"], done.stderr


def test_progress_lines_come_at_the_interval_with_rate_and_eta():
    from adfd_cli.progress_lines import LineProgress

    class Console:
        printed: list[str] = []

        def print(self, text, **_):
            self.printed.append(text)

    now = [0.0]
    bar = LineProgress(Console(), interval=30, clock=lambda: now[0])
    task = bar.add_task("score", total=100, completed=10)  # a resumed run: 10 were done before
    for _ in range(30):
        now[0] += 2
        bar.advance(task)
    assert Console.printed == ["score: 25/100 (25 %), 0.5/s, eta 2m30s", "score: 40/100 (40 %), 0.5/s, eta 2m00s"]


# --------------------------------------------------------------------------- 7: --quiet, --verbose, -h, --version


def test_quiet_keeps_only_the_failed_inputs(corpus, tmp_path):
    bad = tmp_path / "corpus"
    make_corpus(bad, factory, n_real=1, n_fake=1)
    (bad / "bonafide" / "broken.wav").write_text("not audio")
    done = adfd("featurize", str(bad), "-f", "stft-lf", "-o", str(tmp_path / "f.h5"), "--device", "cpu", "--quiet", env=EVERY_STEP)
    assert done.returncode == 3, done.stderr
    assert [line.split(":")[0] for line in done.stderr.splitlines()] == ["failed"], done.stderr


def test_verbose_shows_debug_records(corpus, tmp_path):
    args = ("featurize", str(corpus), "-f", "stft-lf", "--device", "cpu")
    loud = adfd(*args, "-o", str(tmp_path / "a.h5"), "-v")
    plain = adfd(*args, "-o", str(tmp_path / "b.h5"))
    assert loud.returncode == plain.returncode == 0, loud.stderr + plain.stderr
    assert "debug: device cpu (--device cpu)" in loud.stderr.splitlines()[0], loud.stderr
    assert "debug:" not in plain.stderr


def test_quiet_and_verbose_together_is_a_usage_error():
    done = adfd("models", "-q", "-v")
    assert done.returncode == 2 and "--quiet" in done.stderr and done.stdout == ""


def test_version_and_short_help():
    from adfd_core import __version__

    version = adfd("--version")
    assert (version.returncode, version.stdout) == (0, f"adfd {__version__}\n")
    short = adfd("score", "-h")
    assert short.returncode == 0 and short.stdout.startswith("Usage: adfd score"), short.stderr


# --------------------------------------------------------------------------- 8: bad values exit 2, naming the option


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("score", "x.wav", "--device", "tpu"), "--device"),
        (("split", "x", "--by", "foo"), "--by"),
        (("train", "x.h5", "-m", "nope.v1"), "--model"),
        (("train", "x.h5", "--set", "foo=bar"), "--set"),
        (("train", "x.h5", "--set", "dropout=lots"), "--set"),
        (("train", "x.h5", "-m", "mlp.v1", "--pretrained", "imagenet"), "--pretrained"),
        (("explain", "m.safetensors", "--features", "f.h5", "--stream", "nope"), "--stream"),
        (("score", "x.wav", "--format", "foo"), "--format"),
        (("evaluate", "x.tsv", "--subset", "nope"), "--subset"),
        (("fuse", "a.tsv", "b.tsv", "--method", "median"), "--method"),
        (("featurize", "x", "-f", "nope"), "--feature"),
        (("featurize", "x", "-f", "cqt", "--param", "cqt.nope=1"), "--param"),
        (("completions", "tcsh"), "SHELL"),
    ],
)
def test_a_bad_option_value_is_a_usage_error_naming_the_option(args, option):
    done = adfd(*args)
    assert done.returncode == 2, done.stderr
    assert option in done.stderr.splitlines()[-1] and "Traceback" not in done.stderr, done.stderr


# --------------------------------------------------------------------------- 9: help


def _help(command: str) -> str:
    done = adfd(command, "--help")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_command_help_has_quiet_verbose_exit_codes_and_ends_with_examples():
    code = (
        "import contextlib, io, json\nfrom adfd_cli.main import run\nout = {}\n"
        f"for name in {COMMANDS!r}:\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):\n"
        "        run([name, '--help'])\n"
        "    out[name] = buf.getvalue()\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name, text in json.loads(done.stdout).items():
        assert "-q, --quiet" in text and "-v, --verbose" in text and "-h, --help" in text, name
        assert "130 interrupted" in text and "141" in text, name
        examples = text.rstrip().split("Examples:\n")[-1].splitlines()
        assert 1 <= len(examples) <= 2 and all("adfd " in line for line in examples), (name, examples)
        assert any(f"adfd {name}" in line or "adfd completions" in line for line in examples), (name, examples)


def test_choice_options_show_their_values():
    assert "--by [group|speaker|id]" in _help("split")
    score = _help("score")
    assert "--format [tsv|jsonl|asvspoof2019|asvspoof2021|asvspoof5]" in score
    assert "--device [auto|cpu|cuda|cuda:N]" in score and "--subset [eval|progress|hidden_track|all]" in score
    assert "--stream [classifier|synthesizer|content|shared]" in _help("explain")
    assert "--method [mean|logreg]" in _help("fuse")
    assert "-m, --model [cnn.v1|" in _help("train")


# --------------------------------------------------------------------------- 17: the small commands stay small


def test_models_and_the_feature_list_load_no_torch():
    code = (
        "import contextlib, io, sys\nfrom adfd_cli.main import run\n"
        "for args in (['models'], ['models', '--json'], ['info', '--features'], ['info', '--features', '--json']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        run(args)\n"
        "heavy = [m for m in ('torch', 'transformers', 'torchvision', 'h5py') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listed = json.loads(adfd("models", "--json").stdout)
    assert {"cnn.v1", "fdl.v1", "wavespec.v1"} <= {row["name"] for row in listed}
    assert all(row["parameters"] > 0 and row["config"] for row in listed)
