"""The pre-trained embedding front-ends and the embedding MLP, on tiny random networks saved to temp folders.

Each network is saved in its library's own format (transformers' save_pretrained, a SpeechBrain
hyperparams.yaml with its checkpoint, a pyannote Lightning-style checkpoint) and loaded through
adfd's real loading code; nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from adfd_core import audio
from adfd_core.frontends import (
    FrontendError,
    build,
    describe_all,
    from_spec,
    pretrained,
)
from adfd_core.models.config import ModelError, make
from adfd_core.models.embeddings import MLP, MLPConfig
from adfd_core.scoretable import read_scores
from model_factory import save_whisper

SR = 16_000
SEGMENT = 32_000  # 2 s


# --------------------------------------------------------------------------- tiny networks in their own formats


def save_seamless(folder):
    from transformers import (
        SeamlessM4TConfig,
        SeamlessM4TFeatureExtractor,
        SeamlessM4TModel,
    )

    torch.manual_seed(0)
    small = dict(encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                 encoder_ffn_dim=16, decoder_ffn_dim=16, t2u_encoder_layers=1, t2u_decoder_layers=1,
                 t2u_encoder_attention_heads=2, t2u_decoder_attention_heads=2, t2u_encoder_ffn_dim=16,
                 t2u_decoder_ffn_dim=16, upsample_initial_channel=8, upsample_rates=[2, 2], upsample_kernel_sizes=[4, 4],
                 resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], unit_hifi_gan_vocab_size=16, unit_embed_dim=8,
                 lang_embed_dim=4, spkr_embed_dim=4, vocoder_num_langs=2, vocoder_num_spkrs=2)
    tokens = dict(vocab_size=64, t2u_vocab_size=32, pad_token_id=0, bos_token_id=2, eos_token_id=3, t2u_pad_token_id=0,
                  t2u_bos_token_id=1, t2u_eos_token_id=2, t2u_decoder_start_token_id=2, max_position_embeddings=64,
                  t2u_max_position_embeddings=64)
    config = SeamlessM4TConfig(hidden_size=16, speech_encoder_layers=1, speech_encoder_attention_heads=2,
                               speech_encoder_intermediate_size=32, num_adapter_layers=1, **small, **tokens)
    SeamlessM4TModel(config).save_pretrained(folder)
    SeamlessM4TFeatureExtractor().save_pretrained(folder)
    return folder


ECAPA_ARGS = dict(input_size=80, channels=[16, 16, 16, 16, 48], attention_channels=8, se_channels=8, lin_neurons=12)
# Laid out like speechbrain/spkrec-ecapa-voxceleb's hyperparams.yaml, with its references and its
# entries adfd does not read (which name classes adfd must not instantiate).
ECAPA_YAML = """\
pretrained_path: adfd-test/tiny-ecapa
n_mels: 80
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [16, 16, 16, 16, 48]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 8
    se_channels: 8
    lin_neurons: 12
mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False
label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder
modules:
    compute_features: !ref <compute_features>
    embedding_model: !ref <embedding_model>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
