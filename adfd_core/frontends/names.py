"""Every front-end's name, without importing torch: the command line checks names (and `featurize`
starts decoding) before torch loads, which costs about a second."""

from __future__ import annotations

TRANSFORMS = ("stft", "cqt", "wt")  # the ensemble paper's transforms ...
FILTERBANK_SUFFIXES = (None, "mel", "gam", "lf")  # ... each alone or through a filterbank: "stft-lf"
ENSEMBLE = tuple(t if bank is None else f"{t}-{bank}" for t in TRANSFORMS for bank in FILTERBANK_SUFFIXES)
OTHERS = ("logspec", "cqt2", "wave")  # the decomposition paper's and WaveSpec's inputs
EMBEDDINGS = ("whisper", "seamless", "speechbrain", "pyannote")  # pre-trained networks (frontends.embeddings)


def available() -> list[str]:
    """Every registered front-end name, sorted."""
    return sorted((*ENSEMBLE, *OTHERS, *EMBEDDINGS))
