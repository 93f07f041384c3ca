"""A Whisper model in CTranslate2's format (faster-whisper's ``model.bin``) -> a transformers Whisper folder.

CTranslate2 stores a model as one binary file, little-endian:

    uint32 binary version (6)  |  string spec name ("WhisperSpec")  |  uint32 spec revision (3)
    uint32 n_variables, then per variable:
        string name  |  uint8 rank  |  uint32 x rank shape  |  uint8 dtype id  |  uint32 n_bytes  |  bytes
    uint32 n_aliases, then per alias: string alias  |  string name of the variable it stands for

where a string is a uint16 length (counting a closing NUL), its UTF-8 bytes and the NUL, and the
dtype ids are 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16. An alias stands for a
variable of identical value (the decoder's output projection is the token embedding; the
converter also merges equal biases). Beside it lie ``config.json`` (suppressed tokens, language
ids, alignment heads), the vocabulary (``vocabulary.json`` or ``vocabulary.txt``: one token per id)
and, for faster-whisper's models, the Hugging Face ``tokenizer.json``.

The mapping to transformers' WhisperForConditionalGeneration: CTranslate2 fuses each self-attention's
query, key and value projections into one ``linear_0`` (and a cross-attention's key and value into
``linear_1``) and gives the bias-free key projection a zero bias; here they are split again and a
key bias that is not zero is refused. The architecture (layers, heads, widths, positions, mel bands,
vocabulary) is read from the tensors, the special tokens from the vocabulary. Float16 weights are
written as float32 (exactly: every float16 is a float32), so the folder loads and computes as any
transformers checkpoint does. adfd reads the file itself: CTranslate2 is not needed.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adfd_core.frontends.pretrained import quiet_transformers
from adfd_core.frontends.spec import FrontendError

BINARY_VERSION = 6  # the layout above, written by CTranslate2 3.x and 4.x
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
_GELU = 3  # CTranslate2's Activation.GELU
_MULTILINGUAL_VOCAB = 51865  # OpenAI's rule: a vocabulary this large or larger has language tokens
_EOT, _SOT, _PREV, _NO_TIMESTAMPS = "<|endoftext|>", "<|startoftranscript|>", "<|startofprev|>", "<|notimestamps|>"


class ConversionError(FrontendError):
    """A CTranslate2 file that is not a Whisper model this converter reads, in one line."""


@dataclass(frozen=True)
class Ct2Model:
    """The contents of a CTranslate2 model.bin: spec name and revision, variables (aliases resolved)."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]  # alias -> the variable it stands for


class _Cursor:
    """Reads little-endian fields from a bytes buffer, naming the file when it ends too soon."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise ConversionError(f"{self.path}: truncated CTranslate2 file (ends at byte {len(self.data)}, needs {self.pos + n})")
        view = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        (n,) = self.unpack("H")
        raw = bytes(self.take(n))
        if n == 0 or raw[-1] != 0:
            raise ConversionError(f"{self.path}: malformed string at byte {self.pos - n}")
        return raw[:-1].decode("utf-8")


def read_model_bin(path: str | Path) -> Ct2Model:
    """Every variable of a CTranslate2 model.bin as a numpy array (bfloat16 as float32); aliases resolved."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConversionError(f"{path}: cannot read ({exc.strerror or exc})") from None
    cur = _Cursor(data, path)
    (version,) = cur.unpack("I")
    if version != BINARY_VERSION:
        raise ConversionError(f"{path}: CTranslate2 binary version {version}; this reader knows version {BINARY_VERSION}")
    spec = cur.string()
    (revision,) = cur.unpack("I")
    (count,) = cur.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = cur.string()
        (rank,) = cur.unpack("B")
        shape = cur.unpack("I" * rank)
        (dtype_id,) = cur.unpack("B")
        (n_bytes,) = cur.unpack("I")
        raw = cur.take(n_bytes)
        if dtype_id not in _DTYPES:
            raise ConversionError(f"{path}: variable {name} has unknown dtype id {dtype_id}")
        variables[name] = _array(raw, _DTYPES[dtype_id], shape, f"{path}: variable {name}")
    (n_aliases,) = cur.unpack("I")
    aliases = {}
    for _ in range(n_aliases):
        alias, target = cur.string(), cur.string()
        if target not in variables:
            raise ConversionError(f"{path}: alias {alias} names no variable ({target})")
        aliases[alias] = target
        variables[alias] = variables[target]
    if cur.pos != len(data):
        raise ConversionError(f"{path}: {len(data) - cur.pos} bytes after the last alias; not a CTranslate2 model file")
    return Ct2Model(spec, revision, variables, aliases)