"""


def save_ecapa(folder):
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hyperparams.yaml").write_text(ECAPA_YAML)
    torch.save(ECAPA_TDNN(**ECAPA_ARGS).state_dict(), folder / "embedding_model.ckpt")
    return folder


def seeded_xvector():
    """The tiny pyannote x-vector (dimension 10) that save_xvector saves: the same weights every call."""
    from pyannote.audio.models.embedding.xvector import XVectorSincNet

    torch.manual_seed(0)
    return XVectorSincNet(dimension=10)


def save_xvector(folder):
    """A checkpoint laid out as pyannote.audio's Lightning checkpoints are, objects beside the weights included."""
    from lightning.pytorch.callbacks import EarlyStopping
    from pyannote.audio.core.task import Problem, Resolution, Specifications

    net = seeded_xvector()
    state = {**net.state_dict(), "loss_func.W": torch.zeros(10, 3)}  # the training task's layer: not the embedding's
    specs = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=2.0, classes=["a", "b"])
    checkpoint = {
        "state_dict": state,
        "hyper_parameters": dict(net.hparams),
        "callbacks": {EarlyStopping: {"wait_count": 0, "best_score": torch.tensor(0.5)}},
        "pyannote.audio": {
            "versions": {"torch": torch.__version__, "pyannote.audio": "2.1.1"},
            "architecture": {"module": "pyannote.audio.models.embedding.xvector", "class": "XVectorSincNet"},
            "specifications": specs,
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, folder / "pytorch_model.bin")
    return folder


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    """name -> (folder, embedding size) for each library installed here."""
    root = tmp_path_factory.mktemp("networks")
    made = {"whisper": (save_whisper(root / "whisper"), 24), "seamless": (save_seamless(root / "seamless"), 16)}
    if _installed("speechbrain"):
        made["speechbrain"] = (save_ecapa(root / "ecapa"), 12)
    if _installed("pyannote.audio"):
        made["pyannote"] = (save_xvector(root / "xvector"), 10)
    return made


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module.split(".")[0]) is not None and importlib.util.find_spec(module) is not None


def _network(networks, name):
    if name not in networks:
        pytest.skip(f"{name}'s library is not installed (pip install 'adfd[{name}]')")
    return networks[name]


def segments(make_audio, n: int = 3) -> torch.Tensor:
    """n different 2-s signals, (n, 32000): a vowel, a chirp, noise."""
    signals = [make_audio.vowel(seconds=2.0), make_audio.chirp(seconds=2.0), make_audio.noise(2.0, amp=0.2)]
    return torch.from_numpy(np.stack(signals[:n]))


# --------------------------------------------------------------------------- the front-ends


