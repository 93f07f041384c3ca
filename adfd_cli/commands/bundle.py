"""`adfd bundle`: a back-end trained on whisper rows + its Whisper network -> one self-contained model file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adfd_cli.console import err


def bundle(
    backend: Annotated[Path, typer.Argument(help="Model file of a back-end trained on whisper rows (mlp.v1, logreg.v1, layerweight.v1, attentive.v1).")],
    whisper: Annotated[Path, typer.Option("--whisper", "-w", help="The Whisper folder the rows were made with (same weights).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model file to write (.safetensors).")],
    float32: Annotated[bool, typer.Option("--float32", help="Store the encoder in float32 (default float16: half the size).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")] = False,
) -> int:
    """Put the Whisper encoder (cut after the deepest layer the back-end reads) inside the back-end's model
    file, so `adfd score -m OUTPUT audio` needs no Whisper folder. Scores equal featurize-then-score."""
    from adfd_core.bundle import bundle as run_bundle

    if output.exists() and not force:
        raise typer.BadParameter(f"{output} exists; pass --force to overwrite it", param_hint="--output")
    path = run_bundle(backend, whisper, output, storage_dtype="float32" if float32 else "float16")
    err.print(f"{path}: whisper-probe.v1, {path.stat().st_size / 1e6:.1f} MB", markup=False)
    return 0
