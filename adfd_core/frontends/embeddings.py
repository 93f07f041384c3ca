"""The ensemble paper's pre-trained audio embeddings: one vector per 2-s segment, for the MLP.

    whisper      Whisper's encoder (transformers), mean over the frames of the segment: 512 for base
    seamless     SeamlessM4T's speech encoder (transformers), mean over its frames: 1024 for medium
    speechbrain  SpeechBrain's ECAPA-TDNN speaker embedding: 192      (pip install 'adfd[speechbrain]')
    pyannote     pyannote's SincNet x-vector speaker embedding: 512   (pip install 'adfd[pyannote]')

Each is a Frontend: (batch, segment_samples) float32 at 16 kHz -> (batch, D) float32. The
parameter ``model`` names the network: a local folder, or a Hugging Face repo id looked up in the
local cache only. Nothing is read at construction (``adfd info --features`` builds every
front-end); the network is loaded on the first forward, onto the device the front-end was moved
to, frozen and in eval mode. ``output_shape`` reads only the network's config, or for the default
network needs nothing at all.

``weights_sha256`` pins the network: "" (the default) takes whatever ``model`` names, and reading
``spec`` fills in the digest of its files (see adfd_core.frontends.pretrained), so a feature file
or a model file records exactly which weights made its rows; a front-end rebuilt from such a spec
refuses any other weights.

Whisper pads every input to 30 s, and transformers' encoder refuses any other length. Here the
encoder is cut down to the segment instead (its position table truncated to the first
ceil(samples / 320) positions, one per 20 ms): 15x less compute for 2-s segments, and the mean
is over exactly the frames that cover the audio. The embeddings differ somewhat from those of a
30-s padded input (attention sees no padding); ``pad_to_30s=True`` gives those instead, pooled over
the same leading frames.

Whisper's ``layers`` picks which hidden states are pooled, numbered as transformers'
``output_hidden_states`` numbers them: 0 the input of the first block (convolutions plus positions),
k the output of block k, the last one through the encoder's closing LayerNorm (what
``last_hidden_state`` is). ``null`` (the default, and what a spec written before the parameter
existed means) is the last. The encoder is cut after the deepest layer asked for: blocks above it are
neither loaded onto the device nor run. ``pooling`` is ``mean``, ``mean+std`` (the mean and the
population standard deviation over the frames, concatenated) or ``frames`` (no pooling: the T =
ceil(samples / 320) hidden states that cover the segment, for a back-end that pools them itself,
such as ``attentive.v1``). One layer gives a vector (D or 2D) or with ``frames`` a (T, D) matrix;
a list of several gives a (L, D or 2D) or (L, T, D) stack, for a back-end that learns how to weigh them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from adfd_core.frontends import pretrained
from adfd_core.frontends.base import Frontend
from adfd_core.frontends.spec import FrontendError, FrontendSpec

SAMPLE_RATE = 16_000  # Hz: every one of these networks takes 16-kHz audio
SEGMENT_SECONDS = 2.0  # s: the ensemble paper's segments
WHISPER_WINDOW_SECONDS = 30.0  # s: the longest input Whisper's encoder has positions for
POOLINGS = ("mean", "mean+std", "frames")  # over the frames of the segment; mean+std: both, concatenated; frames: none
SAMPLES_PER_POSITION = 320  # samples per Whisper encoder position: log-mel hop 160, then the stride-2 convolution (20 ms)


def _defaults(model: str, **extra: Any) -> dict[str, Any]:
    """Every parameter of an embedding front-end with its default; model: the paper's network."""
    return {"sample_rate": SAMPLE_RATE, "segment_seconds": SEGMENT_SECONDS, "model": model, **extra, "weights_sha256": ""}


