"""t-SNE of a waveform model's utterance embedding, coloured by attack: WaveSpec's fused embedding, as the paper plots it.

A model offers one with ``embedding(x (B, S)) -> (B, E)``: the vector its classifier reads (for
WaveSpec the pooled, projected fusion of its three scales, where the single center loss acts).
``adfd_core.explain.tsne_of_features`` hands such a model here; a feature-decomposition model,
with its streams, stays there.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from adfd_core import explain
from adfd_core.augment import middle_crop
from adfd_core.modelfile import load_model, read_model_info
from adfd_core.models import registry
from adfd_core.store import FeatureFile

EMBEDDING_API = "embedding"
PLOT_NAME = "tsne-embedding.png"


def has_embedding(model_path: str | os.PathLike) -> bool:
    """Whether the model file's registered model offers ``embedding`` (from its metadata: no tensors are read)."""
    return callable(getattr(registry.entry(read_model_info(model_path).name).make, EMBEDDING_API, None))


def tsne_of_embeddings(
    model_path: str | os.PathLike,
    feature_file: str | os.PathLike,
    out_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    per_class: int | None = explain.TSNE_PER_CLASS,
    seed: int = 0,
) -> Path:
    """``out_dir/tsne-embedding.png``: t-SNE of the embeddings of the feature file's recordings (middle
    crops of its ``wave`` feature), coloured by attack ("bonafide" for bona fide).

    per_class: at most this many recordings of each colour, drawn at random (``seed``); None: all.
    """
    if per_class is not None and per_class < 1:
        raise ValueError(f"per_class must be positive, got {per_class}")
    model, info = load_model(model_path, device=device)
    crop_samples = explain._crop_samples(info)
    with FeatureFile(feature_file) as ff:
        if not ff.feature(explain.WAVE_FEATURE).whole_utterance:
            raise explain.ExplainError(f"{feature_file}: feature {explain.WAVE_FEATURE!r} holds segment rows, not waveforms")
        names = [explain._colour_label(label, attack) for label, attack in zip(ff.column("label"), ff.column("attack"))]
        picked = explain._sample_per_class(names, per_class, seed)
        crops = [middle_crop(ff.rows(explain.WAVE_FEATURE, i), crop_samples) for i in picked]
    embeddings = embed(model, crops, device)
    title = f"{Path(feature_file).name}: {info.name} embeddings of {len(picked)} recordings"
    return explain.tsne_plot(embeddings, [names[i] for i in picked], explain._output_folder(out_dir) / PLOT_NAME, title)


def embed(model: torch.nn.Module, crops: list[np.ndarray], device: str | torch.device) -> np.ndarray:
    """(N, E) float32 embeddings of N (S,) crops, ``explain.LATENT_BATCH`` at a time."""
    parts = []
    with torch.no_grad():
        for start in range(0, len(crops), explain.LATENT_BATCH):
            x = torch.from_numpy(np.stack(crops[start : start + explain.LATENT_BATCH])).to(device)
            parts.append(getattr(model, EMBEDDING_API)(x).float().cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
