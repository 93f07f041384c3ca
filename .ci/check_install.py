"""CI: import every runtime dependency of the installed adfd, print its version, and exercise the
binary pieces that break when torch, torchaudio and torchvision come from mismatched releases.

Exits 1 with one line per failure; prints one `name version` line per dependency otherwise.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import re
import sys

# Distribution name -> module to import, where they differ.
MODULES = {"PyWavelets": "pywt", "av": "av", "soxr": "soxr", "safetensors": "safetensors"}


def runtime_requirements() -> list[str]:
    """The names of adfd's own dependencies, as the installed metadata lists them (extras left out)."""
    names = []
    for req in md.requires("adfd") or []:
        if "extra ==" in req:
            continue
        names.append(re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0])
    return names


def check_binaries() -> None:
    """The calls that fail first when the torch trio does not match: resampling, an op, bf16 autocast."""
    import torch
    import torchaudio.functional
    import torchvision

    tone = torch.sin(torch.arange(48000) * 2 * torch.pi * 440 / 48000)
    out = torchaudio.functional.resample(tone, 48000, 16000)
    assert out.shape == (16000,), f"torchaudio resample gave shape {tuple(out.shape)}"
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    assert torchvision.ops.nms(boxes, torch.tensor([1.0, 0.5]), 0.5).tolist() == [0], "torchvision nms"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = torch.nn.Linear(4, 2)(torch.ones(1, 4))
    assert y.dtype == torch.bfloat16, f"bf16 autocast gave {y.dtype}"


def main() -> int:
    failures = []
    for name in runtime_requirements():
        try:
            importlib.import_module(MODULES.get(name, name.replace("-", "_")))
            print(f"{name} {md.version(name)}")
        except Exception as exc:  # any import failure is what this check is for
            failures.append(f"ci: {name} does not import: {type(exc).__name__}: {exc}")
    if not failures:
        try:
            check_binaries()
        except Exception as exc:
            failures.append(f"ci: torch/torchaudio/torchvision do not work together: {type(exc).__name__}: {exc}")
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
