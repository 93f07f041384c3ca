"""Shards of a run's inputs, and merging their outputs into the single run's result: the blocks
are deterministic and cover every input once; a merge refuses shards of other runs, twice, or missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import audio_factory as factory
from adfd_core.corpus import Utterance
from adfd_core.featurize import FeaturizeOptions, featurize
from adfd_core.scoretable import ScoreTable, read_scores, write_scores
from adfd_core.shards import Shard, ShardError, mark_score_shard, merge_features, merge_scores
from adfd_core.store import FeatureFile


@pytest.mark.parametrize("n, count", [(0, 3), (2, 5), (10, 3), (11, 4), (100, 7)])
def test_shards_are_contiguous_blocks_that_cover_every_input_once_in_order(n, count):
    items = list(range(n))
    blocks = [Shard(k, count).select(items) for k in range(1, count + 1)]
    assert [x for block in blocks for x in block] == items
    assert max(map(len, blocks)) - min(map(len, blocks)) <= 1  # balanced
    assert blocks == [Shard.parse(f"{k}/{count}").select(items) for k in range(1, count + 1)]


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2"])
def test_a_shard_outside_1_to_n_or_not_k_slash_n_is_refused(text):
    with pytest.raises(ShardError, match="K"):
        Shard.parse(text)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Utterance]:
    root = tmp_path_factory.mktemp("audio")
    utts = [Utterance(f"u{i}", factory.write(root / f"u{i}.wav", factory.vowel(100 + 20 * i, seconds=2.2 + 0.3 * i, seed=i)),
                      "bonafide" if i % 2 else "spoof") for i in range(7)]
    (root / "bad.wav").write_text("not audio")
    return [*utts[:3], Utterance("bad", root / "bad.wav", "spoof"), *utts[3:]]


OPTIONS = FeaturizeOptions(("stft-lf", "wave"), device="cpu", batch_size=4, augment_copies=1)


def _shards(corpus: list[Utterance], folder: Path, count: int, options: FeaturizeOptions = OPTIONS) -> list[Path]:
    paths = []
    for k in range(1, count + 1):
        paths.append(folder / f"s{k}.h5")
        featurize(corpus, paths[-1], options, shard=Shard(k, count))
    return paths


def _same_file(a: Path, b: Path) -> None:
    with FeatureFile(a) as x, FeatureFile(b) as y:
        assert x.attrs["identity"] == y.attrs["identity"]
        for field in ("id", "path", "label", "group", "meta", "content_hash"):
            assert x.column(field) == y.column(field), field
        assert np.array_equal(x.column("duration_s"), y.column("duration_s"))
        for name in x.features:
            assert np.array_equal(x.all_rows(name), y.all_rows(name)), name  # bit-identical
            assert all(np.array_equal(p, q) for p, q in zip(x.extent(name), y.extent(name)))
        assert x.failures() == y.failures() != []


def test_merged_shards_are_the_single_run_file_with_its_identity(corpus, tmp_path):
    featurize(corpus, tmp_path / "whole.h5", OPTIONS)
    shards = _shards(corpus, tmp_path, 3)
    with FeatureFile(shards[0]) as first:
        assert first.provenance["shard"]["index"] == 1 and first.provenance["shard"]["count"] == 3
    merged = merge_features(list(reversed(shards)), tmp_path / "merged.h5")
    assert merged.utterances == 2 * 7 and [f[0] for f in merged.failures] == ["bad", "bad~aug1"]
    _same_file(tmp_path / "whole.h5", tmp_path / "merged.h5")
    # the single run sees the merged file as its own finished output
    assert featurize(corpus, tmp_path / "merged.h5", OPTIONS).up_to_date


def test_merge_refuses_a_missing_shard_a_repeated_one_and_shards_of_another_run(corpus, tmp_path):
    shards = _shards(corpus, tmp_path, 3)
    with pytest.raises(ShardError, match=r"missing shard 2/3"):
        merge_features([shards[0], shards[2]], tmp_path / "m.h5")
    with pytest.raises(ShardError, match=r"shard 1/3 is also given"):
        merge_features([shards[0], shards[0], shards[1], shards[2]], tmp_path / "m.h5")
    other = tmp_path / "other"
    other.mkdir()
    changed = _shards(corpus, other, 3, FeaturizeOptions(("stft-lf",), device="cpu"))
    with pytest.raises(ShardError, match="other inputs, options or models"):
        merge_features([shards[0], changed[1], shards[2]], tmp_path / "m.h5")
    fewer = tmp_path / "fewer.h5"  # shard 3/3 of the inputs less the last
    featurize(corpus[:-1], fewer, OPTIONS, shard=Shard(3, 3))
    with pytest.raises(ShardError, match="other inputs"):
        merge_features([*shards[:2], fewer], tmp_path / "m.h5")
    featurize(corpus, tmp_path / "whole.h5", OPTIONS)
    with pytest.raises(ShardError, match="not a shard output"):
        merge_features([tmp_path / "whole.h5", *shards], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def _score_shard(tmp_path: Path, k: int, count: int, ids: list[str], of: str = "run1", error: bool = False,
                 segments: bool = False) -> Path:
    scores = np.linspace(-2.0, 2.0, len(ids)) + k
    extra = {}
    if error:
        scores[0] = np.nan
        extra["error"] = ["cannot decode"] + [""] * (len(ids) - 1)
    if segments:
        extra["segments"] = ["0.00-2.00:0.5000"] * len(ids)
    table = ScoreTable.build(ids, scores, paths=[f"/a/{i}.wav" for i in ids], extra=extra,
                             provenance={"adfd_version": "0.1.0", "models": [{"sha256": "abc"}], "inputs_sha256": "x",
                                         "identity": "the whole run"})
    path = tmp_path / f"{k}.tsv"
    write_scores(mark_score_shard(table, [f"h{i}" for i in ids], Shard(k, count), of), path)
    return path


def test_merged_score_tables_keep_rows_in_shard_order_and_every_column(tmp_path):
    a = _score_shard(tmp_path, 1, 3, ["a", "b"], segments=True)
    b = _score_shard(tmp_path, 2, 3, ["c"], error=True, segments=True)
    c = _score_shard(tmp_path, 3, 3, ["d", "e"], segments=True)
    merged = merge_scores([c, a, b])
    parts = [read_scores(p) for p in (a, b, c)]
    assert merged.ids == ["a", "b", "c", "d", "e"]
    assert np.array_equal(merged.scores, np.concatenate([t.scores for t in parts]), equal_nan=True)
    assert list(merged.extra) == ["error", "segments"]  # as a single run orders them; no content column
    assert merged.extra["error"] == ["", "", "cannot decode", "", ""]
    from adfd_core.provenance import digest

    made = merged.provenance
    assert made["inputs_sha256"] == digest(sorted((i, f"h{i}") for i in "abcde"))
    assert made["models"] == [{"sha256": "abc"}] and made["identity"] == "the whole run"
    assert [m["index"] for m in made["merged_from"]] == [1, 2, 3] and "shard" not in made


def test_merge_refuses_score_shards_of_another_run_missing_or_not_shards(tmp_path):
    a = _score_shard(tmp_path, 1, 2, ["a"])
    b = _score_shard(tmp_path, 2, 2, ["b"], of="run2")
    with pytest.raises(ShardError, match="other inputs, options or models"):
        merge_scores([a, b])
    with pytest.raises(ShardError, match="missing shard 2/2"):
        merge_scores([a])
    plain = tmp_path / "plain.tsv"
    write_scores(ScoreTable.build(["z"], [1.0]), plain)
    with pytest.raises(ShardError, match="not a shard output"):
        merge_scores([a, plain])
