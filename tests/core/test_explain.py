"""Grad-CAM, its PNGs, t-SNE plots and the explain core functions (adfd_core.explain)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import audio_factory
import numpy as np
import pytest
import torch
from torch import nn

from adfd_core import explain, explain_embedding
from adfd_core.corpus import Utterance
from adfd_core.explain import ExplainError, grad_cam, save_gradcam_png, tsne_plot
from adfd_core.plots import PlotError
from adfd_core.store import FeatureWriter, StoredUtterance

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_FFT, HOP = 64, 32  # the stand-in's STFT: 33 frequency bins
CROP_SECONDS = 0.25
CROP = round(CROP_SECONDS * 16_000)  # 4000 samples -> 126 frames
FRAMES = 1 + CROP // HOP
REGION = (slice(20, 28), slice(40, 70))  # (frequency bins, frames) the stand-in's spoof logit reads
SHIFT = 20.0  # added to the log spectrogram so that every bin of a noise input is positive
WAVE_SPEC = {"name": "wave", "version": 1, "params": {"sample_rate": 16000, "segment_seconds": None}, "row_shape": []}


class RegionSplit(nn.Module):
    """(B, 1, F, T) log spectrogram -> (B, 2, F, T): its shifted values inside ``mask``, and outside it."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        shifted = spec + SHIFT
        return torch.cat([shifted * self.mask, shifted * (1 - self.mask)], dim=1)


