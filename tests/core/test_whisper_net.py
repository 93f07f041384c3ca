"""adfd's plain-torch Whisper log-mel and encoder against transformers', and what loading a bundled model imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from adfd_core.frontends.whisper_net import Encoder, LogMel, mel_filters
from model_factory import save_whisper, whisper_backend


def test_mel_filters_and_log_mel_equal_whispers_feature_extractor(tmp_path):
    from transformers import WhisperFeatureExtractor

    for n_mels in (80, 128):
        np.testing.assert_allclose(mel_filters(n_mels), WhisperFeatureExtractor(feature_size=n_mels).mel_filters, rtol=0, atol=1e-12)
    rng = np.random.default_rng(0)
    x = np.stack([rng.standard_normal(32000) * 0.3, rng.standard_normal(32000) * 1e-3, np.zeros(32000)]).astype(np.float32)
    x[0, 20000:] = 0  # a padded tail
    want = WhisperFeatureExtractor()(list(x), sampling_rate=16000, padding="max_length", max_length=32000,
                                     return_tensors="pt")["input_features"]
    torch.testing.assert_close(LogMel(80)(torch.from_numpy(x)), want, rtol=0, atol=1e-6)


def test_encoder_states_equal_transformers_hidden_states(tmp_path):
    from transformers import WhisperModel

    folder = save_whisper(tmp_path / "whisper", seed=3)
    reference = WhisperModel.from_pretrained(folder).get_encoder().eval()
    plain = Encoder.from_transformers(reference).eval()
    mel = torch.randn(2, 80, 3000)
    with torch.no_grad():
        want = reference(mel, output_hidden_states=True).hidden_states
        got = plain.states(mel, (0, 1, 2), full_depth=2)
    for k in range(3):
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-5)
    plain.keep(blocks=1, positions=100)
    assert len(plain.layers) == 1 and plain.embed_positions.weight.shape[0] == 100
    assert plain.fields["encoder_layers"] == 1 and plain.fields["max_source_positions"] == 100


def test_loading_a_bundled_model_imports_neither_transformers_nor_dynamo(tmp_path):
    from adfd_core.bundle import bundle

    whisper = save_whisper(tmp_path / "whisper")
    backend = whisper_backend(tmp_path / "lr.safetensors", whisper, {"layers": [1, 2], "pooling": "mean+std"}, "layerweight.v1")
    probe = bundle(backend, whisper, tmp_path / "probe.safetensors")
    code = (
        "import sys, torch; from adfd_core.modelfile import load_model\n"
        f"model, _ = load_model({str(probe)!r})\n"
        "model(torch.zeros(2, 32000))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('transformers', 'torch._dynamo'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
