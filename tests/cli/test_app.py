"""The app as a whole: help without heavy imports, exit codes in help, completions in step."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import adfd

COMPLETIONS = Path(__file__).resolve().parents[2] / "completions"


def test_help_lists_commands_and_exit_codes_without_importing_torch():
    code = (
        "import sys\n"
        "from adfd_cli.main import run\n"
        "try:\n    run(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('torch', 'transformers', 'librosa', 'h5py') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for word in ("featurize", "info", "completions", "Exit codes: 0 success; 1 error; 2 usage error; 3"):
        assert word in done.stdout


def test_unknown_command_is_a_usage_error():
    done = adfd("frobnicate")
    assert done.returncode == 2 and "frobnicate" in done.stderr and done.stdout == ""


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_committed_completions_match_the_app(shell):
    from adfd_cli.completion_scripts import render
    from adfd_cli.app import app
    import typer

    committed = (COMPLETIONS / f"adfd.{shell}").read_text()
    assert committed == render(shell, typer.main.get_command(app)), (
        f"completions/adfd.{shell} is out of step with the CLI; regenerate: "
        "for s in bash zsh fish; do adfd completions $s > completions/adfd.$s; done"
    )


def _bash_complete(*words: str) -> list[str]:
    script = COMPLETIONS / "adfd.bash"
    line = " ".join(f"'{w}'" for w in words)
    probe = f'source "{script}"; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _adfd; printf "%s\\n" "${{COMPREPLY[@]}}"'
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completion_offers_commands_options_and_feature_names():
    assert {"featurize", "info", "completions"} <= set(_bash_complete("adfd", ""))
    assert "--feature" in _bash_complete("adfd", "featurize", "--fe")
    assert set(_bash_complete("adfd", "featurize", "--feature", "stft-")) == {"stft-gam", "stft-lf", "stft-mel"}
    assert _bash_complete("adfd", "featurize", "--device", "c") == ["cpu", "cuda"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_parses():
    assert subprocess.run(["zsh", "-n", str(COMPLETIONS / "adfd.zsh")]).returncode == 0


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_script_parses():
    assert subprocess.run(["fish", "--no-execute", str(COMPLETIONS / "adfd.fish")]).returncode == 0
