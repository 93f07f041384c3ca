"""`adfd explain`: Grad-CAM PNGs per audio file, a t-SNE of a feature file, and clear refusals."""

from __future__ import annotations

import pytest

import audio_factory
from .helpers import adfd, make_corpus
from model_factory import tiny_fdl, tiny_model

PNG = b"\x89PNG\r\n\x1a\n"


def test_explain_writes_one_png_per_file_and_names_the_failures(tmp_path):
    model = tiny_fdl(tmp_path / "fdl.safetensors")
    good = audio_factory.write(tmp_path / "a" / "voice.wav", audio_factory.vowel(120, seconds=1.0))
    short = audio_factory.write(tmp_path / "b" / "beep.flac", audio_factory.tone(900, seconds=0.2))
    bad = tmp_path / "broken.wav"
    bad.write_text("not audio")
    done = adfd("explain", str(model), str(good), str(bad), str(short), "-o", str(tmp_path / "out"), "--device", "cpu")
    assert done.returncode == 3, done.stderr
    written = done.stdout.split()
    assert [p.rsplit("/", 1)[-1] for p in written] == ["voice.png", "beep.png"]
    assert all(open(p, "rb").read(8) == PNG for p in written)
    assert "broken.wav" in done.stderr and "Traceback" not in done.stderr


def test_explain_plots_the_latents_of_a_feature_file(tmp_path):
    model = tiny_fdl(tmp_path / "fdl.safetensors")
    root = tmp_path / "corpus"
    for i in range(4):
        audio_factory.write(root / "bonafide" / f"r{i}.wav", audio_factory.vowel(100 + 20 * i, seconds=0.6, seed=i))
        audio_factory.write(root / "spoof" / "tts" / f"f{i}.wav", audio_factory.chirp(200, 4000 + 500 * i, seconds=0.6))
    feats = tmp_path / "w.h5"
    assert adfd("featurize", str(root), "-o", str(feats), "-f", "wave").returncode == 0
    done = adfd("explain", str(model), "--features", str(feats), "--per-class", "3", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("tsne-classifier.png") and open(done.stdout.strip(), "rb").read(8) == PNG  # F_cls


def test_explain_plots_wavespecs_fused_embeddings_of_a_feature_file(tmp_path):
    from adfd_core.modelfile import ModelFile, save_model
    from adfd_core.models import registry
    from model_factory import small_config

    config = small_config("wavespec.v1")
    model = registry.build("wavespec.v1", config)
    spec = {"name": "wave", "version": 1, "params": {"sample_rate": 16_000, "segment_seconds": config.crop_seconds}}
    path = save_model(tmp_path / "ws.safetensors", model, ModelFile("wavespec.v1", model.config, spec, training={}))
    root = tmp_path / "corpus"
    make_corpus(root, audio_factory, n_real=3, n_fake=3, seconds=0.6)
    feats = tmp_path / "w.h5"
    assert adfd("featurize", str(root), "-o", str(feats), "-f", "wave").returncode == 0
    done = adfd("explain", str(path), "--features", str(feats), "-o", str(tmp_path / "out"), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("tsne-embedding.png") and open(done.stdout.strip(), "rb").read(8) == PNG


def test_explain_refuses_what_it_cannot_explain(tmp_path):
    cnn = tiny_model(tmp_path / "cnn.safetensors")
    clip = audio_factory.write(tmp_path / "x.wav", audio_factory.tone(440, seconds=1.0))
    done = adfd("explain", str(cnn), str(clip), "-o", str(tmp_path / "out"))
    assert done.returncode == 1 and "cnn.safetensors" in done.stderr and "Traceback" not in done.stderr
    nothing = adfd("explain", str(tiny_fdl(tmp_path / "fdl.safetensors")))
    assert nothing.returncode == 2 and "--features" in nothing.stderr


def test_grad_cam_reports_the_probability_score_gives_and_where_its_crop_sits(tmp_path):
    import json

    from PIL import Image

    model = tiny_fdl(tmp_path / "fdl.safetensors")  # 0.5-s crops
    clip = audio_factory.write(tmp_path / "long.wav", audio_factory.vowel(130, seconds=2.3))
    done = adfd("explain", str(model), str(clip), "-o", str(tmp_path / "out"), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    png = Image.open(done.stdout.strip())
    details = json.loads(png.text["Description"])
    scored = adfd("score", "-m", str(model), str(clip), "--format", "jsonl", "--device", "cpu")
    assert scored.returncode == 0, scored.stderr
    assert details["p_spoof"] == pytest.approx(json.loads(scored.stdout)["p_spoof"], abs=1e-6)
    assert (details["crop_start_s"], details["crop_end_s"], details["duration_s"]) == (0.9, 1.4, 2.3)
    assert f"p(spoof) = {details['p_spoof']:.3f}" in png.text["Title"] and "0.90-1.40 s of 2.30 s" in png.text["Title"]
