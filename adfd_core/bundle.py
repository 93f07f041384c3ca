"""A back-end trained on whisper rows + the Whisper network it was trained on -> one self-contained model file.

    bundle("whisper-mlp.safetensors", "/models/whisper-base", "detector.safetensors")
    adfd score -m detector.safetensors suspect.wav          # no Whisper folder needed

The result is a ``whisper-probe.v1`` model (adfd_core.models.whisper_probe): the encoder cut as the
front-end cuts it (blocks up to the deepest layer used, positions for the segment), the pooling,
and the back-end with its input standardization, scoring each 2-s segment as the two steps
(featurize, then score the rows) do. The network's files must be those the rows were made with:
their sha256 is in the back-end's file.
"""

from __future__ import annotations

import json
from pathlib import Path

from adfd_core.errors import AdfdError


class BundleError(AdfdError):
    """A back-end that cannot be bundled (not trained on whisper rows, or another network), in one line."""


def bundle(backend: str | Path, whisper_folder: str | Path, out: str | Path, storage_dtype: str = "float16") -> Path:
    """Write ``out``: the back-end model file ``backend`` with the Whisper encoder of ``whisper_folder``
    (the weights its rows were made with) inside; encoder tensors stored as ``storage_dtype``."""
    import torch

    from adfd_core import audio, frontends
    from adfd_core.frontends.spec import FrontendError
    from adfd_core.modelfile import ModelFile, load_model, save_model
    from adfd_core.models import registry
    from adfd_core.models.whisper_probe import WhisperProbe, encoder_json

    backend, out = Path(backend), Path(out)
    head, info = load_model(backend)
    if info.frontend.get("name") != "whisper":
        raise BundleError(f"{backend}: trained on {info.frontend.get('name')!r} rows; bundle takes a back-end trained on whisper rows")
    spec = {**info.frontend, "params": {**info.frontend["params"], "model": str(Path(whisper_folder).expanduser().resolve())}}
    try:
        frontend = frontends.from_spec(spec)
        pool = frontend.loaded()  # checks the files against the back-end's weights_sha256
    except FrontendError as exc:
        raise BundleError(f"{backend}: {exc}") from None
    params = frontend.spec.params
    config = registry.make_config(
        "whisper-probe.v1",
        crop_seconds=float(params["segment_seconds"]),
        encoder_config=encoder_json(pool.encoder.fields),
        full_depth=pool.full_depth,
        layers=tuple(pool.layers or ()),
        pooling=params["pooling"],
        pad_to_30s=params["pad_to_30s"],
        head=info.name,
        head_config=json.dumps(registry.config_to_dict(info.config)),
        storage_dtype=storage_dtype,
    )
    probe = WhisperProbe(config)
    with torch.no_grad():
        probe.pool.encoder.load_state_dict(pool.encoder.float().state_dict())
        probe.head.load_state_dict(head.state_dict())
    sources = {
        "backend": {"path": str(backend), "sha256": audio.file_sha256(backend), "model": info.name},
        "whisper": {"folder": str(whisper_folder), "weights_sha256": params["weights_sha256"]},
        "frontend": frontend.spec.to_dict(),
    }
    wave = {"name": "wave", "version": 1, "params": {"sample_rate": audio.TARGET_SR, "segment_seconds": float(params["segment_seconds"])}}
    made = ModelFile(
        name="whisper-probe.v1", config=config, frontend=frontends.from_spec(wave).spec.to_dict(),
        training={**info.training, "bundled_from": sources}, calibration=info.calibration, extra=info.extra,
    )  # fmt: skip
    return save_model(out, probe.eval(), made)
