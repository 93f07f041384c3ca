"""What identifies a front-end's output: its registered name, its version and every parameter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adfd_core.errors import AdfdError


class FrontendError(AdfdError, ValueError):
    """Unknown front-end name, bad parameter or unknown spec version, explained in one line."""


@dataclass(frozen=True)
class FrontendSpec:
    """A front-end's registry name, version (bumped when outputs for the same params change) and
    every parameter (JSON-serializable, including sample_rate and segment_seconds)."""

    name: str
    version: int
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """{'name', 'version', 'params'}: what a feature or model file stores."""
        return {"name": self.name, "version": self.version, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FrontendSpec:
        """Read a stored spec; keys other than name, version and params (e.g. row_shape) are ignored."""
        if not isinstance(d, Mapping) or not {"name", "version", "params"} <= d.keys():
            raise FrontendError(f"not a front-end spec (needs name, version and params): {d!r}")
        name, version, params = d["name"], d["version"], d["params"]
        if not isinstance(name, str) or isinstance(version, bool) or not isinstance(version, int):
            raise FrontendError(f"front-end spec needs a string name and an integer version, got {name!r} v{version!r}")
        if not isinstance(params, Mapping):
            raise FrontendError(f"front-end spec {name!r}: params must be a mapping, got {type(params).__name__}")
        return cls(name, version, dict(params))
