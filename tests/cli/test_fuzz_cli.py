"""The fast subset of bench/fuzz.py: 60 mutated files of every format through `adfd score` and
`adfd featurize` end no batch early, hang none and raise no internal error (issue 15)."""

from __future__ import annotations

from model_factory import tiny_model
from scripts import load_script


def test_mutated_files_never_stop_a_batch(tmp_path):
    fuzz = load_script("bench/fuzz.py")
    model = tiny_model(tmp_path / "m.safetensors", "stft-lf", seed=5)
    report = fuzz.fuzz(60, batch=60, jobs=2, seed=1, timeout=120, per_file=1.0, featurize=True, memory=False,
                       model=[str(model)], keep=tmp_path / "fuzz")
    counts = report["counts"]
    assert counts["score_files"] == counts["featurize_files"] == 60
    assert not report["problems"], report["problems"]
    assert not [k for k in counts if k.endswith(("_abort", "_hang", "_internal"))], counts
    assert 0 < counts["score_files_failed_named"] < 60  # some files are refused, each by name; the rest are scored
    assert set(report["mutations"]) >= {"wav", "flip", "cut"}  # header fields, byte flips and cuts all made


def test_every_seed_format_decodes_and_mutations_are_seeded(tmp_path):
    from adfd_core import audio

    fuzz = load_script("bench/fuzz.py")
    seeds = fuzz.make_seeds(tmp_path / "seeds", seconds=0.5)
    assert set(seeds) == set(fuzz.SEED_FORMATS)
    for path in seeds.values():
        assert abs(len(audio.load(path)) / audio.TARGET_SR - 0.5) < 0.1, path
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    one = fuzz.make_fuzz_files(tmp_path / "a", seeds, 22, seed=7)
    two = fuzz.make_fuzz_files(tmp_path / "b", seeds, 22, seed=7)
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]
    assert list(one.values()) == list(two.values())