class EmbeddingFrontend(Frontend):
    """(batch, segment_samples) float32 -> (batch, D) float32 through a frozen pre-trained network.

    Subclasses give the default network's size and say which files identify a network, how to read
    its size, and how to load it as a module from (batch, samples) on its device to (batch, D).
    """

    DEFAULTS: ClassVar[dict[str, Any]]  # every parameter with its default (see _defaults)
    ADDED: ClassVar[dict[str, Any]] = {}  # parameters added since version 1, with the value a spec without them means
    poolings: ClassVar[tuple[str, ...]] = ("mean",)  # what ``pooling`` may be
    default_dim: ClassVar[int]  # D of the default network, known without its files
    gated: ClassVar[bool] = False  # the networks need a Hugging Face login to download

    def __init__(self, spec: FrontendSpec):
        super().__init__(spec)
        name, p = spec.name, spec.params
        if self.sample_rate != SAMPLE_RATE:
            raise FrontendError(f"{name}: the network takes {SAMPLE_RATE} Hz audio; sample_rate must be {SAMPLE_RATE}")
        if self.segment_samples is None:
            raise FrontendError(f"{name}: segment_seconds must be a number of seconds")
        if not isinstance(p["model"], str) or not p["model"].strip():
            raise FrontendError(f"{name}: model must be a folder or a Hugging Face repo id, got {p['model']!r}")
        pinned = p["weights_sha256"]
        if pinned != "" and not (isinstance(pinned, str) and pretrained.SHA256_HEX.fullmatch(pinned)):
            raise FrontendError(f"{name}: weights_sha256 must be empty or 64 hex digits, got {pinned!r}")
        if "pooling" in p and p["pooling"] not in self.poolings:
            raise FrontendError(f"{name}: pooling must be one of {', '.join(self.poolings)}, got {p['pooling']!r}")
        self.model = p["model"]
        # Follows .to(device): where the network goes when it is loaded.
        self.register_buffer("anchor", torch.zeros(0), persistent=False)
        self.network: nn.Module | None = None
        self._folder: Path | None = None
        self._digest: str | None = None

    # The spec is a property: what was given, with the digest of the weights filled in when read.
    @property
    def spec(self) -> FrontendSpec:
        """The spec with weights_sha256 set from the network's files (found and hashed on first read)."""
        given = self._given
        return FrontendSpec(given.name, given.version, {**given.params, "weights_sha256": self.weights_digest()})

    @spec.setter
    def spec(self, value: FrontendSpec) -> None:
        self._given = value

    def extra_repr(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self._given.params.items())
        return f"{self._given.name} v{self._given.version}: {params}"

    def folder(self) -> Path:
        """The network's local folder; a FrontendError saying how to get it when there is none."""
        if self._folder is None:
            found = pretrained.locate(self._given.name, self.model)
            if found is None:
                raise pretrained.missing(self._given.name, self.model, self.gated)
            self._folder = found
        return self._folder

    def weights_digest(self) -> str:
        """sha256 of the network's files; refuses files other than those weights_sha256 names."""
        if self._digest is None:
            folder = self.folder()
            digest = pretrained.files_digest(self.files(folder))
            pinned = self._given.params["weights_sha256"]
            if pinned and digest != pinned:
                raise FrontendError(
                    f"{self._given.name}: {folder} holds other weights (sha256 {digest[:12]}...) than those the features "
                    f"were made with ({pinned[:12]}...); point model at those weights"
                )
            self._digest = digest
        return self._digest

    def output_shape(self, n_samples: int | None = None) -> tuple[int, ...]:
        """(D,): from the network's config, or the default network's known size when its files are absent."""
        found = self._folder or pretrained.locate(self._given.name, self.model)
        if found is not None:
            return self.row_shape(self.dimension(found))
        if self.model == self.DEFAULTS["model"]:
            return self.row_shape(self.default_dim)
        raise pretrained.missing(self._given.name, self.model, self.gated)

    def row_shape(self, dim: int) -> tuple[int, ...]:
        """The shape of one row for a network of width ``dim``: (dim,) unless the front-end pools otherwise."""
        return (dim,)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, segment_samples) float32 -> (batch, *row_shape) float32."""
        with torch.no_grad():
            return self.loaded()(x).float()

    def loaded(self) -> nn.Module:
        """The network, loaded on first use onto this front-end's device, frozen, in eval mode."""
        if self.network is None:
            folder = self.folder()
            self.weights_digest()
            with torch.inference_mode(False):  # ordinary tensors, even when first used under inference_mode
                network = self.load(folder)
            self.network = network.to(self.anchor.device).eval().requires_grad_(False)
        return self.network

    def train(self, mode: bool = True) -> EmbeddingFrontend:
        """The network stays in eval mode: it is a fixed feature extractor."""
        super().train(mode)
        if self.network is not None:
            self.network.eval()
        return self

    # What each network defines.
    def files(self, folder: Path) -> list[Path]:
        """The files that determine the network's outputs (hashed into weights_sha256)."""
        raise NotImplementedError

    def dimension(self, folder: Path) -> int:
        """D, read cheaply from the network's config."""
        raise NotImplementedError

    def load(self, folder: Path) -> nn.Module:
        """The network as a module: (batch, segment_samples) float32 -> (batch, D)."""
        raise NotImplementedError


