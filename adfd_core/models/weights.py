"""State dicts: reading a torch ``.pth`` file without unpickling code, and saying why one does not fit a model."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from adfd_core.models.config import ModelError

_SHOWN = 3  # names listed per kind of mismatch


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a torch state-dict file, loaded with ``weights_only=True`` (tensors and plain containers only)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"weights file {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or corrupt files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"weights file {path} is not a torch state dict: {reason}") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"weights file {path} is not a state dict (a mapping of names to tensors)")
    return dict(state)


def mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], dtypes: bool = False) -> str | None:
    """What keeps ``given`` from loading strictly where ``expected`` is: missing, unexpected and wrongly shaped
    keys, and with ``dtypes`` those of another dtype (a copy would cast them; a model file must match exactly).
    Either side may be meta tensors: only shapes and dtypes are compared."""
    problems = []
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    common = [k for k in expected if k in given]
    wrong = [f"{k} ({_shape(given[k])}, expected {_shape(expected[k])})" for k in common if given[k].shape != expected[k].shape]
    typed = [
        f"{k} ({_dtype(given[k])}, expected {_dtype(expected[k])})"
        for k in common
        if dtypes and given[k].dtype != expected[k].dtype
    ]
    for kind, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong), ("wrong dtype", typed)):
        if names:
            more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
            problems.append(f"{kind}: {', '.join(names[:_SHOWN])}{more}")
    return "; ".join(problems) or None


def load_into(module: nn.Module, state: Mapping[str, torch.Tensor], strict: bool = True, assign: bool = False) -> None:
    """``module.load_state_dict(state)``, with the module's own submodule versions for a state without them.

    A state dict keeps its submodules' versions in a ``_metadata`` attribute, which neither a file nor a
    copy (training's best epoch, a checkpoint) keeps; some modules (torchvision's MNASNet) refuse a state
    dict without their version.
    ``assign=True`` makes ``state``'s tensors the module's own (no copy): how a module built on the
    meta device gets its weights.
    """
    versioned = OrderedDict(state)
    versioned._metadata = getattr(module.state_dict(), "_metadata", OrderedDict())  # type: ignore[attr-defined]
    module.load_state_dict(versioned, strict=strict, assign=assign)


def held_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` with each tensor as the module holds it (detached, not copied): a state-dict
    hook may give some in a storage precision (whisper-probe.v1's float16 encoder), which a checkpoint or
    the best epoch's copy must not lose, or a resumed run would go on from rounded weights."""
    own = {**dict(module.named_parameters(remove_duplicate=False)), **dict(module.named_buffers(remove_duplicate=False))}
    return {key: own[key].detach() if key in own else value for key, value in module.state_dict().items()}


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")
