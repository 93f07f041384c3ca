"""t-DCF against cases worked by hand: the ASV operating point, ASVspoof 2019's and 2021's min t-DCF."""

from __future__ import annotations

import pytest

from adfd_core import tdcf

# ASV scores. Sorted: -2 n, -1 n, 0 n, 1 t, 2 t, 2.5 n, 3 t, 4 t. After rejecting the 4 lowest, 1 of 4
# targets is rejected and 1 of 4 nontargets (2.5) accepted: EER 25 % at threshold 1 (the 4th score).
# At threshold 1: P_miss_asv = 0 (no target below 1), P_fa_asv = 1/4, spoofs 0 1.5 5 -3: P_fa_spoof_asv = 2/4.
TARGET, NONTARGET, ASV_SPOOF = [1.0, 2.0, 3.0, 4.0], [-2.0, -1.0, 0.0, 2.5], [0.0, 1.5, 5.0, -3.0]

# CM scores. Sorted: -1 s, 1 b, 2 s, 3 b. DET points (P_miss_cm, P_fa_cm): (0, 1) (0, 1/2) (1/2, 1/2) (1/2, 0) (1, 0).
CM_BONA, CM_SPOOF = [3.0, 1.0], [-1.0, 2.0]


@pytest.fixture
def asv():
    return tdcf.asv_operating_point(TARGET, NONTARGET, ASV_SPOOF)


def test_the_asv_operating_point_is_its_eer_threshold(asv):
    assert (asv.eer, asv.threshold) == (0.25, 1.0)
    assert (asv.p_miss, asv.p_fa, asv.p_fa_spoof) == (0.0, 0.25, 0.5)
    assert (asv.n_target, asv.n_nontarget, asv.n_spoof) == (4, 4, 4)


def test_min_tdcf_2019_hand_case(asv):
    # C1 = 0.9405 (1 - 1 * 0) - 0.0095 * 10 * 0.25 = 0.91675; C2 = 10 * 0.05 * (1 - 0.5) = 0.25
    # C1 P_miss + C2 P_fa over the DET points: 0.25, 0.125, 0.583375, 0.458375, 0.91675; min 0.125
    # normalized by min(C1, C2) = 0.25: 0.5
    assert tdcf.min_tdcf_2019(CM_BONA, CM_SPOOF, asv) == pytest.approx(0.5)


def test_min_tdcf_2021_hand_case(asv):
    # C0 = 0.9405 * 1 * 0 + 0.0095 * 10 * 0.25 = 0.02375; C1 = 0.9405 - C0 = 0.91675; C2 = 0.05 * 10 * 0.5 = 0.25
    # C0 + C1 P_miss + C2 P_fa over the DET points: 0.27375, 0.14875, 0.607125, 0.482125, 0.9405; min 0.14875
    # normalized by C0 + min(C1, C2) = 0.27375
    assert tdcf.min_tdcf_2021(CM_BONA, CM_SPOOF, asv) == pytest.approx(0.14875 / 0.27375)


def test_a_perfect_cm_leaves_only_the_asv_errors(asv):
    # a CM that separates the classes reaches P_miss_cm = P_fa_cm = 0: the 2019 t-DCF is 0, the 2021 one C0 / (C0 + min(C1, C2))
    assert tdcf.min_tdcf_2019([5.0, 6.0], [-5.0, -6.0], asv) == 0.0
    assert tdcf.min_tdcf_2021([5.0, 6.0], [-5.0, -6.0], asv) == pytest.approx(0.02375 / 0.27375)
    # an inverted CM can still do no worse than the trivial ones (accept all or reject all): 1
    assert tdcf.min_tdcf_2019([-5.0, -6.0], [5.0, 6.0], asv) == pytest.approx(1.0)
    assert tdcf.min_tdcf_2021([-5.0, -6.0], [5.0, 6.0], asv) == pytest.approx(1.0)


def test_the_official_asv_score_file_formats_are_read(tmp_path):
    lines = [f"LA_0001 LA_E_{i} target {s}" for i, s in enumerate(TARGET)]
    lines += [f"LA_0002 LA_E_{10 + i} nontarget {s}" for i, s in enumerate(NONTARGET)]
    lines += [f"LA_0003 LA_E_{20 + i} spoof {s}" for i, s in enumerate(ASV_SPOOF)]
    four = tmp_path / "asv.txt"
    four.write_text("\n".join(lines) + "\n")
    trials = tdcf.read_asv_scores(four)
    assert trials.operating_point() == tdcf.asv_operating_point(TARGET, NONTARGET, ASV_SPOOF, source=str(four))
    # a group's t-DCF counts the ASV's spoof trials of its own utterances: LA_E_21 and LA_E_22 score 1.5 and 5
    assert trials.operating_point(["LA_E_21", "LA_E_22", "LA_E_99"]).p_fa_spoof == 1.0
    assert trials.operating_point(["LA_E_20"]).n_spoof == 1
    assert trials.operating_point(["nowhere"]).n_spoof == 4  # none of its utterances: every spoof trial
    three = tmp_path / "asv19.txt"  # ASVspoof 2019's SOURCE KEY SCORE: spoof trials named by their attack
    attacks = iter(["A07", "A07", "A08", "A08"])
    three.write_text("".join(f"{next(attacks) if line.split()[2] == 'spoof' else 'bonafide'} {' '.join(line.split()[2:])}\n"
                             for line in lines))
    assert tdcf.read_asv_scores(three).operating_point().p_fa_spoof == 0.5
    assert tdcf.read_asv_scores(three).operating_point(name="A08").p_fa_spoof == 0.5  # 5 and -3
    assert tdcf.read_asv_scores(three).operating_point(name="A07").p_fa_spoof == 0.5  # 0 and 1.5


@pytest.mark.parametrize(
    "text, message",
    [
        ("LA_0001 LA_E_1 target 1.0\nLA_0001 LA_E_2 nontarget x\n", r"asv\.txt:2: score 'x' is not a number"),
        ("LA_0001 LA_E_1 1.0\n", r"asv\.txt:1: no target, nontarget or spoof"),
        ("LA_0001 LA_E_1 target 1.0\nLA_0001 LA_E_2 nontarget 0.0\n", r"asv\.txt: no spoof trials"),
    ],
)
def test_unusable_asv_score_files_are_named(tmp_path, text, message):
    path = tmp_path / "asv.txt"
    path.write_text(text)
    with pytest.raises(tdcf.AsvScoreError, match=message):
        tdcf.read_asv_scores(path)
    with pytest.raises(tdcf.AsvScoreError, match="missing.txt: no such file"):
        tdcf.read_asv_scores(tmp_path / "missing.txt")
