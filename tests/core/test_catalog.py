"""The stored catalog that `adfd models` and `adfd info --features` print: in step with the registries."""

from __future__ import annotations

import json

import pytest

from adfd_core import catalog


@pytest.mark.slow  # imports torch and builds every model on the meta device
def test_stored_catalog_is_what_the_registries_compute():
    stored = json.loads(catalog.CATALOG.read_text(encoding="utf-8"))
    fresh = json.loads(catalog.render(catalog.computed()))
    assert stored == fresh, "adfd_core/catalog.json is stale; regenerate it: python -m adfd_core.catalog"


def test_names_and_config_keys_come_from_the_stored_rows():
    from adfd_core.frontends import available
    from adfd_core.models.registry import available as registered

    assert catalog.model_names() == tuple(registered())
    assert [row["name"] for row in catalog.frontends()] == available()
    assert catalog.config_keys("cnn.v1") == ("input_shape", "channels", "dropout", "dense")
    assert catalog.config_keys("nope.v1") == ()