class TransformersEmbedding(EmbeddingFrontend):
    """A network saved by transformers: config.json, preprocessor_config.json (its feature extractor) and weights."""

    size_key: ClassVar[str]  # the config.json entry that holds D

    def files(self, folder: Path) -> list[Path]:
        names = ("config.json", "preprocessor_config.json")
        return [*pretrained.need(self._given.name, folder, names), *pretrained.weight_files(self._given.name, folder)]

    def dimension(self, folder: Path) -> int:
        return int(self.config(folder)[self.size_key])

    def config(self, folder: Path) -> dict[str, Any]:
        """The network's config.json."""
        return pretrained.read_json(pretrained.need(self._given.name, folder, ["config.json"])[0])


# --------------------------------------------------------------------------- Whisper


class WhisperEmbedding(TransformersEmbedding):
    """Whisper's encoder over log-mel frames, its chosen hidden states pooled over the frames that cover the
    segment: (batch, D), (batch, 2D) with mean+std, or (batch, L, D or 2D) for several layers."""

    DEFAULTS = _defaults("openai/whisper-base", pooling="mean", pad_to_30s=False, layers=None)
    ADDED = {"layers": None}
    poolings = POOLINGS
    default_dim = 512  # whisper-base
    size_key = "d_model"

    def __init__(self, spec: FrontendSpec):
        super().__init__(spec)
        if self.segment_samples > WHISPER_WINDOW_SECONDS * SAMPLE_RATE:
            raise FrontendError(f"{spec.name}: segment_seconds must be at most {WHISPER_WINDOW_SECONDS:g} (Whisper's window)")
        if not isinstance(spec.params["pad_to_30s"], bool):
            raise FrontendError(f"{spec.name}: pad_to_30s must be true or false, got {spec.params['pad_to_30s']!r}")
        self.pad_to_30s = spec.params["pad_to_30s"]
        self.layers = check_layers(spec.name, spec.params["layers"])
        self.pooling = spec.params["pooling"]

    def row_shape(self, dim: int) -> tuple[int, ...]:
        n_real = math.ceil(self.segment_samples / SAMPLES_PER_POSITION)
        return pooled_row_shape(dim, n_real, 1 if self.layers is None else len(self.layers), self.pooling)

    def load(self, folder: Path) -> nn.Module:
        from transformers import WhisperModel

        from adfd_core.frontends.whisper_net import Encoder, LogMel

        with pretrained.quiet_transformers():
            model, info = WhisperModel.from_pretrained(folder, local_files_only=True, output_loading_info=True)
        pretrained.check_loaded(self._given.name, folder, info, "encoder.")
        self._check_standard_log_mel(folder, model.config.num_mel_bins)
        return WhisperEncoderPool.cut(
            LogMel(model.config.num_mel_bins), Encoder.from_transformers(model.get_encoder()), self.segment_samples,
            self.pad_to_30s, self.layers, self.pooling, f"{self._given.name}: {folder}",
        )


    def _check_standard_log_mel(self, folder: Path, n_mels: int) -> None:
        """Refuse a network whose feature extractor is not Whisper's standard log-mel (the one adfd computes)."""
        standard = {"feature_size": n_mels, "sampling_rate": SAMPLE_RATE, "hop_length": 160, "n_fft": 400, "padding_value": 0.0}
        with open(Path(folder) / "preprocessor_config.json", encoding="utf-8") as f:
            given = json.load(f)
        odd = {k: given.get(k) for k, v in standard.items() if given.get(k, v) != v}
        if odd or given.get("dither", 0.0) != 0.0:
            raise FrontendError(f"{self._given.name}: {folder}: its feature extractor is not Whisper's standard log-mel ({odd or 'dither'})")


