"""What `adfd models` and `adfd info --features` list, read from a JSON file shipped with the package.

Describing the registries means importing torch and building every model on the meta device
(about 8 s and 900 MB); the answer changes only with the code, so it is computed once and stored
in ``catalog.json`` beside this module. ``python -m adfd_core.catalog`` rewrites it, and a test
fails while it differs from what the registries compute (``computed()``).

    [row["name"] for row in models()]      # "cnn.v1", ...; each row as models.describe_all gives it
    config_keys("cnn.v1")                  # ("input_shape", "channels", "dropout", "dense")
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

CATALOG = Path(__file__).with_name("catalog.json")


@cache
def _stored() -> dict[str, list[dict[str, Any]]]:
    return json.loads(CATALOG.read_text(encoding="utf-8"))


def models() -> list[dict[str, Any]]:
    """Every registered model: name, parameters, input_kind, default_feature, description, config (defaults)."""
    return _stored()["models"]


def frontends() -> list[dict[str, Any]]:
    """Every registered front-end: name, version, params (defaults) and row_shape ([] for whole utterances)."""
    return _stored()["frontends"]


def model_names() -> tuple[str, ...]:
    """The registered model names, in registration order."""
    return tuple(row["name"] for row in models())


def config_keys(model: str) -> tuple[str, ...]:
    """The config fields of ``model`` (what ``--set KEY=VALUE`` takes); () for a name not registered."""
    return next((tuple(row["config"]) for row in models() if row["name"] == model), ())


def computed() -> dict[str, list[dict[str, Any]]]:
    """The catalog as the registries compute it now (imports torch; seconds)."""
    from adfd_core.frontends import describe_all as describe_frontends
    from adfd_core.models.registry import describe_all as describe_models

    return {"models": describe_models(), "frontends": describe_frontends()}


def render(catalog: dict[str, list[dict[str, Any]]]) -> str:
    """The catalog as ``catalog.json`` holds it."""
    return json.dumps(catalog, indent=1) + "\n"


if __name__ == "__main__":
    fresh = computed()
    CATALOG.write_text(render(fresh), encoding="utf-8")
    print(f"{CATALOG}: {len(fresh['models'])} models, {len(fresh['frontends'])} front-ends")
