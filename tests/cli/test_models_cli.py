"""`adfd models`: the table and the JSON list of registered models."""

from __future__ import annotations

import json

from adfd_core.models import available

from .helpers import adfd


def test_models_lists_every_registered_model():
    done = adfd("models")
    assert done.returncode == 0, done.stderr
    for name in available():
        assert name in done.stdout
    assert "2.19 M" in done.stdout and "27.8 M" in done.stdout  # cnn.v1 and convnext_tiny.v1


def test_models_json_is_one_object_per_model():
    done = adfd("models", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["name"] for r in rows] == available()
    cnn = rows[0]
    assert cnn == {
        "name": "cnn.v1",
        "parameters": 2_191_170,
        "input_kind": "segments",
        "default_feature": "cqt",
        "description": cnn["description"],
        "config": {"input_shape": [3, 64, 64], "channels": [32, 64, 128], "dropout": 0.2, "dense": 256},
    }
    assert all(isinstance(r["parameters"], int) and r["parameters"] > 1_000_000 for r in rows if r["name"] not in ("rnn.v2", "mlp.v1", "logreg.v1", "layerweight.v1", "attentive.v1"))
    mlp = next(r for r in rows if r["name"] == "mlp.v1")
    assert mlp["parameters"] == (512 + 1) * 128 + (128 + 1) * 2 and mlp["default_feature"] == "whisper"