def pooled_row_shape(dim: int, n_real: int, n_layers: int, pooling: str) -> tuple[int, ...]:
    """The shape of one row of ``n_layers`` hidden states of width ``dim`` over ``n_real`` positions:
    (D), (2D) or (T, D) for one layer; (L, D), (L, 2D) or (L, T, D) for several."""
    one = {"mean": (dim,), "mean+std": (2 * dim,), "frames": (n_real, dim)}[pooling]
    return one if n_layers == 1 else (n_layers, *one)


def check_layers(frontend: str, layers: Any) -> tuple[int, ...] | None:
    """``layers`` as a tuple of distinct increasing hidden-state numbers >= 0, or None (the last)."""
    ok = layers is None or (
        isinstance(layers, (list, tuple)) and len(layers) > 0
        and all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in layers)
        and list(layers) == sorted(set(layers))
    )  # fmt: skip
    if not ok:
        raise FrontendError(
            f"{frontend}: layers must be null (the last) or a list of increasing layer numbers >= 0 such as [3] or [2, 4], got {layers!r}"
        )
    return None if layers is None else tuple(layers)


class WhisperEncoderPool(nn.Module):
    """(batch, samples) -> Whisper's log-mel (zero-padded to ``window`` samples) -> encoder blocks -> the hidden
    states ``layers`` (None: the last, ``last_hidden_state``), each pooled over the first ``n_real``
    positions: (batch, D or 2D), or (batch, L, D or 2D) for several layers; with ``frames`` those positions
    unpooled: (batch, T, D) or (batch, L, T, D), T = n_real.

    The log-mel and encoder are adfd's plain-torch copies (adfd_core.frontends.whisper_net) of
    transformers' Whisper modules. ``full_depth`` is the number of blocks of the network the encoder
    came from: hidden state ``full_depth`` goes through the closing LayerNorm; an encoder cut lower has no use for it.
    """

    def __init__(self, log_mel: nn.Module, encoder: nn.Module, window: int, n_real: int, full_depth: int,
                 layers: tuple[int, ...] | None, pooling: str):  # fmt: skip
        super().__init__()
        self.to_mel, self.encoder, self.window, self.n_real = log_mel, encoder, window, n_real
        self.full_depth, self.layers, self.pooling = full_depth, layers, pooling

    @classmethod
    def cut(cls, log_mel: nn.Module, encoder: nn.Module, segment_samples: int, pad_to_30s: bool,
            layers: tuple[int, ...] | None, pooling: str, what: str) -> WhisperEncoderPool:  # fmt: skip
        """The pooling module over ``encoder`` (whisper_net.Encoder) cut to the segment (unless pad_to_30s) and to
        the deepest of ``layers``; a FrontendError (prefixed with ``what``) for a segment or layer it lacks."""
        frame = log_mel.hop_length * encoder.conv1.stride[0] * encoder.conv2.stride[0]  # samples per encoder position
        n_real = math.ceil(segment_samples / frame)
        if n_real > encoder.max_source_positions:
            seconds = encoder.max_source_positions * frame / SAMPLE_RATE
            raise FrontendError(f"{what} takes at most {seconds:g} s; segment_seconds is longer")
        full_depth = len(encoder.layers)
        if layers is not None and layers[-1] > full_depth:
            raise FrontendError(f"{what} has {full_depth} encoder layers; layers asks for layer {layers[-1]}")
        encoder.keep(full_depth if layers is None else layers[-1], encoder.max_source_positions if pad_to_30s else n_real)
        return cls(log_mel, encoder, encoder.max_source_positions * frame, n_real, full_depth, layers, pooling)

    def hidden_states(self, mel: torch.Tensor) -> list[torch.Tensor]:
        """(batch, n_mels, 2 * positions) -> the hidden states ``layers`` asks for, each (batch, positions, D)."""
        return self.encoder.states(mel, self.layers if self.layers is not None else (self.full_depth,), self.full_depth)

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        """(batch, positions, D) -> (batch, D) mean, or (batch, 2D) mean and std, over the first n_real positions;
        with ``frames`` those positions as they are, (batch, n_real, D)."""
        real = h[:, : self.n_real]
        if self.pooling == "frames":
            return real
        if self.pooling == "mean":
            return real.mean(dim=1)
        std, mean = torch.std_mean(real, dim=1, correction=0)
        return torch.cat([mean, std], dim=1)

    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, n_mels, window / hop) in the encoder's dtype: x zero-padded (or cut) to ``window``."""
        x = F.pad(x.float(), (0, self.window - x.shape[-1])) if x.shape[-1] < self.window else x[..., : self.window].float()
        return self.to_mel(x).to(self.encoder.conv1.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [self.pool(h) for h in self.hidden_states(self.log_mel(x))]
        return pooled[0] if len(pooled) == 1 else torch.stack(pooled, dim=1)


# --------------------------------------------------------------------------- SeamlessM4T


class SeamlessEmbedding(TransformersEmbedding):
    """SeamlessM4T's speech encoder over 80-band fbanks stacked in pairs (160), averaged over time: (batch, hidden_size)."""

    DEFAULTS = _defaults("facebook/hf-seamless-m4t-medium", pooling="mean")
    default_dim = 1024  # hf-seamless-m4t-medium
    size_key = "hidden_size"

    def load(self, folder: Path) -> nn.Module:
        import transformers

        name = self._given.name
        kind = self.config(folder).get("model_type")
        classes = {"seamless_m4t": "SeamlessM4TForSpeechToText", "seamless_m4t_v2": "SeamlessM4Tv2ForSpeechToText"}
        if kind not in classes:
            raise FrontendError(f"{name}: {folder} holds a {kind!r} network, not SeamlessM4T ({' or '.join(classes)})")
        model_class = getattr(transformers, classes[kind])
        with pretrained.quiet_transformers():
            extractor = transformers.SeamlessM4TFeatureExtractor.from_pretrained(folder, local_files_only=True)
            model, info = model_class.from_pretrained(folder, local_files_only=True, output_loading_info=True)
        pretrained.check_loaded(name, folder, info, "speech_encoder.")
        return SpeechEncoderMean(extractor, model.speech_encoder)


class SpeechEncoderMean(nn.Module):
    """(batch, samples) -> fbanks (SeamlessM4TFeatureExtractor, on the CPU) -> speech encoder -> mean over time."""

    def __init__(self, extractor: Any, encoder: nn.Module):
        super().__init__()
        self.extractor, self.encoder = extractor, encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Segments are all the same length: no padding, so no mask (an odd last frame is dropped).
        feats = self.extractor(
            x.detach().cpu().numpy(), sampling_rate=SAMPLE_RATE, padding=False, pad_to_multiple_of=None,
            return_attention_mask=False, return_tensors="pt",
        )["input_features"]
        dtype = next(self.encoder.parameters()).dtype
        return self.encoder(feats.to(x.device, dtype)).last_hidden_state.mean(dim=1)


# --------------------------------------------------------------------------- SpeechBrain ECAPA-TDNN

SPEECHBRAIN_CLASSES = {  # hyperparams.yaml entry -> the class its !new: tag must name
    "compute_features": "speechbrain.lobes.features.Fbank",
    "mean_var_norm": "speechbrain.processing.features.InputNormalization",
    "embedding_model": "speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN",
}


class SpeechBrainEmbedding(EmbeddingFrontend):
    """SpeechBrain's ECAPA-TDNN: fbanks, per-segment mean normalization, the x-vector network: (batch, lin_neurons).

    The architecture comes from the folder's hyperparams.yaml, read as data (only the three entries
    of SPEECHBRAIN_CLASSES, whose arguments must be plain values); the weights from
    embedding_model.ckpt through torch.load(weights_only=True).
    """

    DEFAULTS = _defaults("speechbrain/spkrec-ecapa-voxceleb")
    default_dim = 192  # spkrec-ecapa-voxceleb

    def files(self, folder: Path) -> list[Path]:
        return pretrained.need(self._given.name, folder, ["hyperparams.yaml", "embedding_model.ckpt"])

    def dimension(self, folder: Path) -> int:
        return int(self._arguments(folder)["embedding_model"].get("lin_neurons", 192))  # ECAPA_TDNN's default

    def load(self, folder: Path) -> nn.Module:
        name = self._given.name
        args = self._arguments(folder)
        sb_features = pretrained.library(name, "speechbrain.lobes.features", "speechbrain")
        sb_norm = pretrained.library(name, "speechbrain.processing.features", "speechbrain")
        sb_ecapa = pretrained.library(name, "speechbrain.lobes.models.ECAPA_TDNN", "speechbrain")
        norm_args = args.get("mean_var_norm")
        if norm_args is not None and norm_args.get("norm_type", "global") != "sentence":
            raise FrontendError(f"{name}: {folder}/hyperparams.yaml: only per-sentence mean_var_norm is supported")
        try:
            fbank = sb_features.Fbank(**args["compute_features"])
            norm = sb_norm.InputNormalization(**norm_args) if norm_args is not None else None
            ecapa = sb_ecapa.ECAPA_TDNN(**args["embedding_model"])
        except (TypeError, ValueError) as err:
            raise FrontendError(f"{name}: {folder}/hyperparams.yaml: {err}") from None
        state = pretrained.read_checkpoint(name, folder / "embedding_model.ckpt")
        try:
            ecapa.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as err:
            reason = str(err).splitlines()[0]
            raise FrontendError(f"{name}: {folder}/embedding_model.ckpt does not fit hyperparams.yaml ({reason})") from None
        return EcapaEmbedder(fbank, norm, ecapa)

    def _arguments(self, folder: Path) -> dict[str, dict[str, Any]]:
        """The constructor arguments of each SPEECHBRAIN_CLASSES entry present (compute_features and embedding_model must be)."""
        name = self._given.name
        path = pretrained.need(name, folder, ["hyperparams.yaml"])[0]
        hparams = pretrained.read_hyperparams(name, path)
        args = {}
        for key, cls in SPEECHBRAIN_CLASSES.items():
            node = hparams.get(key)
            if node is None and key == "mean_var_norm":
                continue
            if not isinstance(node, pretrained.Tagged) or node.tag != f"!new:{cls}":
                raise FrontendError(f"{name}: {path}: {key} must be !new:{cls}")
            values = node.value if isinstance(node.value, dict) else {}
            odd = [k for k, v in values.items() if not _plain(v)]
            if odd:
                raise FrontendError(f"{name}: {path}: {key}.{odd[0]} must be a plain value, not a tag or reference")
            args[key] = values
        return args


def _plain(value: Any) -> bool:
    """True for YAML scalars and lists or mappings of them (no tags: a Tagged is a tuple, not a list)."""
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    return value is None or isinstance(value, (bool, int, float, str))


class EcapaEmbedder(nn.Module):
    """(batch, samples) -> Fbank (batch, frames, n_mels) -> minus its mean over time -> ECAPA-TDNN: (batch, lin_neurons)."""

    def __init__(self, fbank: nn.Module, norm: nn.Module | None, ecapa: nn.Module):
        super().__init__()
        self.fbank, self.norm, self.ecapa = fbank, norm, ecapa

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.fbank(x)
        if self.norm is not None:
            feats = self.norm(feats, torch.ones(len(x), device=x.device))
        return self.ecapa(feats).flatten(1)


# --------------------------------------------------------------------------- pyannote x-vector

PYANNOTE_ARCHITECTURE = "XVectorSincNet"  # pyannote/embedding: SincNet features, TDNNs, statistics pooling


class PyannoteEmbedding(EmbeddingFrontend):
    """pyannote's SincNet x-vector speaker embedding: (batch, dimension).

    The folder holds a Lightning checkpoint, pytorch_model.bin, read with torch.load(weights_only=True)
    (see pretrained.read_checkpoint); its hyper_parameters build pyannote.audio's XVectorSincNet.
    """

    DEFAULTS = _defaults("pyannote/embedding")
    default_dim = 512  # pyannote/embedding
    gated = True
    CHECKPOINT = "pytorch_model.bin"

    def files(self, folder: Path) -> list[Path]:
        return pretrained.need(self._given.name, folder, [self.CHECKPOINT])

    def dimension(self, folder: Path) -> int:
        return int(self._hyperparameters(self._checkpoint(folder), folder)["dimension"])

    def load(self, folder: Path) -> nn.Module:
        name = self._given.name
        checkpoint = self._checkpoint(folder)
        hp = self._hyperparameters(checkpoint, folder)
        architecture = checkpoint.get("pyannote.audio", {}).get("architecture", {}).get("class")
        if architecture != PYANNOTE_ARCHITECTURE:
            raise FrontendError(f"{name}: {folder}/{self.CHECKPOINT} holds a {architecture!r}, not pyannote's {PYANNOTE_ARCHITECTURE}")
        xvector = pretrained.library(name, "pyannote.audio.models.embedding.xvector", "pyannote")
        network = xvector.XVectorSincNet(
            sample_rate=hp.get("sample_rate", SAMPLE_RATE), num_channels=hp.get("num_channels", 1),
            sincnet=hp.get("sincnet"), dimension=hp["dimension"],
        )
        state = checkpoint.get("state_dict")
        absent = sorted(set(network.state_dict()) - set(state or {}))
        if absent:
            raise FrontendError(f"{name}: {folder}/{self.CHECKPOINT} lacks weights of the x-vector (e.g. {absent[0]})")
        own = {k: v for k, v in state.items() if k in network.state_dict()}  # leaves out the training task's layers
        try:
            network.load_state_dict(own)
        except RuntimeError as err:
            raise FrontendError(f"{name}: {folder}/{self.CHECKPOINT}: {str(err).splitlines()[0]}") from None
        return ChannelFirst(network)

    def _checkpoint(self, folder: Path) -> dict[str, Any]:
        checkpoint = pretrained.read_checkpoint(self._given.name, folder / self.CHECKPOINT)
        if not isinstance(checkpoint, dict):
            raise FrontendError(f"{self._given.name}: {folder}/{self.CHECKPOINT} is not a Lightning checkpoint")
        return checkpoint

    def _hyperparameters(self, checkpoint: dict[str, Any], folder: Path) -> dict[str, Any]:
        hp = checkpoint.get("hyper_parameters")
        if not isinstance(hp, dict) or not isinstance(hp.get("dimension"), int):
            raise FrontendError(f"{self._given.name}: {folder}/{self.CHECKPOINT} has no hyper_parameters with a dimension")
        return hp


class ChannelFirst(nn.Module):
    """(batch, samples) -> net((batch, 1, samples)): pyannote models take a channel axis."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.unsqueeze(1))


EMBEDDINGS: dict[str, type[EmbeddingFrontend]] = {
    "whisper": WhisperEmbedding,
    "seamless": SeamlessEmbedding,
    "speechbrain": SpeechBrainEmbedding,
    "pyannote": PyannoteEmbedding,
}

