"""What a feature-decomposition model looks at: Grad-CAM maps of its streams, t-SNE of its latents.

The model API used here (``adfd_core.models.fdl.FDL``): ``spectrogram(x (B, S)) -> (B, 1, F, T)``;
``stream_blocks() -> {stream: block}``, each block's output a (B, N, h, w) map (the streams are
"synthesizer" and "content", or "shared" in the single-stream ablation); ``forward(x) -> (B, 2)``
logits (0 spoof, 1 bona fide); ``latent(x) -> {stream: (B, N), "classifier": (B, D)}`` (D: the
classifier's input, the streams concatenated). The spectrogram's hop and rate
come from the model's ``frontend`` (its ``hop`` and ``sample_rate``) where it has one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adfd_core import audio
from adfd_core.augment import middle_crop
from adfd_core.errors import AdfdError
from adfd_core.modelfile import ModelFile, load_model
from adfd_core.models.fdl import CLASSIFIER_FEATURES
from adfd_core.plots import PlotError
from adfd_core.store import LABEL_INDEX, FeatureFile

FDL_API = ("spectrogram", "latent", "stream_blocks")
WAVE_FEATURE = "wave"  # the whole-utterance waveform feature of a feature file
DEFAULT_HOP = 187  # samples between spectrogram frames (the paper's log spectrogram)
MAX_PERPLEXITY = 30.0  # t-SNE perplexity for large sets; smaller sets get (N - 1) / 3
LATENT_BATCH = 32  # crops per forward pass when collecting latents
TSNE_PER_CLASS = 300  # recordings per colour in a t-SNE, as in the paper's figures
_SPOOF = LABEL_INDEX["spoof"]
BONAFIDE_MARKER = "o"  # t-SNE: bona fide points are circles ...
SPOOF_MARKERS = ("^", "s", "D", "v", "P", "X", "<", ">", "p", "*")  # ... and the synthesizers other shapes


class ExplainError(AdfdError):
    """A model, feature file or request the explain tools cannot use, in one line."""


@dataclass
class Explained:
    """What ``explain_audio`` did: the PNGs written, and (path, reason) for each file that could not be read."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def grad_cam(model: torch.nn.Module, x: torch.Tensor, layer: torch.nn.Module, target_class: int = _SPOOF) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., 2017) of ``layer`` for logit ``target_class``: (B, S) waves -> (B, F, T) maps.

    Each channel of the layer's output (B, N, h, w) is weighted by the mean gradient of the target
    logit over it; the weighted sum, through a ReLU, is upsampled bilinearly to the spectrogram's
    (F, T) and divided by its maximum (an all-zero map stays zero), so each map spans [0, 1].
    Runs the model in eval mode and leaves every submodule in the mode it was in.
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    try:
        with torch.enable_grad():
            x = x.detach().clone().requires_grad_(True)
            logits = model(x)
            if len(captured) != 1:
                raise ValueError(f"Grad-CAM needs the layer to run once per forward pass; it ran {len(captured)} times")
            activation = captured[0]
            (grads,) = torch.autograd.grad(logits[:, target_class].sum(), activation)
        with torch.no_grad():
            size = model.spectrogram(x).shape[-2:]
            weights = grads.mean(dim=(2, 3), keepdim=True)
            cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
            cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)[:, 0]
            peak = cam.amax(dim=(1, 2), keepdim=True)
            return torch.where(peak > 0, cam / peak.clamp_min(torch.finfo(cam.dtype).tiny), 0.0).detach()
    finally:
        handle.remove()
        for module, training in modes.items():
            module.training = training