def _array(raw: memoryview, dtype: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """The bytes of one variable as an array of ``shape`` (a copy, so the file's buffer can go)."""
    itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
    if len(raw) != itemsize * int(np.prod(shape, dtype=np.int64)):
        raise ConversionError(f"{what}: {len(raw)} bytes for shape {shape}")
    if dtype == "bfloat16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)


# --------------------------------------------------------------------------- CTranslate2 names -> transformers names


def _count(variables: dict[str, np.ndarray], stack: str) -> int:
    pattern = re.compile(rf"{stack}/layer_(\d+)/")
    return len({m.group(1) for name in variables if (m := pattern.match(name))})


def _scalar(variables: dict[str, np.ndarray], name: str, path: Path) -> int:
    if name not in variables:
        raise ConversionError(f"{path}: no {name}; not a CTranslate2 Whisper model")
    return int(variables[name].reshape(()))


def _split(weight: np.ndarray, bias: np.ndarray | None, parts: int, what: str) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """A fused projection's (parts*D, D) weight and (parts*D,) bias -> parts (weight, bias) pairs."""
    weights = np.split(weight, parts)
    biases = np.split(bias, parts) if bias is not None else [None] * parts
    return list(zip(weights, biases))


def whisper_state_dict(model: Ct2Model, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """transformers WhisperForConditionalGeneration tensors (float32) and the architecture read from them."""
    if model.spec != "WhisperSpec":
        raise ConversionError(f"{path}: a CTranslate2 {model.spec!r} model, not WhisperSpec")
    v = model.variables
    for flag, want in (("decoder/pre_norm", 1), ("decoder/scale_embeddings", 0), ("decoder/activation", _GELU)):
        if flag in v and int(v[flag].reshape(())) != want:
            raise ConversionError(f"{path}: {flag} is {int(v[flag].reshape(()))}; Whisper has {want}")
    quantized = sorted(name for name in v if name.endswith("_scale"))
    if quantized:
        raise ConversionError(f"{path}: a quantized model ({quantized[0]}); convert a float16 or float32 CTranslate2 model")
    out: dict[str, np.ndarray] = {}

    def put(target: str, source: str | np.ndarray | None) -> None:
        value = v.get(source) if isinstance(source, str) else source
        if value is None:
            raise ConversionError(f"{path}: no {source}; not a CTranslate2 Whisper model")
        out[target] = value

    def linear(target: str, source: str, bias: bool = True) -> None:
        put(f"{target}.weight", f"{source}/weight")
        if bias:
            put(f"{target}.bias", f"{source}/bias")

    def norm(target: str, source: str) -> None:
        put(f"{target}.weight", f"{source}/gamma")
        put(f"{target}.bias", f"{source}/beta")

    def attention(target: str, source: str, fused: list[tuple[str, int]]) -> None:
        """fused: (CTranslate2 linear, how many of q, k, v it holds, in that order)."""
        names = iter(("q_proj", "k_proj", "v_proj"))
        for linear_name, parts in fused:
            weight, bias = v.get(f"{source}/{linear_name}/weight"), v.get(f"{source}/{linear_name}/bias")
            if weight is None:
                raise ConversionError(f"{path}: no {source}/{linear_name}/weight; not a CTranslate2 Whisper model")
            for w, b in _split(weight, bias, parts, source):
                proj = next(names)
                put(f"{target}.{proj}.weight", w)
                if proj == "k_proj":
                    if b is not None and np.any(b != 0):
                        raise ConversionError(f"{path}: {source} has a key bias; Whisper's key projection has none")
                    continue
                put(f"{target}.{proj}.bias", b if b is not None else np.zeros(w.shape[0], w.dtype))
        linear(f"{target}.out_proj", f"{source}/linear_{len(fused)}")

    def block(target: str, source: str, cross: bool) -> None:
        attention(f"{target}.self_attn", f"{source}/self_attention", [("linear_0", 3)])
        norm(f"{target}.self_attn_layer_norm", f"{source}/self_attention/layer_norm")
        if cross:
            attention(f"{target}.encoder_attn", f"{source}/attention", [("linear_0", 1), ("linear_1", 2)])
            norm(f"{target}.encoder_attn_layer_norm", f"{source}/attention/layer_norm")
        linear(f"{target}.fc1", f"{source}/ffn/linear_0")
        linear(f"{target}.fc2", f"{source}/ffn/linear_1")
        norm(f"{target}.final_layer_norm", f"{source}/ffn/layer_norm")

    n_enc, n_dec = _count(v, "encoder"), _count(v, "decoder")
    if n_enc == 0 or n_dec == 0:
        raise ConversionError(f"{path}: no encoder or decoder layers; not a CTranslate2 Whisper model")
    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    put("model.encoder.embed_positions.weight", "encoder/position_encodings/encodings")
    for i in range(n_enc):
        block(f"model.encoder.layers.{i}", f"encoder/layer_{i}", cross=False)
    norm("model.encoder.layer_norm", "encoder/layer_norm")
    put("model.decoder.embed_tokens.weight", "decoder/embeddings/weight")
    put("model.decoder.embed_positions.weight", "decoder/position_encodings/encodings")
    for i in range(n_dec):
        block(f"model.decoder.layers.{i}", f"decoder/layer_{i}", cross=True)
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    tied = model.aliases.get("decoder/projection/weight") == "decoder/embeddings/weight"
    put("proj_out.weight", "decoder/projection/weight")
    if np.any(v.get("decoder/projection/bias", 0) != 0):
        raise ConversionError(f"{path}: the output projection has a bias; Whisper's has none")

    enc_ffn, dec_ffn = out["model.encoder.layers.0.fc1.weight"].shape[0], out["model.decoder.layers.0.fc1.weight"].shape[0]
    d_model, mel_bands, _ = out["model.encoder.conv1.weight"].shape
    architecture = {
        "d_model": int(d_model), "num_mel_bins": int(mel_bands), "vocab_size": int(out["proj_out.weight"].shape[0]),
        "encoder_layers": n_enc, "decoder_layers": n_dec,
        "encoder_attention_heads": _scalar(v, "encoder/num_heads", path), "decoder_attention_heads": _scalar(v, "decoder/num_heads", path),
        "encoder_ffn_dim": int(enc_ffn), "decoder_ffn_dim": int(dec_ffn),
        "max_source_positions": int(out["model.encoder.embed_positions.weight"].shape[0]),
        "max_target_positions": int(out["model.decoder.embed_positions.weight"].shape[0]),
        "tie_word_embeddings": tied,
    }  # fmt: skip
    # A copy per name: aliased variables share one array, and transformers refuses to save shared tensors it does not tie.
    tensors = {k: torch.from_numpy(np.array(a, dtype=np.float32, order="C", copy=True)) for k, a in out.items()}
    return tensors, architecture


# --------------------------------------------------------------------------- the folder around the weights


def read_vocabulary(folder: Path) -> list[str]:
    """Token strings by id: vocabulary.json (a JSON list) or vocabulary.txt (one token per line)."""
    if (folder / "vocabulary.json").is_file():
        tokens = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ConversionError(f"{folder / 'vocabulary.json'}: not a JSON list of tokens")
        return tokens
    if (folder / "vocabulary.txt").is_file():
        text = (folder / "vocabulary.txt").read_text(encoding="utf-8")
        return text.removesuffix("\n").split("\n")  # split on "\n" only: a token may hold other line breaks
    raise ConversionError(f"{folder}: no vocabulary.json or vocabulary.txt")


def special_tokens(tokens: list[str], ct2_config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The ids transformers' Whisper config and generation config name, from the vocabulary and config.json."""
    index = {token: i for i, token in enumerate(tokens)}
    missing = [t for t in (_EOT, _SOT, _NO_TIMESTAMPS) if t not in index]
    if missing:
        raise ConversionError(f"{folder}: the vocabulary lacks {', '.join(missing)}; not a Whisper vocabulary")
    multilingual = len(tokens) >= _MULTILINGUAL_VOCAB
    ids = {
        "eos_token_id": index[_EOT], "pad_token_id": index[_EOT], "bos_token_id": index[_EOT],
        "decoder_start_token_id": index[_SOT], "no_timestamps_token_id": index[_NO_TIMESTAMPS],
        "suppress_tokens": list(ct2_config.get("suppress_ids") or []),
        "begin_suppress_tokens": list(ct2_config.get("suppress_ids_begin") or []),
        "is_multilingual": multilingual,
    }  # fmt: skip
    if _PREV in index:
        ids["prev_sot_token_id"] = index[_PREV]
    if multilingual:
        ids["lang_to_id"] = {tokens[i]: i for i in ct2_config.get("lang_ids") or []}
        ids["task_to_id"] = {task: index[f"<|{task}|>"] for task in ("transcribe", "translate") if f"<|{task}|>" in index}
    if ct2_config.get("alignment_heads"):
        ids["alignment_heads"] = [list(pair) for pair in ct2_config["alignment_heads"]]
    return ids


def convert(ct2_folder: str | Path, out: str | Path) -> Path:
    """Write the CTranslate2 Whisper model of ``ct2_folder`` (model.bin, config.json, vocabulary) as a
    transformers folder: config.json, model.safetensors (float32), generation_config.json,
    preprocessor_config.json and, where the folder has a tokenizer.json, the tokenizer."""
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    ct2_folder, out = Path(ct2_folder), Path(out)
    weights = ct2_folder / "model.bin"
    tensors, architecture = whisper_state_dict(read_model_bin(weights), weights)
    config_path = ct2_folder / "config.json"
    ct2_config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    tokens = read_vocabulary(ct2_folder)
    if len(tokens) > architecture["vocab_size"]:
        raise ConversionError(f"{ct2_folder}: {len(tokens)} tokens for {architecture['vocab_size']} embeddings")
    ids = special_tokens(tokens, ct2_config, ct2_folder)
    token_keys = ("eos_token_id", "pad_token_id", "bos_token_id", "decoder_start_token_id")
    # The suppressed tokens go to the generation config only: in both, transformers warns at every generate.
    config = WhisperConfig(**architecture, **{k: ids[k] for k in token_keys}, suppress_tokens=None, begin_suppress_tokens=None)
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    problem = set(model.state_dict()) ^ set(tensors)
    if problem:
        raise ConversionError(f"{weights}: tensors do not map onto transformers' Whisper: {', '.join(sorted(problem)[:3])}")
    model.load_state_dict(tensors, assign=True, strict=True)
    if architecture["tie_word_embeddings"]:
        model.tie_weights()
    model.generation_config = GenerationConfig(
        **ids, max_length=architecture["max_target_positions"], max_initial_timestamp_index=50, return_timestamps=False,
    )
    out.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=architecture["num_mel_bins"]).save_pretrained(out)
    if (ct2_folder / "tokenizer.json").is_file():
        from transformers import WhisperTokenizer

        tokenizer = WhisperTokenizer(tokenizer_file=str(ct2_folder / "tokenizer.json"))
        tokenizer.pad_token = _EOT
        tokenizer.save_pretrained(out)
    return out
