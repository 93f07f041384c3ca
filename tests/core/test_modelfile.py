"""The model file: exact round trips for every model, atomic writes, and a clear refusal of every bad file."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from adfd_core import __version__
from adfd_core.modelfile import ModelFile, ModelFileError, load_model, read_model_info, save_model
from adfd_core.models import available, build, make_config
from model_factory import example_input, small_config

FRONTEND = {"name": "cqt", "version": 1, "params": {"sample_rate": 16000, "segment_seconds": 2.0}, "row_shape": [3, 64, 64]}


def _info(name: str = "cnn.v1", **config) -> ModelFile:
    return ModelFile(
        name,
        make_config(name, **config),
        FRONTEND,
        training={"epochs": 3, "val_eer": 0.125, "seed": 7},
        calibration={"method": "logreg", "a": 1.5, "b": -0.25},
        extra={"labels": {"spoof": 0, "bonafide": 1}},
    )


def _trained(info: ModelFile) -> torch.nn.Module:
    """A model whose input statistics and BatchNorm statistics are no longer their initial values, as after training."""
    torch.manual_seed(0)
    model = build(info.name, info.config)
    if hasattr(model, "set_input_statistics"):
        shape = model.mean.shape
        model.set_input_statistics(torch.randn(shape), torch.rand(shape) + 0.5)
    with torch.no_grad():
        model.train()(example_input(info.config, 4) * 3 + 1)
    return model.eval()


def _rewrite(src, dst, tensors=None, **metadata):
    """Copy a model file with some tensors and metadata values changed (a value of None drops the key)."""
    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
    meta = {k: v for k, v in {**meta, **metadata}.items() if v is not None}
    save_file(tensors if tensors is not None else load_file(str(src)), str(dst), metadata=meta)
    return dst


@pytest.mark.parametrize("name", available())
def test_every_model_round_trips_exactly(name, tmp_path):
    info = dataclasses.replace(_info(name), config=small_config(name))  # fast
    model = _trained(info)
    path = save_model(tmp_path / "m.safetensors", model, info)
    loaded, got = load_model(path)
    assert got == info and type(loaded) is type(model) and not loaded.training
    assert loaded.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    x = example_input(info.config)
    with torch.no_grad():
        # The weights are equal bit for bit (above); the outputs may differ by float rounding where BLAS picks
        # another kernel for tensors read at another memory alignment (3e-8 seen for fdl.v1's classifier).
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-6, atol=1e-6)


def test_the_metadata_is_what_the_format_says(tmp_path):
    path = save_model(tmp_path / "m.safetensors", _trained(_info("resnet18.v1")), _info("resnet18.v1"))
    with safe_open(str(path), framework="pt") as f:
        meta, keys = f.metadata(), set(f.keys())
    assert meta["format"] == "adfd-model" and meta["format_version"] == "1" and meta["model"] == "resnet18.v1"
    assert json.loads(meta["config"]) == {"input_shape": [3, 64, 64], "input_size": 224, "pretrained": None}
    assert json.loads(meta["frontend"]) == FRONTEND and json.loads(meta["calibration"])["method"] == "logreg"
    assert meta["adfd_version"] == __version__ and meta["created_at"][:2] == "20"
    assert {"mean", "std", "net.backbone.bn1.running_mean", "net.backbone.bn1.num_batches_tracked"} <= keys


def test_calibration_none_and_extra_default(tmp_path):
    info = ModelFile("rnn.v2", make_config("rnn.v2"), FRONTEND, {"epochs": 1})
    path = save_model(tmp_path / "m.safetensors", build("rnn.v2", info.config), info)
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["calibration"] == "null"
    got = read_model_info(path)
    assert got.calibration is None and got.extra == {} and got == info


def test_the_stored_pretrained_source_is_not_needed_to_load(tmp_path):
    torch.save(build("resnet18.v1", make_config("resnet18.v1")).net.backbone.state_dict(), tmp_path / "w.pth")
    info = _info("resnet18.v1", pretrained=str(tmp_path / "w.pth"))
    path = save_model(tmp_path / "m.safetensors", _trained(info), info)
    (tmp_path / "w.pth").unlink()
    model, got = load_model(path)
    assert got.config.pretrained == str(tmp_path / "w.pth")  # kept as a record of how training started


def test_tied_and_non_contiguous_tensors_are_saved(tmp_path):
    info = _info("resnet18.v1")
    model = _trained(info)
    block = model.net.backbone.layer1[0]
    block.conv2.weight = block.conv1.weight  # shared storage, which safetensors refuses as is
    model.net.backbone.fc.weight = torch.nn.Parameter(torch.randn(model.net.backbone.fc.in_features, 2).t())
    path = save_model(tmp_path / "m.safetensors", model, info)
    loaded, _ = load_model(path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    assert torch.equal(loaded.net.backbone.layer1[0].conv2.weight, block.conv1.weight)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():  # a contiguous copy of a transposed weight may take another matmul path: not bit-equal
        torch.testing.assert_close(loaded(x), model(x))


def test_saving_is_atomic_and_refuses_what_could_not_be_loaded(tmp_path):
    path = save_model(tmp_path / "sub" / "m.safetensors", _trained(_info()), _info())
    before = path.read_bytes()
    bad = ModelFile("cnn.v1", make_config("cnn.v1"), FRONTEND, {"when": object()})
    with pytest.raises(ModelFileError, match=r"m\.safetensors: cannot save: metadata is not JSON-serializable"):
        save_model(path, _trained(_info()), bad)
    with pytest.raises(ModelFileError, match=r"does not fit cnn\.v1 with this config: wrong shape: mean \(3x32x32, expected 3x64x64\), std .*, net\.head\.0\.weight \(256x2048, expected 256x8192\)$"):
        save_model(path, build("cnn.v1", make_config("cnn.v1", input_shape=(3, 32, 32))), _info())
    with pytest.raises(ModelFileError, match=r"cannot save: cnn\.v1 takes a CNNConfig, got RNNConfig"):
        save_model(path, build("cnn.v1", make_config("cnn.v1")), ModelFile("cnn.v1", make_config("rnn.v2"), FRONTEND, {}))
    assert path.read_bytes() == before and os.listdir(path.parent) == ["m.safetensors"]


def test_a_saved_model_file_has_the_permissions_the_umask_gives(tmp_path):
    old = os.umask(0o027)
    try:
        path = save_model(tmp_path / "m.safetensors", _trained(_info()), _info())
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640  # readable by the group a lab shares models with, not owner-only


@pytest.fixture
def good(tmp_path):
    return save_model(tmp_path / "good.safetensors", _trained(_info()), _info())


def _refused(path, message):
    with pytest.raises(ModelFileError, match=message) as err:
        load_model(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_absent_and_foreign_files_are_refused(tmp_path):
    _refused(tmp_path / "absent.safetensors", r"model file not found")
    (tmp_path / "noise.safetensors").write_bytes(os.urandom(4096))
    _refused(tmp_path / "noise.safetensors", r"not a safetensors model file \(.*header")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    _refused(tmp_path / "empty.safetensors", r"not a safetensors model file")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    _refused(tmp_path / "plain.safetensors", r"not an adfd model file \(no adfd metadata\)")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"format": "pt"})
    _refused(tmp_path / "other.safetensors", r"not an adfd model file \(format 'pt'\)")


def test_a_truncated_file_is_refused(good, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-100])
    _refused(cut, r"not a safetensors model file")


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"format_version": "2"}, r"model file format version '2' is not known to this adfd \(it reads version 1\)"),
        ({"frontend": None}, r"model file metadata lacks frontend"),
        ({"created_at": None, "extra": None}, r"model file metadata lacks extra, created_at"),
        ({"model": "cnn.v7"}, r"unknown model 'cnn\.v7'; valid names: cnn\.v1"),
        ({"config": "{not json"}, r"metadata 'config' is not valid JSON"),
        ({"training": "[1, 2]"}, r"metadata 'training' must be a JSON object, got list"),
        ({"extra": '{"a": ' + "[" * 100_000}, r"metadata 'extra' is not valid JSON \(nested deeper than 64 levels: line 1 column 70 "),
        ({"config": json.dumps({"input_shape": [3, 64, 64], "channels": [32, 64, 128], "dropout": 0.2})}, r"cnn\.v1: config lacks key\(s\): dense"),
        ({"config": json.dumps({"input_shape": [3, 64, 64], "channels": [32], "dropout": 0.2, "dense": 9, "x": 1})}, r"unknown config key 'x'"),
        ({"config": json.dumps({"input_shape": [3, 64, 64], "channels": [32], "dropout": 2.0, "dense": 9})}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_metadata_is_refused(good, tmp_path, metadata, message):
    path = _rewrite(good, tmp_path / "bad.safetensors", **metadata)
    _refused(path, message)
    with pytest.raises(ModelFileError, match=message):
        read_model_info(path)


def test_tensors_that_do_not_fit_the_config_are_refused_by_load_but_not_by_read_info(good, tmp_path):
    tensors = load_file(str(good))
    wrong = dict(tensors, **{"net.head.0.weight": torch.zeros(256, 100)})
    path = _rewrite(good, tmp_path / "shape.safetensors", wrong)
    assert read_model_info(path) == read_model_info(good)
    _refused(path, r"tensors do not fit cnn\.v1 with the stored config: wrong shape: net\.head\.0\.weight \(256x100, expected 256x8192\)")
    missing = {k: v for k, v in tensors.items() if k != "std" and not k.startswith("net.features.0.")}
    _refused(_rewrite(good, tmp_path / "missing.safetensors", missing), r"missing: std, net\.features\.0\.weight, net\.features\.0\.bias$")
    extra = dict(tensors, **{f"spare.{i}": torch.zeros(1) for i in range(5)})
    _refused(_rewrite(good, tmp_path / "extra.safetensors", extra), r"unexpected: spare\.0, spare\.1, spare\.2 and 2 more$")


def test_config_sizes_are_checked_against_the_file_before_anything_is_allocated(good, tmp_path):
    config = json.loads(read_model_info_meta(good)["config"])
    huge = _rewrite(good, tmp_path / "huge.safetensors", config=json.dumps({**config, "dense": 2**40}))
    _refused(huge, r"tensors do not fit cnn\.v1 with the stored config: wrong shape: net\.head\.0\.weight \(256x8192, expected 1099511627776x8192\)")
    wide = _rewrite(good, tmp_path / "wide.safetensors", config=json.dumps({**config, "input_shape": [3, 2**20, 2**20]}))
    _refused(wide, r"wrong shape: mean \(3x64x64, expected 3x1048576x1048576\), std")


def test_regnet_built_on_the_cpu_checks_its_input_shape_first(tmp_path):
    info = dataclasses.replace(_info("regnet.v1"), config=small_config("regnet.v1"))
    path = save_model(tmp_path / "r.safetensors", build("regnet.v1", info.config), info)
    config = json.loads(read_model_info_meta(path)["config"])
    wide = _rewrite(path, tmp_path / "wide.safetensors", config=json.dumps({**config, "input_shape": [3, 2**20, 2**20]}))
    _refused(wide, r"wrong shape: mean \(3x64x64, expected 3x1048576x1048576\), std")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.int64])
def test_tensors_of_another_dtype_are_refused(good, tmp_path, dtype):
    tensors = load_file(str(good))
    tensors["net.head.0.weight"] = tensors["net.head.0.weight"].to(dtype)
    name = str(dtype).removeprefix("torch.")
    _refused(_rewrite(good, tmp_path / "typed.safetensors", tensors), rf"wrong dtype: net\.head\.0\.weight \({name}, expected float32\)$")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("net.head.0.weight", float("nan"), r"NaN or infinite values in net\.head\.0\.weight; the model cannot score"),
        ("mean", float("inf"), r"NaN or infinite values in mean"),
        ("std", 0.0, r"input standardization std has values <= 0 \(smallest 0\); it must be positive"),
        ("std", -1.0, r"std has values <= 0 \(smallest -1\)"),
    ],
)
def test_weights_that_cannot_give_a_finite_score_are_refused(good, tmp_path, key, value, message):
    tensors = load_file(str(good))
    tensors[key].view(-1)[5] = value
    _refused(_rewrite(good, tmp_path / "bad.safetensors", tensors), message)


def test_a_constant_computed_with_torch_in_the_constructor_is_real_after_loading(tmp_path, monkeypatch):
    from adfd_core.models import registry

    class Table(torch.nn.Module):  # a non-persistent buffer that torch computes: a placeholder on the meta device
        def __init__(self, config):
            super().__init__()
            self.register_buffer("table", torch.arange(4.0).expand(2, 4) + 1, persistent=False)
            self.w = torch.nn.Parameter(torch.ones(2, 4))

        def forward(self, x):
            return x * self.table * self.w

    entries = {"table.v1": dataclasses.replace(registry.entry("mlp.v1"), name="table.v1", make=Table, input_kind="wave")}
    monkeypatch.setattr(registry, "_registry", lambda: entries)
    config = make_config("table.v1")
    path = save_model(tmp_path / "t.safetensors", Table(config), ModelFile("table.v1", config, FRONTEND, {}))
    model, _ = load_model(path)
    assert torch.equal(model(torch.ones(2, 4)), torch.tensor([[1.0, 2, 3, 4]] * 2))


def read_model_info_meta(path):
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()
