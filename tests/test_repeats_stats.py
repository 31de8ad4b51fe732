"""Statistics of repeated samples against reference values: pass@k and pass^k against direct
enumeration, the sign-flip test against brute force, McNemar and scipy, Holm against
statsmodels, the cluster-robust standard error against statsmodels' OLS with clustered errors."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.results.baseline import entry_json, parse_baseline
from pytest_llmeval.results.comparison import Comparison, Verdict, adjust_for_suites, compare_suite
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.repeats import (
    cluster_interval,
    cluster_se,
    flaky_cases,
    holm,
    mean_rate,
    pass_at_k,
    pass_hat_k,
    sign_flip_p,
)
from pytest_llmeval.results.paired import min_detectable_failures, paired_comparison, paired_rates
from pytest_llmeval.results.stats import SuiteResult, aggregate_suites, mcnemar_exact, wilson_interval

# float(Fraction) is correctly rounded, and enumeration counts are exact integers, so the
# estimators and their enumerated values agree to the last bit or within one rounding step.
EXACT = 1e-12


@st.composite
def n_c_k(draw: st.DrawFn) -> tuple[int, int, int]:
    n = draw(st.integers(1, 9))
    return n, draw(st.integers(0, n)), draw(st.integers(1, n))


@given(n_c_k())
def test_pass_at_k_equals_enumerating_every_k_subset_of_the_samples(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    any_pass = sum(any(samples[i] for i in s) for s in subsets)
    all_pass = sum(all(samples[i] for i in s) for s in subsets)
    assert pass_at_k(n, c, k) == pytest.approx(any_pass / len(subsets), abs=EXACT)
    assert pass_hat_k(n, c, k) == pytest.approx(all_pass / len(subsets), abs=EXACT)


def test_pass_at_k_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="need 0 <= c <= n"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_hat_k(3, 1, 4)


differences = st.lists(st.tuples(st.integers(0, 4), st.integers(1, 4), st.integers(0, 4), st.integers(1, 4)), max_size=10)


def _diffs(rows: list[tuple[int, int, int, int]]) -> list[Fraction]:
    return [Fraction(min(a, ka), ka) - Fraction(min(b, kb), kb) for a, ka, b, kb in rows]


@given(differences)
def test_sign_flip_p_equals_brute_force_over_every_sign_assignment(rows: list[tuple[int, int, int, int]]) -> None:
    diffs = [d for d in _diffs(rows) if d != 0]
    observed = abs(sum(diffs))
    flips = list(itertools.product((1, -1), repeat=len(diffs)))
    extreme = sum(abs(sum(s * d for s, d in zip(signs, diffs))) >= observed for signs in flips)
    assert sign_flip_p(_diffs(rows)) == pytest.approx(extreme / len(flips), abs=EXACT)


@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 20))
def test_with_one_sample_a_side_the_sign_flip_test_is_exact_mcnemar(b: int, c: int, ties: int) -> None:
    diffs = [Fraction(-1)] * b + [Fraction(1)] * c + [Fraction(0)] * ties
    assert sign_flip_p(diffs) == pytest.approx(mcnemar_exact(b, c), abs=EXACT)


@given(st.dictionaries(st.text("abcdef", min_size=1, max_size=3), st.tuples(st.booleans(), st.booleans()), max_size=30))
def test_k1_repeated_comparison_equals_todays_mcnemar_comparison(cases: dict[str, tuple[bool, bool]]) -> None:
    before = {k: v[0] for k, v in cases.items()}
    after = {k: v[1] for k, v in cases.items()}
    old = paired_comparison(before, after)
    new = paired_rates({k: (int(v), 1) for k, v in before.items()}, {k: (int(v), 1) for k, v in after.items()})
    assert (new.shared, new.newly_failing, new.newly_passing) == (old.shared, old.newly_failing, old.newly_passing)
    assert new.p_value == pytest.approx(old.p_value, abs=EXACT)
    assert new.delta == pytest.approx(old.delta, abs=EXACT)
    assert new.min_detectable_drop(0.05) == old.min_detectable_drop(0.05)


def test_sign_flip_p_against_scipy_permutation_test() -> None:
    stats = pytest.importorskip("scipy.stats", reason="scipy is not installed (pip install scipy)")
    import numpy as np

    before = [Fraction(c, 5) for c in (5, 4, 3, 5, 2, 4, 5, 1, 3, 5, 4)]
    after = [Fraction(c, 5) for c in (3, 4, 1, 2, 2, 3, 5, 0, 4, 2, 1)]
    x, y = np.array([float(v) for v in after]), np.array([float(v) for v in before])
    ref = stats.permutation_test(
        (x, y), lambda a, b: np.sum(a - b), permutation_type="samples", alternative="two-sided", n_resamples=np.inf
    )
    # scipy counts its all-flips distribution exactly, with a relative tie tolerance of 1e-14 per comparison
    assert sign_flip_p([a - b for a, b in zip(after, before)]) == pytest.approx(ref.pvalue, rel=1e-9)


HOLM_CASES = [
    [0.01],
    [0.01, 0.04, 0.03],
    [0.2, 0.2, 0.001, 0.9, 0.049],
    [0.5, 0.01, 0.01, 0.011, 0.3, 0.02, 0.6, 1.0],
    [0.0, 1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625, 0.001953125, 0.0009765625],
]


@pytest.mark.parametrize("p_values", HOLM_CASES)
def test_holm_equals_statsmodels(p_values: list[float]) -> None:
    multitest = pytest.importorskip("statsmodels.stats.multitest", reason="statsmodels is not installed (pip install statsmodels)")
    _, reference, _, _ = multitest.multipletests(p_values, alpha=0.05, method="holm")
    # both multiply each p by a whole number and take running maxima: the same float operations
    assert holm(p_values) == pytest.approx(list(reference), abs=1e-12)


def test_cluster_se_equals_statsmodels_cluster_robust_ols() -> None:
    sm = pytest.importorskip("statsmodels.api", reason="statsmodels is not installed (pip install statsmodels)")
    import numpy as np

    counts = {f"c{i}": (p, 5) for i, p in enumerate([5, 4, 0, 2, 5, 1, 3, 3, 0, 5, 4, 2])}
    y, groups = [], []
    for g, (cid, (passes, k)) in enumerate(counts.items()):
        y += [1.0] * passes + [0.0] * (k - passes)
        groups += [g] * k
    fit = sm.OLS(np.array(y), np.ones((len(y), 1))).fit(cov_type="cluster", cov_kwds={"groups": np.array(groups), "use_correction": False})
    G = len(counts)
    # statsmodels without correction is CR0; ours is CR1 = CR0 * G / (G - 1) in variance
    assert mean_rate(counts) == pytest.approx(float(fit.params[0]), abs=1e-12)
    assert cluster_se(counts) == pytest.approx(float(fit.bse[0]) * math.sqrt(G / (G - 1)), rel=1e-9)


@given(st.lists(st.tuples(st.integers(0, 5), st.just(5)), min_size=1, max_size=30))
def test_cluster_interval_lies_between_the_case_and_the_sample_wilson_widths(rows: list[tuple[int, int]]) -> None:
    counts = {f"c{i}": (min(p, k), k) for i, (p, k) in enumerate(rows)}
    low, high = cluster_interval(counts)
    mean = mean_rate(counts)
    assert 0.0 <= low <= mean <= high <= 1.0
    g, total = len(counts), sum(k for _, k in counts.values())
    # Wilson's width shrinks as n grows; n_eff is kept within [G, total]; 1e-9 covers rounding
    passes = sum(p for p, _ in counts.values())
    if passes * g % total == 0:  # the mean is a whole number of passes out of G: Wilson(G) applies as it is
        wide = wilson_interval(passes * g // total, g)
        assert high - low <= wide[1] - wide[0] + 1e-9
    narrow = wilson_interval(passes, total)
    assert high - low >= narrow[1] - narrow[0] - 1e-9


def test_flaky_cases_are_listed_flakiest_first() -> None:
    counts = {"a": (5, 5), "b": (1, 5), "c": (3, 5), "d": (0, 5), "e": (2, 5)}
    assert [cid for cid, _ in flaky_cases(counts)] == ["c", "e", "b"]


def test_min_detectable_drop_is_the_smallest_significant_drop_with_repeats() -> None:
    k, n, alpha = 4, 40, 0.05
    m = min_detectable_failures(alpha)
    before = {f"c{i}": (4, k) for i in range(n)}
    just = paired_rates(before, {cid: (3, k) if i < m else (4, k) for i, cid in enumerate(before)})
    short = paired_rates(before, {cid: (3, k) if i < m - 1 else (4, k) for i, cid in enumerate(before)})
    assert just.p_value < alpha <= short.p_value
    assert just.min_detectable_drop(alpha) == pytest.approx(-just.delta, abs=EXACT) == pytest.approx(m / (n * k))


def _records(suite: str, passes: dict[str, int], k: int) -> list[CaseRecord]:
    return [
        CaseRecord(suite=suite, case_id=cid, outcome="pass" if r < p else "fail", repeat=r, repeats=k)
        for cid, p in passes.items()
        for r in range(k)
    ]


def test_baseline_stores_passes_out_of_k_and_reads_todays_files() -> None:
    (suite,) = aggregate_suites(_records("t.py::s", {"a": 3, "b": 0, "c": 5}, 5))
    entry = entry_json(suite)
    assert entry["cases"] == {"a": [3, 5], "b": [0, 5], "c": [5, 5]}
    import json

    text = json.dumps({"schema": 1, "suites": {"t.py::s": entry, "t.py::old": {"cases": {"a": 1, "b": 0}}}})
    loaded = parse_baseline(text, path=__import__("pathlib").Path("b.json"))
    assert loaded.suites["t.py::s"].case_passes == {"a": (3, 5), "b": (0, 5), "c": (5, 5)}
    assert loaded.suites["t.py::s"].pass_rate == pytest.approx(8 / 15)
    old = loaded.suites["t.py::old"]
    assert not old.repeated and old.rates() == {"a": (1, 1), "b": (0, 1)}
    with pytest.raises(Exception, match=r"\[passes, samples\]"):
        parse_baseline(json.dumps({"schema": 1, "suites": {"x": {"cases": {"a": [6, 5]}}}}), path=__import__("pathlib").Path("b.json"))


def test_a_repeated_suite_regresses_on_the_case_rates() -> None:
    cases = {f"c{i}": 5 for i in range(30)}
    (before,) = aggregate_suites(_records("t.py::s", cases, 5))
    (after,) = aggregate_suites(_records("t.py::s", {cid: 3 if i < 10 else 5 for i, cid in enumerate(cases)}, 5))
    c = compare_suite(after, before, tolerance=0.02, alpha=0.05)
    assert c.verdict is Verdict.REGRESSED and c.paired is not None and c.paired.rates is not None
    assert c.paired.delta == pytest.approx(-10 * 2 / 5 / 30)
    assert c.paired.p_value == pytest.approx(2 * 0.5**10)


def test_holm_across_suites_changes_a_verdict_the_raw_p_would_give() -> None:
    def suite(name: str, newly_failing: int) -> Comparison:
        before = {f"c{i}": True for i in range(100)}
        after = {k: i >= newly_failing for i, k in enumerate(before)}
        paired = paired_comparison(before, after)
        return Comparison(name, Verdict.REGRESSED if paired.direction(0.02, 0.05) < 0 else Verdict.UNCHANGED, paired=paired)

    found = {"a": suite("a", 6), "b": suite("b", 0), "c": suite("c", 0)}  # p(a) = 2 / 64 = 0.031
    assert found["a"].verdict is Verdict.REGRESSED
    adjusted = adjust_for_suites(found, tolerance=0.02, alpha=0.05)
    assert adjusted["a"].paired.adjusted_p == pytest.approx(3 * 2 / 64)  # smallest of 3: times 3
    assert adjusted["a"].verdict is Verdict.UNCHANGED
    alone = adjust_for_suites({"a": found["a"]}, tolerance=0.02, alpha=0.05)
    assert alone["a"] == found["a"]  # one suite: today's verdict, exactly


def test_results_json_round_trip_keeps_the_samples() -> None:
    (suite,) = aggregate_suites(_records("t.py::s", {"a": 3, "b": 0, "c": 5}, 5))
    again = SuiteResult.from_json("t.py::s", suite.to_json())
    assert again.case_passes == suite.case_passes and again.pass_rate == suite.pass_rate
    assert suite.to_json()["repeats"]["pass_at_k"]["5"] == pytest.approx(2 / 3)


def test_a_samples_jsonl_line_reads_back_as_its_sample() -> None:
    """``merge`` rebuilds records from samples.jsonl lines: the sample's place must survive."""
    from pytest_llmeval.results.report import sample_json

    record = CaseRecord(suite="t.py::s", case_id="a", outcome="fail", repeat=2, repeats=5, require="majority")
    back = CaseRecord.from_json({**sample_json(record), "case_id": "a"})
    assert (back.case_id, back.repeat, back.repeats, back.require) == ("a", 2, 5, "majority")
