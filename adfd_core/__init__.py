"""adfd core library: audio decoding, corpora, front-ends, feature store, models and training.

Imports neither typer nor rich; heavy dependencies (torch, transformers) are imported by the
modules that need them, not here.
"""

__version__ = "0.1.0"
