"""Finding and reading a pre-trained network's files, offline and without running code from them.

A network is named by a local folder or by a Hugging Face repo id, which is looked up in the local
cache only: adfd never downloads. Its files are identified by a digest of their contents, so
features made with one checkpoint are never silently scored with another. Pickled checkpoints
are read with ``torch.load(weights_only=True)`` only; the classes a checkpoint names besides
tensors (a Lightning callback, a task description) are read as inert placeholders, never imported.
SpeechBrain's hyperparams.yaml is parsed as plain data: its ``!new:`` tags are read, not executed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pickle
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from adfd_core.frontends.spec import FrontendError

HF_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
TORCH_ADVICE = ("Weights only load failed", "Please file an issue", "Check the documentation")  # torch.load's wording
WEIGHT_FILES = (  # what transformers loads, in its order of preference: one file, or an index of shards
    ("model.safetensors", "model.safetensors.index.json"),
    ("pytorch_model.bin", "pytorch_model.bin.index.json"),
)


def locate(frontend: str, model: str) -> Path | None:
    """The folder holding ``model``: the folder itself, or the cached snapshot of a Hugging Face repo id;
    None when it is neither (see :func:`missing`)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise FrontendError(f"{frontend}: model={model!r} is a file; give the folder that holds the network's files")
    if not HF_REPO_ID.fullmatch(model):
        return None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except LocalEntryNotFoundError:
        return None


def missing(frontend: str, model: str, gated: bool = False) -> FrontendError:
    """The error for a network that is neither a local folder nor in the Hugging Face cache, saying how to get it."""
    from huggingface_hub import constants

    if not HF_REPO_ID.fullmatch(model):
        return FrontendError(f"{frontend}: model={model!r}: no such folder")
    login = " (a gated model: accept its conditions on huggingface.co and run `hf auth login` first)" if gated else ""
    return FrontendError(
        f"{frontend}: {model!r} is neither a local folder nor in the Hugging Face cache ({constants.HF_HUB_CACHE}); "
        f"download it once with `hf download {model}`{login}, or give its folder: --embedding {frontend}=/path/to/folder"
    )


def need(frontend: str, folder: Path, names: Sequence[str]) -> list[Path]:
    """folder/name for each name; a FrontendError naming the first that is absent."""
    paths = [folder / name for name in names]
    for path in paths:
        if not path.is_file():
            raise FrontendError(f"{frontend}: {folder} lacks {path.name}; is it a complete download of the network?")
    return paths


def weight_files(frontend: str, folder: Path) -> list[Path]:
    """The weight files transformers loads from ``folder``: safetensors before pickles, one file or index + shards."""
    for single, index in WEIGHT_FILES:
        if (folder / single).is_file():
            return [folder / single]
        if (folder / index).is_file():
            shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            return [folder / index, *need(frontend, folder, shards)]
    raise FrontendError(f"{frontend}: {folder} holds no weights ({', '.join(name for pair in WEIGHT_FILES for name in pair)})")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a network's folder."""
    return json.loads(path.read_text(encoding="utf-8"))


def files_digest(files: Sequence[Path]) -> str:
    """sha256 over the files' names and contents: what identifies a network's weights, 64 hex digits."""
    return hashlib.sha256(json.dumps({p.name: _content_sha256(p) for p in files}, sort_keys=True).encode()).hexdigest()


def _content_sha256(path: Path) -> str:
    """sha256 of a file's bytes; free for a Hugging Face cache file, whose blob is named by it."""
    target = path.resolve()
    if path.is_symlink() and target.parent.name == "blobs" and SHA256_HEX.fullmatch(target.name):
        return target.name
    stat = target.stat()
    return _hashed(str(target), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _hashed(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, computed once per process for each (path, size, mtime)."""
    from adfd_core.audio import file_sha256

    return file_sha256(path)


def library(frontend: str, module: str, extra: str) -> Any:
    """Import an optional library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise FrontendError(f"{frontend}: needs {module.split('.')[0]} ({err}); install it with pip install 'adfd[{extra}]'") from None


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' loading reports and progress bars (adfd checks the loaded keys itself)."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def check_loaded(frontend: str, folder: Path, info: Mapping[str, list], prefix: str) -> None:
    """Refuse a transformers load that left weights under ``prefix`` at their random initialization."""
    absent = [key for key in (*info.get("missing_keys", ()), *info.get("mismatched_keys", ())) if str(key).startswith(prefix)]
    if absent:
        raise FrontendError(f"{frontend}: {folder} lacks {len(absent)} weights of the encoder (e.g. {absent[0]}); is it the right network?")


# --------------------------------------------------------------------------- pickled checkpoints


class Opaque:
    """Stands in for an object of a class a checkpoint names but adfd will not import: keeps its data, runs nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Opaque:
        obj = object.__new__(cls)
        obj.args = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} placeholder>"


def read_checkpoint(frontend: str, path: Path) -> Any:
    """A torch.save file read with weights_only=True; the non-tensor classes it names come back as Opaque.

    A checkpoint that even so cannot be read (one that fills a dict or list subclass, say) is refused
    with a FrontendError: adfd never unpickles arbitrary objects.
    """
    import torch

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        placeholders = [(type(name.rpartition(".")[2], (Opaque,), {"__module__": "adfd.placeholder"}), name) for name in names]
        with torch.serialization.safe_globals(placeholders):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.PickleError, RuntimeError, ValueError, TypeError, AttributeError, OSError, EOFError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
        # torch wraps the reason in general advice; keep the reason.
        reason = next((line for line in reversed(lines) if not line.startswith(TORCH_ADVICE)), lines[0])
        raise FrontendError(
            f"{frontend}: {path} cannot be read with torch.load(weights_only=True) ({reason}); "
            "adfd does not unpickle arbitrary objects"
        ) from None


# --------------------------------------------------------------------------- SpeechBrain hyperparameters


class Tagged(NamedTuple):
    """A YAML node with a tag (``!new:module.Class``, ``!ref``), kept as data."""

    tag: str
    value: Any


def read_hyperparams(frontend: str, path: Path) -> dict[str, Any]:
    """A SpeechBrain hyperparams.yaml as data: tagged nodes become Tagged, top-level ``!ref <key>`` are resolved."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tagged:
        if isinstance(node, yaml.MappingNode):
            return Tagged("!" + suffix, loader.construct_mapping(node, deep=True))
        if isinstance(node, yaml.SequenceNode):
            return Tagged("!" + suffix, loader.construct_sequence(node, deep=True))
        return Tagged("!" + suffix, loader.construct_scalar(node))

    Loader.add_multi_constructor("!", tagged)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)
    except yaml.YAMLError as err:
        raise FrontendError(f"{frontend}: {path} is not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise FrontendError(f"{frontend}: {path} is not a mapping of hyperparameters")
    return {key: _resolve(value, data) for key, value in data.items()}


def _resolve(value: Any, top: Mapping[str, Any], depth: int = 0) -> Any:
    """value with each ``!ref <key>`` replaced by the top-level entry ``key`` (other references are left as they are)."""
    if isinstance(value, Tagged):
        ref = re.fullmatch(r"<([\w.]+)>", value.value) if value.tag == "!ref" and isinstance(value.value, str) else None
        if ref and ref.group(1) in top and depth < 8:
            return _resolve(top[ref.group(1)], top, depth + 1)
        return Tagged(value.tag, _resolve(value.value, top, depth))
    if isinstance(value, dict):
        return {k: _resolve(v, top, depth) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, top, depth) for v in value]
    return value
