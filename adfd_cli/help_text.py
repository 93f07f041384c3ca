"""What every command's --help ends with: the exit codes, then one or two examples."""

from __future__ import annotations

from adfd_cli.options import EXIT_CODES_HELP

EXAMPLES: dict[str, tuple[str, ...]] = {
    "featurize": (
        "adfd featurize corpus/ -f cqt -f stft-lf -o feats.h5",
        "adfd featurize LA/ASVspoof2019_LA_train/flac --protocol ASVspoof2019.LA.cm.train.trn.txt -o train.h5",
    ),
    "split": ("adfd split corpus/manifest.tsv -o splits", "adfd split corpus/ --hold-out melgan -o cross-family"),
    "train": (
        "adfd train train.h5 --val val.h5 -m cnn.v1 -f cqt -o cqt.safetensors",
        "adfd train train.h5 -m crnn.v1 --set dropout=0.3 --seed 1 -o crnn.safetensors",
    ),
    "bundle": ("adfd bundle whisper-mlp.safetensors --whisper whisper-base/ -o detector.safetensors",),
    "fuse": (
        "adfd fuse cqt.tsv stft-lf.tsv -o fused.tsv",
        "adfd fuse a.tsv b.tsv --train dev-a.tsv --train dev-b.tsv --save-weights fusion.json -o fused.tsv",
    ),
    "merge": ("adfd merge shards/*.h5 -o feats.h5", "adfd merge scores.*.tsv -o scores.tsv --format asvspoof5"),
    "evaluate": (
        "adfd evaluate scores.tsv --key ASVspoof2019.LA.cm.eval.trl.txt",
        "adfd score --features test.h5 -m cqt.safetensors | adfd evaluate - --json",
    ),
    "score": ("adfd score clip.wav other.mp3", "adfd score corpus/ -m cqt.safetensors -o scores.tsv"),
    "explain": ("adfd explain fdl.safetensors clip.wav -o explain/", "adfd explain fdl.safetensors --features test.h5 --stream content"),
    "info": ("adfd info feats.h5", "adfd info --features --json"),
    "models": ("adfd models", "adfd models --json"),
    "completions": ("source <(adfd completions bash)", "adfd completions fish > ~/.config/fish/completions/adfd.fish"),
}


def epilog(command: str) -> str:
    """The text after COMMAND's options: exit codes, then its examples, kept line by line (click's \\b)."""
    return f"{EXIT_CODES_HELP}\n\n\b\nExamples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[command])