@pytest.mark.parametrize("name", ["whisper", "seamless", "speechbrain", "pyannote"])
def test_saved_network_embeds_each_segment_alone(networks, make_audio, name):
    folder, dim = _network(networks, name)
    fe = build(name, model=str(folder))
    assert fe.output_shape() == (dim,)
    x = segments(make_audio)
    y = fe(x)
    assert y.shape == (3, dim) and y.dtype == torch.float32 and torch.isfinite(y).all()
    one_by_one = torch.cat([fe(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(y, one_by_one, atol=1e-5, rtol=1e-4)
    assert (y[0] - y[1]).abs().max() > 1e-3 and (y[1] - y[2]).abs().max() > 1e-3
    assert not any(p.requires_grad for p in fe.parameters())


def test_whisper_matches_transformers_on_its_30_s_window(networks, make_audio):
    from transformers import WhisperFeatureExtractor, WhisperModel

    folder, _ = networks["whisper"]
    x = segments(make_audio)
    encoder = WhisperModel.from_pretrained(folder).get_encoder().eval()
    mel = WhisperFeatureExtractor.from_pretrained(folder)(x.numpy(), sampling_rate=SR, return_tensors="pt").input_features
    with torch.no_grad():
        reference = encoder(mel).last_hidden_state[:, : SEGMENT // 320].mean(1)  # the positions that cover 2 s
    padded = build("whisper", model=str(folder), pad_to_30s=True)(x)
    torch.testing.assert_close(padded, reference, atol=1e-5, rtol=1e-4)
    short = build("whisper", model=str(folder))(x)
    assert not torch.allclose(short, padded, atol=1e-4)  # attention over 2 s, not over 28 s of padding


def test_whisper_window_depends_only_on_the_segment_length(networks, make_audio):
    folder, _ = networks["whisper"]
    x = segments(make_audio)
    two = build("whisper", model=str(folder))(x)
    three = build("whisper", model=str(folder), segment_seconds=3.0)(torch.cat([x, torch.zeros(3, SR)], dim=1))
    assert three.shape == two.shape and not torch.allclose(two, three, atol=1e-4)
    with pytest.raises(FrontendError, match="at most 30"):
        build("whisper", segment_seconds=31.0)


@pytest.mark.parametrize("pooling", ["mean", "mean+std"])
@pytest.mark.parametrize("layers", [[0], [1], [2], [0, 2], [0, 1, 2]])
def test_whisper_layers_are_the_hidden_states_transformers_numbers(networks, make_audio, layers, pooling):
    from transformers import WhisperFeatureExtractor, WhisperModel

    folder, dim = networks["whisper"]
    x = segments(make_audio)
    encoder = WhisperModel.from_pretrained(folder).get_encoder().eval()
    mel = WhisperFeatureExtractor.from_pretrained(folder)(x.numpy(), sampling_rate=SR, return_tensors="pt").input_features
    with torch.no_grad():
        states = encoder(mel, output_hidden_states=True).hidden_states  # 0: input of block 1; 2: last, after the LayerNorm
    real = [states[k][:, : SEGMENT // 320] for k in layers]
    pooled = [h.mean(1) if pooling == "mean" else torch.cat([h.mean(1), h.std(1, unbiased=False)], 1) for h in real]
    reference = pooled[0] if len(layers) == 1 else torch.stack(pooled, 1)
    fe = build("whisper", model=str(folder), pad_to_30s=True, layers=layers, pooling=pooling)
    width = dim * (2 if pooling == "mean+std" else 1)
    assert fe.output_shape() == ((width,) if len(layers) == 1 else (len(layers), width))
    got = fe(x)
    assert got.shape == (3, *fe.output_shape())
    torch.testing.assert_close(got, reference, atol=1e-5, rtol=1e-4)
    assert len(fe.loaded().encoder.layers) == max(layers)  # blocks above the deepest layer are not kept


@pytest.mark.parametrize("layers", [None, [1], [0, 2]])
def test_whisper_frames_are_the_hidden_states_that_mean_pooling_averages(networks, make_audio, layers):
    folder, dim = networks["whisper"]
    x = segments(make_audio)
    frames = build("whisper", model=str(folder), layers=layers, pooling="frames")
    rows = frames(x)
    stack = layers is not None and len(layers) > 1
    assert frames.output_shape() == rows.shape[1:] == ((2, SEGMENT // 320, dim) if stack else (SEGMENT // 320, dim))
    for pooling in ("mean", "mean+std"):
        pooled = build("whisper", model=str(folder), layers=layers, pooling=pooling)(x)
        std, mean = torch.std_mean(rows, dim=-2, correction=0)
        torch.testing.assert_close(pooled, mean if pooling == "mean" else torch.cat([mean, std], dim=-1), atol=1e-5, rtol=1e-4)
    one_second = build("whisper", model=str(folder), layers=layers, pooling="frames", segment_seconds=1.01)
    assert one_second.output_shape()[-2:] == (51, dim)  # ceil(16160 / 320): every position that covers the audio
    assert one_second(x[:, :16_160]).shape[1:] == one_second.output_shape()


def test_whisper_default_layer_is_the_last_and_old_specs_mean_it(networks, make_audio):
    folder, _ = networks["whisper"]
    x = segments(make_audio)
    default = build("whisper", model=str(folder))
    rows = default(x)
    assert torch.equal(build("whisper", model=str(folder), layers=[2])(x), rows)
    old = default.spec.to_dict()
    del old["params"]["layers"]  # a feature or model file written before the parameter existed
    assert torch.equal(from_spec(old)(x), rows)


def test_seamless_matches_transformers_speech_encoder(networks, make_audio):
    from transformers import SeamlessM4TFeatureExtractor, SeamlessM4TModel

    folder, _ = networks["seamless"]
    x = segments(make_audio)
    encoder = SeamlessM4TModel.from_pretrained(folder).speech_encoder.eval()
    feats = SeamlessM4TFeatureExtractor.from_pretrained(folder)(list(x.numpy()), sampling_rate=SR, return_tensors="pt")
    with torch.no_grad():
        reference = encoder(feats.input_features, attention_mask=feats.attention_mask).last_hidden_state.mean(1)
    torch.testing.assert_close(build("seamless", model=str(folder))(x), reference, atol=1e-5, rtol=1e-4)


def test_speechbrain_follows_its_hyperparams(networks, make_audio):
    from speechbrain.lobes.features import Fbank
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

    folder, _ = _network(networks, "speechbrain")
    x = segments(make_audio)
    ecapa = ECAPA_TDNN(**ECAPA_ARGS).eval()
    ecapa.load_state_dict(torch.load(folder / "embedding_model.ckpt", weights_only=True))
    with torch.no_grad():
        feats = Fbank(n_mels=80)(x)
        reference = ecapa(feats - feats.mean(dim=1, keepdim=True)).squeeze(1)
    torch.testing.assert_close(build("speechbrain", model=str(folder))(x), reference, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "entry, message",
    [
        ("embedding_model: !new:os.system\n    command: touch {marker}\n", "must be !new:speechbrain.lobes.models"),
        (
            "embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN\n    input_size: !apply:os.system [touch {marker}]\n",
            "must be a plain value",
        ),
    ],
)
def test_speechbrain_hyperparams_are_read_as_data_never_run(networks, tmp_path, entry, message):
    folder, _ = _network(networks, "speechbrain")
    marker = tmp_path / "ran"
    bad = shutil.copytree(folder, tmp_path / "bad")
    head = ECAPA_YAML.split("embedding_model:")[0]
    (bad / "hyperparams.yaml").write_text(head + entry.format(marker=marker))
    with pytest.raises(FrontendError, match=message):
        build("speechbrain", model=str(bad))(torch.zeros(1, SEGMENT))
    assert not marker.exists()


def test_pyannote_checkpoint_loads_weights_only(networks, make_audio):
    folder, _ = _network(networks, "pyannote")
    x = segments(make_audio)
    net = seeded_xvector().eval()  # the weights the checkpoint holds
    with torch.no_grad():
        reference = net(x.unsqueeze(1))
    torch.testing.assert_close(build("pyannote", model=str(folder))(x), reference, atol=1e-5, rtol=1e-4)


class RunsCode:
    """Pickles as a call to a function with a side effect (copying a file): what a hostile checkpoint does."""

    def __init__(self, source, marker):
        self.source, self.marker = source, marker

    def __reduce__(self):
        return (shutil.copyfile, (str(self.source), str(self.marker)))


class FilledDict(dict):
    """A dict subclass: its items can only be restored by running its class's code."""


def test_checkpoints_are_read_without_running_their_code(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "task": RunsCode(path, marker)}, path)
    loaded = pretrained.read_checkpoint("test", path)
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(2))
    assert isinstance(loaded["task"], pretrained.Opaque) and not marker.exists()

    torch.save({"hparams": FilledDict(a=1)}, path)
    with pytest.raises(FrontendError, match=r"weights_only=True\) \(Can only SETITEM"):
        pretrained.read_checkpoint("test", path)


@pytest.mark.parametrize("name", ["whisper", "seamless", "speechbrain", "pyannote"])
def test_absent_network_says_how_to_get_it(name, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    fe = build(name, model="adfd-test/absent")  # constructing needs no files
    with pytest.raises(FrontendError, match=r"hf download adfd-test/absent.*--embedding " + name):
        fe(torch.zeros(1, SEGMENT))
    with pytest.raises(FrontendError, match="hf download adfd-test/absent"):
        fe.output_shape()
    with pytest.raises(FrontendError, match="no such folder"):
        build(name, model=str(tmp_path / "nowhere"))(torch.zeros(1, SEGMENT))


def test_info_lists_the_embeddings_without_their_networks(monkeypatch):
    monkeypatch.setattr(pretrained, "locate", lambda frontend, model: None)
    rows = {row["name"]: row for row in describe_all()}
    assert {n: rows[n]["row_shape"] for n in ("whisper", "seamless", "speechbrain", "pyannote")} == {
        "whisper": [512], "seamless": [1024], "speechbrain": [192], "pyannote": [512]
    }
    assert rows["whisper"]["params"]["model"] == "openai/whisper-base" and rows["whisper"]["params"]["weights_sha256"] == ""


def test_bad_parameters_are_refused():
    for params, message in [
        ({"sample_rate": 8000}, "sample_rate must be 16000"),
        ({"pooling": "max"}, "pooling must be one of mean"),
        ({"weights_sha256": "abc"}, "64 hex digits"),
        ({"model": ""}, "model must be"),
        ({"pad_to_30s": "yes"}, "true or false"),
        ({"layers": [2, 1]}, r"layers must be null \(the last\) or a list of increasing layer numbers >= 0 such as \[3\] or \[2, 4\], got \[2, 1\]"),
        ({"layers": []}, "layers must be null"),
        ({"layers": "2"}, "layers must be null"),
    ]:
        with pytest.raises(FrontendError, match=message):
            build("whisper", **params)


def test_whisper_layer_beyond_the_network_is_refused(networks, make_audio):
    folder, _ = networks["whisper"]
    with pytest.raises(FrontendError, match=r"has 2 encoder layers; layers asks for layer 3"):
        build("whisper", model=str(folder), layers=[1, 3])(segments(make_audio))


def test_spec_pins_the_weights(networks, make_audio, tmp_path):
    folder, _ = networks["whisper"]
    fe = build("whisper", model=str(folder))
    spec = fe.spec.to_dict()
    assert len(spec["params"]["weights_sha256"]) == 64
    x = segments(make_audio)
    torch.testing.assert_close(from_spec(spec)(x), fe(x))
    other = save_whisper(tmp_path / "other", seed=1)
    moved = {**spec, "params": {**spec["params"], "model": str(other)}}
    with pytest.raises(FrontendError, match="other weights"):
        from_spec(moved)(x)


def test_repo_id_is_found_in_the_local_cache(networks, make_audio, tmp_path, monkeypatch):
    """A repo id resolves to its cached snapshot, whose large files are blobs named by their sha256."""
    import hashlib

    from huggingface_hub import constants

    folder, _ = networks["whisper"]
    repo = tmp_path / "hub" / "models--adfd-test--tiny-whisper"
    snapshot = repo / "snapshots" / "0123abcd"
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    for file in folder.iterdir():
        data = file.read_bytes()
        blob = hashlib.sha256(data).hexdigest() if file.suffix == ".safetensors" else hashlib.sha1(data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        (snapshot / file.name).symlink_to(os.path.relpath(repo / "blobs" / blob, snapshot))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cached = build("whisper", model="adfd-test/tiny-whisper")
    direct = build("whisper", model=str(folder))
    assert cached.spec.params["weights_sha256"] == direct.spec.params["weights_sha256"]
    x = segments(make_audio, 1)
    torch.testing.assert_close(cached(x), direct(x))


def test_network_loads_on_first_use_and_stays_frozen(networks):
    folder, _ = networks["whisper"]
    fe = build("whisper", model=str(folder))
    assert fe.network is None and fe.output_shape() == (24,)  # the size comes from config.json alone
    fe(torch.zeros(1, SEGMENT))
    fe.train()
    assert fe.network is not None and not fe.network.training
    assert {p.device for p in fe.network.parameters()} == {fe.anchor.device}
    assert fe.state_dict() == {} or all(k.startswith("network.") for k in fe.state_dict())


# --------------------------------------------------------------------------- the MLP


def test_mlp_is_the_papers_head():
    config = MLPConfig()
    assert (config.input_shape, config.hidden, config.dropout) == ((512,), 128, 0.0)
    model = MLP(config)
    assert [tuple(p.shape) for p in model.parameters()] == [(128, 512), (128,), (2, 128), (2,)]
    assert model(torch.randn(5, 512)).shape == (5, 2)
    with pytest.raises(ModelError, match=r"\(batch, 512\)"):
        model(torch.randn(5, 192))
    parsed = make("mlp.v1", MLPConfig, {"input_shape": "192", "hidden": "64", "dropout": "0.1"}, text=True)
    assert parsed == MLPConfig((192,), 64, 0.1)
    for bad in ({"hidden": 0}, {"dropout": 1.0}, {"input_shape": (0,)}):
        with pytest.raises(ModelError):
            MLPConfig(**bad)


def test_mlp_learns_to_separate_two_clusters():
    torch.manual_seed(0)
    x = torch.cat([torch.randn(64, 12) + 1.0, torch.randn(64, 12) - 1.0])
    y = torch.cat([torch.zeros(64, dtype=torch.long), torch.ones(64, dtype=torch.long)])
    model = MLP(MLPConfig(input_shape=(12,), hidden=16))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(50):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    assert (model(x).argmax(1) == y).float().mean() > 0.95


# --------------------------------------------------------------------------- the chain: featurize -> feature file -> training rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    import audio_factory as make_audio

    root = tmp_path_factory.mktemp("corpus")
    for i in range(2):
        make_audio.write(root / "bonafide" / f"real{i}.wav", make_audio.vowel(110 + 20 * i, seconds=2.5, seed=i))
        make_audio.write(root / "spoof" / "tts" / f"fake{i}.wav", make_audio.chirp(200 + 80 * i, 5000, seconds=3.0))
    return root


def adfd(*args: str) -> int:
    """Run the command line in this process; its exit code. The log handler and SIGTERM handler it installs are undone."""
    import logging
    import signal

    from adfd_cli.main import run

    logger = logging.getLogger("adfd_core")
    handlers, level, sigterm = list(logger.handlers), logger.level, signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as done:
            run(list(args))
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        signal.signal(signal.SIGTERM, sigterm)
    return done.value.code


def test_featurize_stores_embedding_rows_with_their_spec(networks, corpus, tmp_path, capsys):
    from adfd_core.store import FeatureFile
    from adfd_core.trainset import load_rows

    folder, dim = networks["whisper"]
    out = tmp_path / "emb.h5"
    extra = ["--embedding", f"speechbrain={networks['speechbrain'][0]}"] if "speechbrain" in networks else []
    code = adfd("featurize", str(corpus), "-o", str(out), "--embedding", f"whisper={folder}", *extra, "--device", "cpu")
    assert code == 0, capsys.readouterr().err
    fe = build("whisper", model=str(folder))
    with FeatureFile(out) as ff:
        info = ff.feature("whisper")
        assert info.row_shape == (dim,) and info.spec["row_shape"] == [dim]
        assert info.spec["params"] == fe.spec.params  # the folder and the digest of its weights
        utts = ff.utterances()
        assert info.n_rows == sum(audio.segment_count(round(u.duration_s * SR), SEGMENT) for u in utts) == 8
        wave = audio.load(utts[0].utterance.path)
        expected = fe(torch.from_numpy(np.stack(list(audio.iter_segments([wave], SEGMENT)))))
        np.testing.assert_allclose(ff.rows("whisper", 0), expected.numpy(), atol=1e-5)
        if extra:
            assert ff.feature("speechbrain").row_shape == (12,)
    rows = load_rows(out, "whisper")
    assert rows.x.shape == (8, dim) and sorted(rows.y.unique().tolist()) == [0, 1]

    assert adfd("info", str(out), "--json") == 0
    shapes = {f["name"]: f["row_shape"] for f in json.loads(capsys.readouterr().out)["features"]}
    assert shapes["whisper"] == [dim]


def test_featurize_sets_front_end_parameters(networks, corpus, tmp_path, capsys):
    from adfd_core.store import FeatureFile

    folder, dim = networks["whisper"]
    out = tmp_path / "layers.h5"
    params = ["--param", "whisper.layers=1,2", "--param", "whisper.pooling=mean+std"]
    assert adfd("featurize", str(corpus), "-o", str(out), "-e", f"whisper={folder}", *params, "--device", "cpu") == 0
    with FeatureFile(out) as ff:
        info = ff.feature("whisper")
        assert info.row_shape == (2, 2 * dim) and info.spec["params"]["layers"] == [1, 2]
        assert info.spec["params"]["pooling"] == "mean+std"
    assert adfd("featurize", str(corpus), "-o", str(tmp_path / "x.h5"), "-f", "cqt", "--param", "whisper.layers=1,2") == 2
    assert "whisper is not computed; add -f whisper or -e whisper" in capsys.readouterr().err
    assert adfd("featurize", str(corpus), "-o", str(tmp_path / "x.h5"), "-e", "whisper", "--param", "layers=1") == 2
    assert "give NAME.KEY=VALUE" in capsys.readouterr().err


def test_featurize_refuses_bad_embedding_options_and_absent_networks(corpus, tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    out = tmp_path / "f.h5"
    assert adfd("featurize", str(corpus), "-o", str(out), "--embedding", "wav2vec") == 2
    assert "unknown embedding 'wav2vec'" in capsys.readouterr().err
    assert adfd("featurize", str(corpus), "-o", str(out), "-e", "whisper=/a", "-e", "whisper=/b") == 2
    assert "given twice" in capsys.readouterr().err
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert adfd("featurize", str(corpus), "-o", str(out), "--feature", "whisper", "--device", "cpu") == 1
    assert "hf download openai/whisper-base" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("f.h5*"))


def _mlp_registered() -> bool:
    from adfd_core.models.registry import available

    return "mlp.v1" in available()


@pytest.mark.skipif(not _mlp_registered(), reason="mlp.v1 is not in the model registry yet")
def test_mlp_trains_on_embeddings_and_scores_audio_as_its_features(networks, corpus, tmp_path, capsys):
    folder, _ = networks["whisper"]
    feats, model = tmp_path / "emb.h5", tmp_path / "mlp.safetensors"
    assert adfd("featurize", str(corpus), "-o", str(feats), "-e", f"whisper={folder}", "--device", "cpu") == 0
    code = adfd("train", str(feats), "--val", str(feats), "-m", "mlp.v1", "-o", str(model), "--epochs", "2", "--device", "cpu")
    assert code == 0, capsys.readouterr().err
    tables = []
    for source in ([str(corpus)], ["--features", str(feats)]):
        out = tmp_path / f"scores{len(tables)}.tsv"
        assert adfd("score", *source, "-m", str(model), "-o", str(out), "--device", "cpu") == 0, capsys.readouterr().err
        rows = [line.split("\t") for line in out.read_text().splitlines() if not line.startswith("#")]
        tables.append({row[0]: float(row[2]) for row in rows[1:]})
    assert len(tables[0]) == 4 and tables[0].keys() == tables[1].keys()
    for utt, score in tables[0].items():
        assert score == pytest.approx(tables[1][utt], abs=1e-5)  # the embeddings computed from audio are those stored


def test_attentive_trains_on_frame_rows_and_scores_alike_from_features_audio_and_its_bundle(networks, corpus, tmp_path, capsys):
    from adfd_core.modelfile import load_model
    from adfd_core.store import FeatureFile

    folder, dim = networks["whisper"]
    feats, model, bundled = tmp_path / "frames.h5", tmp_path / "attentive.safetensors", tmp_path / "bundled.safetensors"
    params = ["--param", "whisper.layers=1,2", "--param", "whisper.pooling=frames"]
    assert adfd("featurize", str(corpus), "-o", str(feats), "-e", f"whisper={folder}", *params, "--device", "cpu") == 0
    with FeatureFile(feats) as ff:
        assert ff.feature("whisper").row_shape == (2, SEGMENT // 320, dim)
    settings = ["--set", "attention=4", "--set", "hidden=8"]
    code = adfd("train", str(feats), "--val", str(feats), "-m", "attentive.v1", *settings, "-o", str(model), "--epochs", "2", "--device", "cpu")
    assert code == 0, capsys.readouterr().err
    trained, info = load_model(model)
    assert info.config.input_shape == (2, SEGMENT // 320, dim) and trained.mean.shape == (2, 1, dim)  # shared over frames
    assert adfd("bundle", str(model), "-w", str(folder), "-o", str(bundled), "--float32") == 0, capsys.readouterr().err
    tables = []
    for source, scorer in (([str(corpus)], model), (["--features", str(feats)], model), ([str(corpus)], bundled)):
        out = tmp_path / f"scores{len(tables)}.tsv"
        assert adfd("score", *source, "-m", str(scorer), "-o", str(out), "--device", "cpu") == 0, capsys.readouterr().err
        rows = [line.split("\t") for line in out.read_text().splitlines() if not line.startswith("#")]
        tables.append({row[0]: float(row[2]) for row in rows[1:]})
    assert len(tables[0]) == 4 and tables[0].keys() == tables[1].keys() == tables[2].keys()
    assert max(tables[0].values()) - min(tables[0].values()) > 1e-4  # the recordings' scores differ: a mix-up would show
    for utt, score in tables[0].items():
        assert score == pytest.approx(tables[1][utt], abs=1e-5) == pytest.approx(tables[2][utt], abs=1e-5)


def test_score_finds_a_moved_network_but_only_the_same_weights(networks, corpus, tmp_path, capsys):
    folder, _ = networks["whisper"]
    copy = shutil.copytree(folder, tmp_path / "whisper-copy")
    feats, model = tmp_path / "emb.h5", tmp_path / "mlp.safetensors"
    assert adfd("featurize", str(corpus), "-o", str(feats), "-e", f"whisper={copy}", "--device", "cpu") == 0
    assert adfd("train", str(feats), "-m", "mlp.v1", "--val", str(feats), "-o", str(model), "--epochs", "1", "--device", "cpu") == 0
    shutil.rmtree(copy)  # the network the model was trained with has moved
    capsys.readouterr()
    assert adfd("score", str(corpus), "-m", str(model), "--device", "cpu") == 1
    assert "whisper-copy': no such folder" in capsys.readouterr().err
    moved = ["--embedding-model", f"whisper={folder}"]
    assert adfd("score", str(corpus), "-m", str(model), *moved, "--device", "cpu", "-o", str(tmp_path / "a.tsv")) == 0
    assert adfd("score", "--features", str(feats), "-m", str(model), *moved, "-o", str(tmp_path / "f.tsv")) == 0
    scores = [read_scores(tmp_path / name) for name in ("a.tsv", "f.tsv")]
    assert dict(zip(scores[0].ids, scores[0].scores)) == pytest.approx(dict(zip(scores[1].ids, scores[1].scores)), abs=1e-5)
    other = save_whisper(tmp_path / "other-whisper", seed=1)
    assert adfd("score", str(corpus), "-m", str(model), "--embedding-model", f"whisper={other}", "--device", "cpu") == 1
    assert "holds other weights" in capsys.readouterr().err
    assert adfd("score", str(corpus), "-m", str(model), "--embedding-model", "mfcc=/x") == 2


@pytest.mark.parametrize("name, prefix", [("whisper", "model.encoder.layers.0."), ("seamless", "speech_encoder.encoder.layers.0.")])
def test_checkpoint_without_the_encoder_is_refused(networks, tmp_path, name, prefix):
    from safetensors.torch import load_file, save_file

    folder, _ = networks[name]
    partial = shutil.copytree(folder, tmp_path / "partial")
    weights = load_file(partial / "model.safetensors")
    kept = {k: v for k, v in weights.items() if not k.startswith(prefix)}
    assert len(kept) < len(weights)
    save_file(kept, partial / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(FrontendError, match="lacks .* weights of the encoder"):
        build(name, model=str(partial))(torch.zeros(1, SEGMENT))
