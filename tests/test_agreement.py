"""Judge-versus-people agreement: Cohen's kappa and its interval, against hand values and statsmodels."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pytest_llmeval.results.agreement import Z95, agreement


def pairs_from(table: list[list[int]], labels: tuple[str, ...]) -> list[tuple[str, str, str, str]]:
    out = []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            out += [("s", f"{i}-{j}-{k}", labels[i], labels[j]) for k in range(count)]
    return out


def test_kappa_of_a_hand_worked_table() -> None:
    # people PASS/FAIL (rows) against the judge (columns): p_o = 35/50 = 0.7; row shares .5/.5,
    # column shares .6/.4, so p_e = .5*.6 + .5*.4 = 0.5 and kappa = (0.7 - 0.5) / 0.5 = 0.4
    found = agreement(pairs_from([[20, 5], [10, 15]], ("PASS", "FAIL")), ("PASS", "FAIL"))
    assert found.n == 50 and found.accuracy == pytest.approx(0.7) and found.kappa == pytest.approx(0.4)
    assert found.confusion == ((20, 5), (10, 15))
    assert len(found.disagreements) == 15
    # Fleiss-Cohen-Everitt by hand: A = .4*(1-1.1*.6)^2 + .3*(1-.9*.6)^2 = .04624 + .06348 = .10972
    # B = (1-.4)^2 * (p_01*(c_0+r_1)^2 + p_10*(c_1+r_0)^2) = .36 * (.1*1.1^2 + .2*.9^2) = .36 * .283 = .10188
    # C = (.4 - .5*.6)^2 = .01;  var = (.10972 + .10188 - .01) / ((1 - .5)^2 * 50) = .2016 / 12.5 = .016128
    assert found.kappa_se == pytest.approx(math.sqrt(0.016128), rel=1e-12)
    low, high = found.kappa_interval  # type: ignore[misc]
    assert (low, high) == pytest.approx((0.4 - Z95 * math.sqrt(0.016128), 0.4 + Z95 * math.sqrt(0.016128)))


def test_perfect_agreement_has_kappa_one_and_a_single_shared_label_is_undefined() -> None:
    perfect = agreement(pairs_from([[3, 0], [0, 4]], ("A", "B")))
    assert perfect.kappa == pytest.approx(1.0) and perfect.kappa_se == pytest.approx(0.0, abs=1e-12)
    same = agreement(pairs_from([[5]], ("PASS",)))
    assert same.kappa is None and same.kappa_interval is None
    assert "undefined" in "\n".join(same.lines())
    assert agreement([]).accuracy is None and agreement([]).lines() == ["cases labelled by both: 0"]


def test_the_report_shows_matrix_and_disagreements() -> None:
    text = "\n".join(agreement(pairs_from([[2, 1], [0, 2]], ("PASS", "FAIL")), ("PASS", "FAIL")).lines())
    assert "accuracy: 0.800" in text and "Cohen's kappa: 0.615" in text  # (0.8 - 0.48) / 0.52
    assert "confusion (rows: people, columns: judge):" in text
    assert "  s::0-1-0: people PASS, judge FAIL" in text


tables = st.integers(2, 4).flatmap(lambda k: st.lists(st.lists(st.integers(0, 30), min_size=k, max_size=k), min_size=k, max_size=k))


@given(tables)
def test_kappa_and_its_interval_match_statsmodels(table: list[list[int]]) -> None:
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater", reason="statsmodels is not installed (pip install statsmodels)")
    labels = tuple("ABCD"[: len(table)])
    found = agreement(pairs_from(table, labels), labels)
    assume(found.n > 0 and found.kappa is not None)
    ref = inter_rater.cohens_kappa(table)
    # both compute the same closed forms in float64 over at most 16 cells of counts <= 30:
    # rounding differs by a few ulp per operation, far below 1e-9
    assert found.kappa == pytest.approx(ref.kappa, rel=1e-9, abs=1e-12)
    if math.isnan(ref.std_kappa):
        # one rater used a single label: the variance is exactly 0 (A + B = C), and float rounding
        # made statsmodels' slightly negative; ours clips it: sqrt of a few ulp is below 1e-7
        assert found.kappa_se is not None and found.kappa_se < 1e-7
        return
    # near a zero variance, rounding of ~1e-16 in the variance is ~1e-8 in its square root
    assert found.kappa_se == pytest.approx(ref.std_kappa, rel=1e-9, abs=1e-7)
    low, high = found.kappa_interval  # type: ignore[misc]
    assert low == pytest.approx(max(-1.0, ref.kappa_low), rel=1e-9, abs=1e-12)
    assert high == pytest.approx(min(1.0, ref.kappa_upp), rel=1e-9, abs=1e-12)


def test_a_judge_with_one_label_throughout_is_called_out() -> None:
    # people [[0, 3], [0, 22]] against a judge that always says PASS: p_o = p_e = 0.88, kappa 0
    found = agreement(pairs_from([[22, 0], [3, 0]], ("PASS", "FAIL")), ("PASS", "FAIL"))
    assert found.accuracy == pytest.approx(0.88) and found.kappa == pytest.approx(0.0, abs=1e-12)
    text = "\n".join(found.lines())
    assert "the judge gave one label throughout (PASS): kappa is 0 by construction" in text
    assert "people gave one label" not in text