class StandIn(nn.Module):
    """The FDL API on a 64-point STFT. Spoof logit: the synthesizer map's mean inside REGION plus the
    content map's mean; bona fide logit: the synthesizer map's mean outside REGION minus the content
    map's mean. The content map (B, 3, F / 2, T / 2) is positive only where the log magnitude is
    (loud time-frequency bins)."""

    def __init__(self):
        super().__init__()
        mask = torch.zeros(N_FFT // 2 + 1, FRAMES)
        mask[REGION] = 1
        self.synth_block = RegionSplit(mask)
        self.content_block = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))
        with torch.no_grad():
            self.content_block[0].weight.fill_(1 / 9)
            self.content_block[0].bias.zero_()
        self.register_buffer("window", torch.hann_window(N_FFT))

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        stft = torch.stft(x.reshape(len(x), -1), N_FFT, HOP, window=self.window, return_complex=True)
        return torch.log(stft.abs() + 1e-7).unsqueeze(1)

    def stream_blocks(self) -> dict[str, nn.Module]:
        return {"synthesizer": self.synth_block, "content": self.content_block}

    def latent(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        spec = self.spectrogram(x)
        feats = {name: block(spec).mean(dim=(2, 3)) for name, block in self.stream_blocks().items()}
        return {"classifier": torch.cat([feats["content"], feats["synthesizer"]], dim=1), **feats}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.spectrogram(x)
        synth, content = self.synth_block(spec), self.content_block(spec)
        spoof = synth[:, 0].mean(dim=(1, 2)) + content.mean(dim=(1, 2, 3))
        return torch.stack([spoof, synth[:, 1].mean(dim=(1, 2)) - content.mean(dim=(1, 2, 3))], dim=1)


def _tiny_fdl():
    from adfd_core.models.fdl import FDL, FDLConfig

    torch.manual_seed(0)
    return FDL(FDLConfig(width=8, crop_seconds=0.5, synthesizers=("a", "b")))


@pytest.fixture
def loaded(monkeypatch):
    """Make ``explain.load_model`` give a StandIn (``loaded.model``) and record its calls (``loaded.calls``)."""
    state = SimpleNamespace(model=StandIn(), calls=[])

    def load(path, device="cpu"):
        state.calls.append((Path(path), device))
        frontend = {**WAVE_SPEC, "params": {"sample_rate": 16000, "segment_seconds": CROP_SECONDS}}
        info = SimpleNamespace(name="standin.v1", config=SimpleNamespace(crop_seconds=CROP_SECONDS), frontend=frontend)
        return state.model.to(device).eval(), info

    monkeypatch.setattr(explain, "load_model", load)
    monkeypatch.setattr(explain_embedding, "has_embedding", lambda path: False)  # it reads the (absent) file's metadata
    return state


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 2000 and path.read_bytes()[:8] == PNG_MAGIC


def _noise(batch: int = 2) -> torch.Tensor:
    return torch.from_numpy(np.stack([audio_factory.noise(CROP / 16_000, amp=0.1, seed=s) for s in range(batch)]))


def test_grad_cam_follows_the_target_logit_to_its_region():
    model, x = StandIn(), _noise()
    spoof = grad_cam(model, x, model.synth_block, target_class=0)
    assert spoof.shape == (2, N_FFT // 2 + 1, FRAMES)
    inside = torch.zeros(spoof.shape[1:], dtype=torch.bool)
    inside[REGION] = True
    assert spoof[:, ~inside].max() == 0 and spoof[:, inside].min() > 0.5
    assert torch.allclose(spoof.amax(dim=(1, 2)), torch.ones(2))
    bonafide = grad_cam(model, x, model.synth_block, target_class=1)
    assert bonafide[:, inside].max() == 0 and bonafide[:, ~inside].mean() > 0.5


def _burst() -> tuple[torch.Tensor, slice]:
    """(1, CROP) near-silence with a 2 kHz tone burst in the middle, and the burst's samples."""
    wave = audio_factory.noise(CROP / 16_000, amp=0.001)
    burst = slice(CROP // 2 - 600, CROP // 2 + 600)
    wave[burst] += audio_factory.tone(2000.0, 1200 / 16_000)
    return torch.from_numpy(wave)[None], burst


def test_grad_cam_highlights_where_the_signal_is():
    """The content map of the spoof logit (which grows with loud bins) peaks on the burst."""
    model, (x, burst) = StandIn(), _burst()
    cam = grad_cam(model, x, model.content_block)[0]
    assert cam.shape == (N_FFT // 2 + 1, FRAMES)  # upsampled from the (16, 63) map
    freq, frame = np.unravel_index(int(cam.argmax()), cam.shape)
    assert abs(freq * 16_000 / N_FFT - 2000.0) <= 250
    assert burst.start / HOP <= frame <= burst.stop / HOP
    assert cam[:, : burst.start // HOP - 3].max() < 0.05  # nothing before the burst
    assert cam.min() >= 0 and cam.max() == 1


def test_grad_cam_of_a_class_the_layer_argues_against_is_zero():
    model = StandIn()
    x, _ = _burst()
    assert model.content_block(model.spectrogram(x)).max() > 0.5  # a loud map: the zero CAM comes from the negative weights
    cam = grad_cam(model, x, model.content_block, target_class=1)  # content lowers the bona fide logit
    assert torch.equal(cam, torch.zeros_like(cam))


def test_grad_cam_removes_its_hook_and_restores_modes_even_on_error():
    model = StandIn().train()
    model.content_block[2].eval()
    with pytest.raises(IndexError):
        grad_cam(model, _noise(1), model.content_block, target_class=5)
    assert not model.content_block._forward_hooks
    grad_cam(model, _noise(1), model.content_block)
    assert not model.content_block._forward_hooks
    assert model.training and model.content_block[0].training and not model.content_block[2].training


def test_grad_cam_on_a_real_fdl():
    model = _tiny_fdl().train()
    x = torch.from_numpy(np.stack([audio_factory.chirp(seconds=0.5), audio_factory.vowel(seconds=0.5)]))
    spec_shape = model.spectrogram(x).shape[-2:]
    for block in model.stream_blocks().values():
        cam = grad_cam(model, x, block)
        assert cam.shape == (2, *spec_shape)
        assert cam.min() >= 0 and set(cam.amax(dim=(1, 2)).tolist()) <= {0.0, 1.0}
        assert cam.amax() == 1
        assert not block._forward_hooks
    assert all(m.training for m in model.modules())


def test_save_gradcam_png(tmp_path):
    rng = np.random.default_rng(0)
    spec = rng.standard_normal((33, 50)).astype(np.float32)
    maps = {"synthesizer": rng.random((33, 50)), "content": rng.random((33, 50))}
    path = save_gradcam_png(spec, maps, tmp_path / "a.png", "title", hop=HOP)
    assert _is_png(path)
    with pytest.raises(ValueError, match="heatmap 'content'"):
        save_gradcam_png(spec, {"content": rng.random((33, 49))}, tmp_path / "b.png", "t")
    with pytest.raises(PlotError, match="missing"):
        save_gradcam_png(spec, maps, tmp_path / "missing" / "c.png", "t")


def test_tsne_plot(tmp_path):
    rng = np.random.default_rng(0)
    latents = np.concatenate([rng.normal(0, 1, (6, 8)), rng.normal(5, 1, (6, 8))])
    labels = ["bonafide"] * 6 + ["A01"] * 6
    assert _is_png(tsne_plot(latents, labels, tmp_path / "t.png", "twelve"))
    assert _is_png(tsne_plot(latents[:3], labels[:3], tmp_path / "three.png", "three"))  # perplexity fits N = 3
    with pytest.raises(ExplainError, match="at least 3"):
        tsne_plot(latents[:2], labels[:2], tmp_path / "two.png", "two")
    with pytest.raises(ValueError, match="labels"):
        tsne_plot(latents, labels[:5], tmp_path / "x.png", "x")


def test_explain_audio_writes_one_png_per_readable_file(tmp_path, loaded):
    files = [
        audio_factory.write(tmp_path / "in" / "a.wav", audio_factory.chirp(seconds=0.6)),
        audio_factory.write(tmp_path / "in" / "short.flac", audio_factory.vowel(seconds=0.1)),  # tiled to the crop
        audio_factory.write(tmp_path / "in" / "again" / "a.wav", audio_factory.noise(0.4)),
    ]
    broken = tmp_path / "in" / "broken.wav"
    broken.write_bytes(b"not audio at all")
    result = explain.explain_audio(tmp_path / "m.safetensors", [files[0], broken, *files[1:]], tmp_path / "out" / "png")
    names = [p.name for p in result.written]
    assert names == ["a.png", "short.png", "a-2.png"]
    assert all(_is_png(p) and p.parent == tmp_path / "out" / "png" for p in result.written)
    assert [path for path, _ in result.failed] == [str(broken)]
    assert "not a decodable audio file" in result.failed[0][1]
    assert loaded.calls == [(tmp_path / "m.safetensors", "cpu")]


def test_explain_with_a_real_fdl_model_file(tmp_path):
    from adfd_core import frontends
    from adfd_core.modelfile import ModelFile, save_model

    model = _tiny_fdl()
    wave_spec = frontends.build("wave").spec.to_dict()  # as training writes it: cut into crops when scored
    wave_spec["params"]["segment_seconds"] = model.config.crop_seconds
    path = save_model(tmp_path / "fdl.safetensors", model, ModelFile("fdl.v1", model.config, wave_spec, training={}))
    clip = audio_factory.write(tmp_path / "v.wav", audio_factory.vowel(seconds=1.0))
    result = explain.explain_audio(path, [clip], tmp_path / "out")
    assert [p.name for p in result.written] == ["v.png"] and _is_png(result.written[0]) and not result.failed
    features = _wave_file(tmp_path / "f.h5", [("bonafide", "-"), ("spoof", "a"), ("spoof", "b")] * 2)
    assert _is_png(explain.tsne_of_features(path, features, tmp_path / "out", stream="content"))


def test_explain_refuses_a_model_without_the_fdl_api(tmp_path):
    from model_factory import tiny_model

    path = tiny_model(tmp_path / "cnn.safetensors")
    with pytest.raises(ExplainError, match=r"cnn\.v1 is not a feature-decomposition model"):
        explain.explain_audio(path, [], tmp_path / "out")


def _wave_file(path: Path, labels: list[tuple[str, str]]) -> Path:
    """A feature file whose ``wave`` feature holds one short clip per (label, attack)."""
    writer = FeatureWriter.open(path, {"wave": WAVE_SPEC}, identity="explain-test", provenance={"test": True})
    for i, (label, attack) in enumerate(labels):
        writer.add_rows("wave", audio_factory.vowel(100.0 + 20 * i, seconds=0.3, seed=i))
        utt = Utterance(id=f"u{i}", path=Path(f"/x/u{i}.wav"), label=label, attack=attack)
        writer.end_utterance(StoredUtterance(utt, content_hash=f"{i:064x}", duration_s=0.3))
    return writer.finish()


def test_tsne_of_features_colours_by_synthesizer(tmp_path, loaded, monkeypatch):
    kinds = [("bonafide", "-"), ("spoof", "A01"), ("spoof", "A02"), ("spoof", "-"), ("unknown", "-")] * 8
    features = _wave_file(tmp_path / "f.h5", kinds)
    seen = {}

    def record(latents, labels, path, title, seed=0):
        seen.update(latents=latents, labels=labels)
        return tsne_plot(latents, labels, path, title, seed)

    monkeypatch.setattr(explain, "tsne_plot", record)
    monkeypatch.setattr(explain, "LATENT_BATCH", 16)  # three batches, the last one short
    out = explain.tsne_of_features(tmp_path / "m.safetensors", features, tmp_path / "plots", stream="content")
    assert out == tmp_path / "plots" / "tsne-content.png" and _is_png(out)
    assert seen["latents"].shape == (40, 3)
    assert seen["labels"] == ["bonafide", "A01", "A02", "spoof", "unknown"] * 8
    second = explain.middle_crop(audio_factory.vowel(120.0, seconds=0.3, seed=1), CROP)  # utterance 1's crop
    expected = loaded.model.latent(torch.from_numpy(np.array(second))[None])["content"][0].detach().numpy()
    assert np.allclose(seen["latents"][1], expected, atol=1e-5)

    default = explain.tsne_of_features(tmp_path / "m.safetensors", features, tmp_path / "plots")
    assert default.name == "tsne-classifier.png" and seen["latents"].shape == (40, 5)  # F_cls: content (3) + synthesizer (2)
    np.testing.assert_allclose(seen["latents"][1, :3], expected, atol=1e-5)

    explain.tsne_of_features(tmp_path / "m.safetensors", features, tmp_path / "plots", per_class=3, seed=1)
    first = list(seen["labels"])
    assert sorted(first) == sorted(["bonafide", "A01", "A02", "spoof", "unknown"] * 3)  # three of each colour
    explain.tsne_of_features(tmp_path / "m.safetensors", features, tmp_path / "plots", per_class=3, seed=2)
    assert sorted(seen["labels"]) == sorted(first) and seen["latents"].shape == (15, 5)


def test_tsne_samples_are_random_per_class_and_in_file_order():
    names = ["bonafide"] * 10 + ["A01"] * 2 + ["A02"] * 6
    picked = explain._sample_per_class(names, 4, seed=0)
    assert picked == sorted(picked) and len(picked) == 4 + 2 + 4
    assert [names[i] for i in picked].count("A01") == 2  # a smaller class is taken whole
    assert {tuple(explain._sample_per_class(names, 4, seed=s)) for s in range(6)} != {tuple(picked)}  # random, by seed
    assert explain._sample_per_class(names, 4, seed=0) == picked
    assert explain._sample_per_class(names, None, seed=0) == list(range(18))


def test_tsne_of_features_refuses_unknown_stream_and_missing_waves(tmp_path, loaded):
    features = _wave_file(tmp_path / "f.h5", [("bonafide", "-"), ("spoof", "A01"), ("spoof", "A02")])
    with pytest.raises(ExplainError, match="no 'style' stream; choose classifier, synthesizer, content"):
        explain.tsne_of_features(tmp_path / "m.safetensors", features, tmp_path, stream="style")
    from feature_factory import random_features

    from adfd_core.store import StoreError

    segments = random_features(tmp_path / "seg.h5", 4, seed=0)
    with pytest.raises(StoreError, match="has no feature 'wave'"):
        explain.tsne_of_features(tmp_path / "m.safetensors", segments, tmp_path)


def test_tsne_draws_bona_fide_in_a_shape_of_its_own(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(explain, "_save", lambda fig, path, metadata=None: figures.append(fig) or Path(path))
    rng = np.random.default_rng(0)
    labels = ["bonafide"] * 6 + ["A07"] * 6 + ["A08"] * 6
    tsne_plot(rng.normal(size=(18, 8)), labels, tmp_path / "t.png", "t")
    (ax,) = figures[0].axes
    shapes = {}
    for collection, text in zip(ax.collections, ax.get_legend().get_texts()):
        (path,) = collection.get_paths()
        shapes[text.get_text().split()[0]] = (len(path.vertices), path.vertices.round(3).tobytes())
    assert set(shapes) == {"bonafide", "A07", "A08"}
    assert shapes["bonafide"] != shapes["A07"] and shapes["bonafide"] != shapes["A08"]  # not just another colour


def test_tsne_of_a_wavespec_model_shows_its_fused_embedding_coloured_by_attack(tmp_path, monkeypatch):
    from model_factory import small_config

    from adfd_core.modelfile import ModelFile, save_model
    from adfd_core.models import registry

    config = small_config("wavespec.v1")  # 1-s crops, embedding_dim 2
    torch.manual_seed(0)
    model = registry.build("wavespec.v1", config).eval()
    spec = {"name": "wave", "version": 1, "params": {"sample_rate": 16_000, "segment_seconds": config.crop_seconds}}
    path = save_model(tmp_path / "ws.safetensors", model, ModelFile("wavespec.v1", model.config, spec, training={}))
    kinds = [("bonafide", "-"), ("spoof", "A01"), ("spoof", "A02")] * 2
    features = _wave_file(tmp_path / "f.h5", kinds)
    seen = {}

    def record(latents, labels, out, title, seed=0):
        seen.update(latents=latents, labels=labels, title=title)
        return tsne_plot(latents, labels, out, title, seed)

    monkeypatch.setattr(explain, "tsne_plot", record)
    out = explain.tsne_of_features(path, features, tmp_path / "plots")
    assert out == tmp_path / "plots" / "tsne-embedding.png" and _is_png(out)
    assert seen["labels"] == ["bonafide", "A01", "A02"] * 2 and "wavespec.v1 embeddings of 6" in seen["title"]
    crop = explain.middle_crop(audio_factory.vowel(120.0, seconds=0.3, seed=1), 16_000)  # utterance 1, tiled to 1 s
    with torch.no_grad():
        expected = model.embedding(torch.from_numpy(np.array(crop))[None])[0].numpy()
    assert seen["latents"].shape == (6, 2) and np.allclose(seen["latents"][1], expected, atol=1e-5)
