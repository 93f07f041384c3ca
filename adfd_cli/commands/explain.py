"""`adfd explain`: where a feature-decomposition model looks (Grad-CAM PNGs) and how its latents, or WaveSpec's
fused embeddings, cluster (t-SNE)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from adfd_cli import options
from adfd_cli.choices import one_of
from adfd_cli.console import err, progress
from adfd_cli.console import failed as report_failed

STREAMS = ("classifier", "synthesizer", "content", "shared")  # fdl.v1's F_cls and streams; shared: its single-stream ablation


def explain(
    model: Annotated[Path, typer.Argument(help="Model file of a feature-decomposition model (fdl.v1); with --features also WaveSpec (wavespec.v1).")],
    audio: Annotated[
        list[Path] | None,
        typer.Argument(help="Audio files: one Grad-CAM PNG each, named after the file.", show_default=False),
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the PNGs (made if missing).")] = Path("explain"),
    features: Annotated[
        Path | None,
        typer.Option("--features", help="Feature file with a 'wave' feature: a t-SNE of the model's latents of its recordings."),
    ] = None,
    stream: Annotated[
        str,
        typer.Option("--stream", **one_of(STREAMS),
                     help="Which features the t-SNE shows: classifier (the classifier's input, both streams), synthesizer "
                     "or content (shared: a single-stream model)."),
    ] = "classifier",
    per_class: Annotated[
        int, typer.Option("--per-class", min=1, help="t-SNE of at most this many random recordings of each colour (synthesizer).")
    ] = 300,
    device: options.Device = "auto",
) -> int:
    """Explain a feature-decomposition model's decisions.

    For each audio file, a PNG of its log spectrogram (the middle crop the model takes) and, over
    it, the Grad-CAM map of the spoof logit for each stream: where the synthesizer and content
    streams find evidence of spoofing. With --features, a t-SNE scatter of the classifier's input
    features (or one stream's), coloured by synthesizer; for a WaveSpec model, of its fused
    embeddings, coloured by attack. The written files are listed on stdout; audio that cannot be
    read is named on stderr, and the exit code is 3.
    """
    from adfd_core.devices import resolve_device
    from adfd_core.explain import explain_audio, tsne_of_features
    from adfd_core.outputs import check_output

    if not audio and features is None:
        raise typer.BadParameter("give audio files to explain, or --features for a t-SNE", param_hint="AUDIO")
    check_output(output, [model, features, *(audio or [])], folder=True)
    torch_device = resolve_device(device)
    failed: list[tuple[str, str]] = []
    if audio:
        with progress() as bar:
            result = explain_audio(model, _counted(audio, bar), output, torch_device)
        for path in result.written:
            print(path)
        failed = result.failed
    if features is not None:
        print(tsne_of_features(model, features, output, torch_device, stream=stream, per_class=per_class))
    for path, reason in failed:
        report_failed(path, reason)
    if failed:
        err.print(f"{len(audio or []) - len(failed)} files explained, {len(failed)} failed")
    return 3 if failed else 0


def _counted(paths: list[Path], bar) -> Iterator[Path]:
    """``paths`` one by one, advancing ``bar`` as each is done (when the next one is asked for)."""
    task = bar.add_task("explain", total=len(paths))
    for path in paths:
        yield path
        bar.advance(task)
