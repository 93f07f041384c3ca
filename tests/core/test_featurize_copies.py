"""The degraded copies `featurize --augment-copies` adds (adfd_core.featurize.with_copies)."""

from __future__ import annotations

from pathlib import Path

from adfd_core.corpus import Utterance
from adfd_core.featurize import with_copies
from adfd_core.splits import split_utterances


def _corpus() -> list[Utterance]:
    return [
        Utterance("a", Path("/x/a.wav"), "bonafide", speaker="s1", group="text1", meta={"source": "lj"}),
        Utterance("b", Path("/x/b.wav"), "spoof", attack="vits", speaker="s1"),
    ]


def test_each_utterance_is_followed_by_its_copies_which_keep_what_it_is():
    out, recipes = with_copies(_corpus(), 2, seed=0)
    assert [u.id for u in out] == ["a", "a~aug1", "a~aug2", "b", "b~aug1", "b~aug2"]
    assert set(recipes) == {"a~aug1", "a~aug2", "b~aug1", "b~aug2"}
    a1, b2 = out[1], out[5]
    assert (a1.label, a1.speaker, a1.group, a1.path, a1.meta["source"]) == ("bonafide", "s1", "text1", Path("/x/a.wav"), "lj")
    assert (b2.label, b2.attack, b2.group) == ("spoof", "vits", "b")  # ungrouped: grouped with its original
    assert a1.meta["augment"] == str(recipes["a~aug1"]) and a1.meta["augment_of"] == "a"
    assert out[0] == _corpus()[0] and with_copies(_corpus(), 0, seed=0) == (_corpus(), {})


def test_copies_depend_on_seed_id_and_number_only():
    first, _ = with_copies(_corpus(), 3, seed=4)
    alone, _ = with_copies(_corpus()[1:], 3, seed=4)  # another corpus around it changes nothing
    assert first[4:] == alone
    other, _ = with_copies(_corpus(), 3, seed=5)
    assert [u.meta.get("augment") for u in other] != [u.meta.get("augment") for u in first]


def test_a_group_disjoint_split_keeps_copies_with_their_original():
    utts = [Utterance(f"u{i}", Path(f"/x/{i}.wav"), "spoof" if i % 2 else "bonafide") for i in range(20)]
    out, _ = with_copies(utts, 2, seed=0)
    sides = {u.id: side for side, members in split_utterances(out, val=0.3, test=0.0).items() for u in members}
    assert all(sides[u.id] == sides[u.meta["augment_of"]] for u in out if "augment_of" in u.meta)