def save_gradcam_png(
    spectrogram: np.ndarray,
    heatmaps: dict[str, np.ndarray],
    path: str | os.PathLike,
    title: str,
    sample_rate: int = audio.TARGET_SR,
    hop: int = DEFAULT_HOP,
    start_s: float = 0.0,
    details: dict | None = None,
) -> Path:
    """One PNG: the (F, T) log spectrogram, then each (F, T) heatmap in [0, 1] over it; axes in s and Hz, time
    counted from the start of the file (the crop begins at ``start_s``). ``details`` go into the PNG's
    Description text chunk as JSON, with ``title`` as its Title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, heatmap in heatmaps.items():
        if heatmap.shape != spectrogram.shape:
            raise ValueError(f"heatmap {name!r} has shape {heatmap.shape}, the spectrogram {spectrogram.shape}")
    extent = (start_s, start_s + spectrogram.shape[1] * hop / sample_rate, 0.0, sample_rate / 2)
    fig, axes = plt.subplots(1 + len(heatmaps), 1, figsize=(9, 2.8 * (1 + len(heatmaps))), sharex=True, squeeze=False)
    axes = axes[:, 0]
    image = axes[0].imshow(spectrogram, origin="lower", aspect="auto", extent=extent, cmap="magma")
    fig.colorbar(image, ax=axes[0], label="log magnitude")
    axes[0].set_title("log spectrogram")
    for ax, (name, heatmap) in zip(axes[1:], heatmaps.items()):
        ax.imshow(spectrogram, origin="lower", aspect="auto", extent=extent, cmap="gray")
        overlay = ax.imshow(heatmap, origin="lower", aspect="auto", extent=extent, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        fig.colorbar(overlay, ax=ax, label="Grad-CAM")
        ax.set_title(f"{name} stream")
    for ax in axes:
        ax.set_ylabel("frequency (Hz)")
    axes[-1].set_xlabel("time in the file (s)")
    fig.suptitle(title)
    return _save(fig, path, {"Title": title, "Description": json.dumps(details or {})})


def tsne_plot(latents: np.ndarray, labels: Sequence[str], path: str | os.PathLike, title: str, seed: int = 0) -> Path:
    """A PNG of the (N, D) latents embedded in 2-D by t-SNE, one colour per label (N labels); bona fide as
    circles, every other label with a marker of another shape, so bona fide stands out without colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    n = len(latents)
    if n != len(labels):
        raise ValueError(f"{n} latents but {len(labels)} labels")
    if n < 3:
        raise ExplainError(f"{path}: a t-SNE needs at least 3 items, got {n}")
    perplexity = min(MAX_PERPLEXITY, max(1.0, (n - 1) / 3))
    points = TSNE(2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed).fit_transform(
        np.asarray(latents, dtype=np.float64)
    )
    fig, ax = plt.subplots(figsize=(8, 6.5))
    names = sorted(set(labels), key=lambda name: (name != "bonafide", name))
    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    label_array = np.asarray(labels)
    spoof_markers = iter(SPOOF_MARKERS * (1 + len(names) // len(SPOOF_MARKERS)))
    for i, name in enumerate(names):
        chosen = label_array == name
        marker = BONAFIDE_MARKER if name == "bonafide" else next(spoof_markers)
        ax.scatter(points[chosen, 0], points[chosen, 1], s=16, marker=marker, color=colours(i % colours.N),
                   label=f"{name} ({chosen.sum()})")
    ax.legend(fontsize="small", markerscale=1.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set(title=title, xlabel="t-SNE 1", ylabel="t-SNE 2", xticks=[], yticks=[])
    return _save(fig, path)


def explain_audio(
    model_path: str | os.PathLike,
    audio_paths: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
) -> Explained:
    """One Grad-CAM PNG per audio file (``out_dir/<stem>.png``) for the spoof logit of its middle crop.

    Files that cannot be decoded are skipped and listed in the result's ``failed``.
    """
    model, info = _load_fdl(model_path, device)
    crop_samples = _crop_samples(info)
    out = _output_folder(out_dir)
    done = Explained()
    for path in audio_paths:
        try:
            wave = audio.load(path)
        except audio.AudioError as err:
            done.failed.append((str(path), err.reason))
            continue
        x = torch.from_numpy(np.array(middle_crop(wave, crop_samples)))[None].to(device)
        with torch.no_grad():
            spectrogram = model.spectrogram(x)[0, 0].float().cpu().numpy()
            crop_p_spoof = float(torch.softmax(model(x).float(), dim=1)[0, _SPOOF])
        heatmaps = {
            stream: grad_cam(model, x, block)[0].float().cpu().numpy() for stream, block in model.stream_blocks().items()
        }
        where = _crop_place(len(wave), crop_samples)
        details = {"p_spoof": _recording_p_spoof(model_path, model, info, path, device), "crop_p_spoof": crop_p_spoof, **where}
        target = _free_name(out, Path(path).stem, done.written)
        done.written.append(save_gradcam_png(spectrogram, heatmaps, target, _gradcam_title(Path(path).name, details),
                                             *_time_axis(model), start_s=where["crop_start_s"], details=details))
    return done


def _crop_place(n_samples: int, crop_samples: int, sample_rate: int = audio.TARGET_SR) -> dict[str, float]:
    """Where ``middle_crop`` takes its crop: start and end (s) in the file, the file's duration and the model's input (s)."""
    start = max(0, (n_samples - crop_samples) // 2)
    return {"crop_start_s": start / sample_rate, "crop_end_s": min(n_samples, start + crop_samples) / sample_rate,
            "duration_s": n_samples / sample_rate, "input_s": crop_samples / sample_rate}


def _recording_p_spoof(model_path: str | os.PathLike, model: torch.nn.Module, info: ModelFile,
                       path: str | os.PathLike, device: str | torch.device) -> float:
    """The recording's probability of spoof as `adfd score -m MODEL` gives it: the mean over its segments."""
    from adfd_core.corpus import Utterance
    from adfd_core.scoring import LoadedModel, frontend_key, score_audio

    loaded = LoadedModel(Path(model_path), model, info, frontend_key(info.frontend))
    (result,) = score_audio([Utterance(Path(path).stem, Path(path), "unknown")], [loaded], torch.device(device))
    if result.error:
        raise ExplainError(f"{path}: cannot score it ({result.error})")
    return result.p_spoof


def _gradcam_title(name: str, d: dict[str, float]) -> str:
    """Two lines: the recording's p(spoof) as `adfd score` gives it; where the explained crop sits and its own p(spoof)."""
    if d["duration_s"] > d["input_s"]:
        place = f"its middle {d['input_s']:g} s, {d['crop_start_s']:.2f}-{d['crop_end_s']:.2f} s of {d['duration_s']:.2f} s"
    elif d["duration_s"] < d["input_s"]:
        place = f"the whole {d['duration_s']:.2f} s, repeated to the model's {d['input_s']:g} s"
    else:
        place = f"the whole {d['duration_s']:.2f} s"
    return (f"{name}: p(spoof) = {d['p_spoof']:.3f} (the recording, as adfd score gives it)\n"
            f"Grad-CAM of the spoof logit on {place} (p(spoof) of the crop {d['crop_p_spoof']:.3f})")


def tsne_of_features(
    model_path: str | os.PathLike,
    feature_file: str | os.PathLike,
    out_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    stream: str = CLASSIFIER_FEATURES,
    per_class: int | None = TSNE_PER_CLASS,
    seed: int = 0,
) -> Path:
    """``out_dir/tsne-<stream>.png``: t-SNE of the model's latents of the feature file's recordings
    (middle crops of its ``wave`` feature), coloured by synthesizer (attack; "bonafide" for bona fide).

    stream: CLASSIFIER_FEATURES (F_cls, the classifier's input: the paper's figures) or one stream's
    features. per_class: at most this many recordings of each colour, drawn at random (``seed``); None: all.
    A model with an utterance ``embedding`` (WaveSpec) gets the t-SNE of that instead
    (adfd_core.explain_embedding; ``stream`` unused).
    """
    from adfd_core import explain_embedding

    if per_class is not None and per_class < 1:
        raise ValueError(f"per_class must be positive, got {per_class}")
    if explain_embedding.has_embedding(model_path):  # WaveSpec: its fused embedding, not streams
        return explain_embedding.tsne_of_embeddings(model_path, feature_file, out_dir, device, per_class, seed)
    model, info = _load_fdl(model_path, device)
    crop_samples = _crop_samples(info)
    choices = [CLASSIFIER_FEATURES, *model.stream_blocks()]
    if stream not in choices:
        raise ExplainError(f"{model_path}: the model has no {stream!r} stream; choose {', '.join(choices)}")
    with FeatureFile(feature_file) as ff:
        if not ff.feature(WAVE_FEATURE).whole_utterance:
            raise ExplainError(f"{feature_file}: feature {WAVE_FEATURE!r} holds segment rows, not waveforms")
        names = [_colour_label(label, attack) for label, attack in zip(ff.column("label"), ff.column("attack"))]
        picked = _sample_per_class(names, per_class, seed)
        crops = (middle_crop(ff.rows(WAVE_FEATURE, i), crop_samples) for i in picked)
        latents = _latents(model, crops, stream, device)
    title = f"{Path(feature_file).name}: {stream} features of {len(picked)} recordings"
    return tsne_plot(latents, [names[i] for i in picked], _output_folder(out_dir) / f"tsne-{stream}.png", title)


def _load_fdl(path: str | os.PathLike, device: str | torch.device) -> tuple[torch.nn.Module, ModelFile]:
    """The model of a model file and what the file says of it; ExplainError unless it has the FDL API."""
    model, info = load_model(path, device=device)
    missing = [name for name in FDL_API if not hasattr(model, name)]
    if missing:
        raise ExplainError(
            f"{path}: {info.name} is not a feature-decomposition model (it lacks {', '.join(missing)}); "
            "explain needs an fdl model"
        )
    return model, info


def _crop_samples(info: ModelFile) -> int:
    """The model's input length in samples."""
    return round(info.config.crop_seconds * audio.TARGET_SR)


def _time_axis(model: torch.nn.Module) -> tuple[int, int]:
    """(sample rate in Hz, hop in samples) of the model's spectrogram: its front-end's, else 16 kHz and DEFAULT_HOP."""
    frontend = getattr(model, "frontend", None)
    return int(getattr(frontend, "sample_rate", audio.TARGET_SR)), int(getattr(frontend, "hop", DEFAULT_HOP))


def _latents(model: torch.nn.Module, crops: Iterable[np.ndarray], stream: str, device: str | torch.device) -> np.ndarray:
    """(N, D) float32 latents of ``stream`` for (crop_samples,) crops, LATENT_BATCH at a time."""
    parts: list[np.ndarray] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        with torch.no_grad():
            x = torch.from_numpy(np.stack(batch)).to(device)
            parts.append(model.latent(x)[stream].float().cpu().numpy())
        batch.clear()

    for crop in crops:
        batch.append(crop)
        if len(batch) == LATENT_BATCH:
            flush()
    if batch:
        flush()
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def _sample_per_class(names: Sequence[str], per_class: int | None, seed: int) -> list[int]:
    """Indices into ``names``: up to ``per_class`` drawn at random from each name's items (all: None), in file order."""
    if per_class is None:
        return list(range(len(names)))
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(name, []).append(i)
    picked = [i for items in groups.values() for i in rng.permutation(items)[:per_class].tolist()]
    return sorted(picked)


def _colour_label(label: str, attack: str) -> str:
    """How an utterance is coloured: "bonafide", its attack (synthesizer), else its label."""
    if label == "bonafide":
        return "bonafide"
    return attack.strip() if attack.strip() not in ("", "-") else label


def _free_name(folder: Path, stem: str, taken: Sequence[Path]) -> Path:
    """``folder/<stem>.png``, or ``<stem>-2.png``, ... when an earlier file of this run took the name."""
    candidate, n = folder / f"{stem}.png", 1
    while candidate in taken:
        n += 1
        candidate = folder / f"{stem}-{n}.png"
    return candidate


def _output_folder(out_dir: str | os.PathLike) -> Path:
    """``out_dir``, made if missing; ExplainError if it cannot be."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExplainError(f"{out}: cannot make the output folder ({err.strerror or err})") from None
    return out


def _save(fig, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Write a matplotlib figure as PNG (with ``metadata`` text chunks) and close it; PlotError naming the file if
    it cannot be written."""
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=110, format="png", bbox_inches="tight", metadata=metadata)
    except OSError as err:
        raise PlotError(f"{path}: cannot write the plot ({err.strerror or err})") from None
    finally:
        plt.close(fig)
    return Path(path)
