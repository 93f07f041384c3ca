"""heavy_imports: the first import of torch runs with the garbage collector paused, then freezes."""

import gc
import os
import subprocess
import sys

from adfd_core.startup import heavy_imports

FIRST_IMPORT = """
import gc, os, sys
from adfd_core.startup import heavy_imports
collections = []
gc.callbacks.append(lambda phase, info: collections.append(info["generation"]) if phase == "start" else None)
with heavy_imports():
    import torch
during = len(collections)
print(during, gc.isenabled(), gc.get_freeze_count() > 100_000, os.environ["TORCH_DEVICE_BACKEND_AUTOLOAD"])
"""


def _first_import(env_value: str | None) -> list[str]:
    """[collections during the import, collector on after, over 100k objects frozen, autoload setting]."""
    env = {k: v for k, v in os.environ.items() if k != "TORCH_DEVICE_BACKEND_AUTOLOAD"}
    if env_value is not None:
        env["TORCH_DEVICE_BACKEND_AUTOLOAD"] = env_value
    done = subprocess.run([sys.executable, "-c", FIRST_IMPORT], capture_output=True, text=True, env=env, check=True)
    return done.stdout.split()


def test_the_first_import_of_torch_collects_nothing_then_freezes_what_it_made():
    # without the pause, importing torch runs hundreds of collections
    assert _first_import(None) == ["0", "True", "True", "0"]


def test_a_backend_autoload_the_user_set_is_kept():
    assert _first_import("1")[3] == "1"


def test_once_torch_is_imported_nothing_changes():
    __import__("torch")  # the suite has it already; made sure here

    frozen = gc.get_freeze_count()
    with heavy_imports():
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen and gc.isenabled()
