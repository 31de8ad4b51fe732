"""Wilson intervals, the exact McNemar test, and suite aggregation."""

from __future__ import annotations

import functools
import math

import pytest
from scipy.stats import binomtest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.paired import (
    min_detectable_drop,
    min_detectable_failures,
    paired_comparison,
    smallest_drop_beyond,
    too_small_to_detect,
)
from pytest_llmeval.results.stats import aggregate_markers, aggregate_suites, binom_cdf_half, mcnemar_exact, wilson_interval, z_for


def rec(suite: str, case_id: str, outcome: str = "pass", **kw) -> CaseRecord:
    return CaseRecord(suite=suite, case_id=case_id, outcome=outcome, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- known values


def test_z_for_95_percent():
    assert z_for(0.95) == pytest.approx(1.959963984540054, abs=1e-12)
    assert z_for(0.99) == pytest.approx(2.5758293035489, abs=1e-9)


def test_wilson_8_of_10():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_edges():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence=1.0)


def test_mcnemar_known_values():
    # b=10, c=2: 2 * P[X <= 2], X ~ Bin(12, 1/2) = 2 * 79 / 4096
    assert mcnemar_exact(10, 2) == pytest.approx(2 * 79 / 4096, rel=1e-12)
    assert mcnemar_exact(10, 2) == pytest.approx(0.0386, abs=1e-4)
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(7, 7) == 1.0
    assert mcnemar_exact(3, 4) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_binomial_cdf_small_matches_brute_force():
    for n in range(0, 30):
        for k in range(-1, n + 2):
            expected = sum(math.comb(n, i) for i in range(0, min(k, n) + 1)) / 2**n if k >= 0 else 0.0
            assert binom_cdf_half(k, n) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_binomial_cdf_large_n_branch_agrees():
    # for odd n, P[X <= (n-1)/2] is exactly one half; 1999 uses exact integers, 2001 logs
    assert binom_cdf_half(999, 1999) == 0.5
    assert binom_cdf_half(1000, 2001) == pytest.approx(0.5, rel=1e-9)
    # a tail against the normal approximation with continuity correction
    n, k = 5000, 2400
    z = (k + 0.5 - n / 2) / math.sqrt(n / 4)
    normal = 0.5 * math.erfc(-z / math.sqrt(2))
    assert binom_cdf_half(k, n) == pytest.approx(normal, rel=0.02)


def test_noise_is_not_significant_but_a_real_drop_is():
    assert mcnemar_exact(4, 3) > 0.5  # a handful of cases flipping both ways
    assert mcnemar_exact(30, 0) < 1e-6  # 15 points down on 200 cases


# ---------------------------------------------------------------- properties


@given(st.integers(0, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_estimate_and_stays_in_unit_interval(kn):
    k, n = kn
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= high <= 1.0
    if n:
        assert low <= k / n <= high


@given(st.integers(1, 200), st.integers(0, 200), st.integers(2, 20))
def test_wilson_narrows_with_n(n, k, m):
    k = min(k, n)
    small = wilson_interval(k, n)
    large = wilson_interval(k * m, n * m)
    assert large[1] - large[0] < small[1] - small[0]


@given(st.integers(1, 500), st.integers(0, 500))
def test_wilson_widens_with_confidence(n, k):
    k = min(k, n)
    narrow = wilson_interval(k, n, 0.80)
    wide = wilson_interval(k, n, 0.99)
    assert wide[0] <= narrow[0] + 1e-12 and wide[1] >= narrow[1] - 1e-12


@given(st.integers(0, 3000), st.integers(0, 3000))
@settings(max_examples=60)
def test_mcnemar_in_unit_interval_and_symmetric(b, c):
    p = mcnemar_exact(b, c)
    assert 0.0 <= p <= 1.0
    assert p == mcnemar_exact(c, b)


@given(st.integers(0, 300), st.integers(0, 300))
def test_mcnemar_more_imbalance_is_more_significant(b, c):
    big, small = max(b, c), min(b, c)
    assert mcnemar_exact(big + 1, small) <= mcnemar_exact(big, small) + 1e-15


# ---------------------------------------------------------------- aggregation


def test_aggregate_counts_rates_and_metrics():
    records = [
        rec("f.py::t", "a", "pass", scores={"f1": 1.0}),
        rec("f.py::t", "b", "fail", reason="wrong", scores={"f1": 0.5}),
        rec("f.py::t", "c", "error", reason="KeyError: x"),
        rec("f.py::t", "d", "pass", scores={"f1": 0.0, "bleu": 0.25}),
        rec("g.py::u", "x", "pass", min_pass_rate=0.9),
    ]
    t, u = aggregate_suites(records, default_min_pass_rate=0.5)
    assert (t.name, t.n, t.passed, t.failed, t.errors) == ("f.py::t", 4, 2, 1, 1)
    assert t.pass_rate == 0.5
    assert t.metrics == {"bleu": 0.25, "f1": pytest.approx(0.5)}
    assert t.outcomes == {"a": "pass", "b": "fail", "c": "error", "d": "pass"}
    assert t.reasons == {"b": "wrong", "c": "KeyError: x"}
    assert t.min_pass_rate == 0.5 and not t.under_min
    assert u.min_pass_rate == 0.9 and u.file == "g.py"
    assert t.interval() == wilson_interval(2, 4)


def test_under_min():
    (s,) = aggregate_suites([rec("f.py::t", "a", "pass"), rec("f.py::t", "b", "fail")], 0.6)
    assert s.under_min
    (s,) = aggregate_suites([rec("f.py::t", "a", "pass"), rec("f.py::t", "b", "fail")], 0.5)
    assert not s.under_min


def test_a_case_reported_twice_counts_once_as_its_worst_phase():
    records = [rec("f.py::t", "a", "pass", scores={"m": 1.0}), rec("f.py::t", "a", "error", reason="teardown")]
    (s,) = aggregate_suites(records)
    assert (s.n, s.passed, s.errors) == (1, 0, 1)
    assert s.metrics == {"m": 1.0}
    (s,) = aggregate_suites(list(reversed(records)))
    assert (s.n, s.passed, s.errors) == (1, 0, 1)


def test_aggregation_does_not_depend_on_arrival_order():
    records = [rec(f"f{i % 3}.py::t", f"c{i}", "pass" if i % 5 else "fail", scores={"s": i / 10}) for i in range(30)]
    assert aggregate_suites(records) == aggregate_suites(list(reversed(records)))


def test_marker_groups_span_suites_and_skip_plumbing_markers():
    records = [
        rec("a.py::t", "1", "pass", markers=("math", "parametrize")),
        rec("b.py::u", "1", "fail", markers=("math", "slow")),
        rec("b.py::u", "2", "pass"),
    ]
    groups = {g.name: g for g in aggregate_markers(records)}
    assert set(groups) == {"math", "slow"}
    assert (groups["math"].n, groups["math"].passed) == (2, 1)
    assert set(groups["math"].outcomes) == {"a.py::t::1", "b.py::u::1"}
    assert not groups["math"].fingerprint and groups["math"].fingerprint.to_json() == {}


def test_paired_comparison():
    before = {"a": True, "b": True, "c": False, "d": False, "old": True}
    after = {"a": False, "b": True, "c": True, "d": False, "new": False}
    p = paired_comparison(before, after)
    assert p.shared == 4
    assert p.newly_failing == ("a",) and p.newly_passing == ("c",)
    assert p.only_before == ("old",) and p.only_after == ("new",)
    assert p.before_rate == 0.5 and p.after_rate == 0.5 and p.delta == 0.0
    assert p.p_value == 1.0
    assert p.direction(0.02, 0.05) == 0


def test_paired_direction_needs_both_size_and_significance():
    before = {f"c{i}": True for i in range(200)}
    after = {k: i >= 30 for i, k in enumerate(before)}  # 30 of 200 newly failing: -15 points
    p = paired_comparison(before, after)
    assert p.delta == pytest.approx(-0.15)
    assert p.direction(0.02, 0.05) == -1
    assert p.direction(0.20, 0.05) == 0  # within a generous tolerance
    assert p.direction(0.02, 1e-12) == 0  # not significant at a tiny alpha
    assert paired_comparison(after, before).direction(0.02, 0.05) == 1


# ---------------------------------------------------------------- the smallest drop a suite can detect


@functools.lru_cache(maxsize=None)
def scipy_mcnemar(b: int, c: int) -> float:
    """The exact McNemar p-value as scipy computes it: a two-sided binomial test on the discordant pairs."""
    return 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue


@given(st.integers(0, 80), st.integers(0, 80))
def test_mcnemar_matches_scipy_binomtest(b: int, c: int):
    assert mcnemar_exact(b, c) == pytest.approx(scipy_mcnemar(b, c), rel=1e-9)


def test_min_detectable_known_values():
    assert min_detectable_failures(0.05) == 6  # 2 * 0.5**6 = 0.031; five give 0.0625
    assert min_detectable_failures(0.01) == 8  # 2 * 0.5**8 = 0.0078; seven give 0.0156
    assert min_detectable_drop(20, 0.05) == 0.3
    assert min_detectable_drop(5, 0.05) is None  # five newly failing cases of five: p = 0.0625
    assert min_detectable_drop(10, 0.0) is None
    assert smallest_drop_beyond(100, 0.02) == 3 and smallest_drop_beyond(20, 0.25) == 6
    assert too_small_to_detect(20, 0.02, 0.05)
    assert not too_small_to_detect(300, 0.02, 0.05)  # a drop of 7 cases (2.3 points) can be called
    assert not too_small_to_detect(20, 0.25, 0.05)  # 20 cases cannot drop between 25 and 30 points
    with pytest.raises(ValueError):
        min_detectable_failures(0.0)


@given(st.floats(1e-9, 1.0))
def test_min_detectable_failures_is_the_first_significant_count(alpha: float):
    k = min_detectable_failures(alpha)
    assert scipy_mcnemar(k, 0) < alpha
    assert k == 1 or scipy_mcnemar(k - 1, 0) >= alpha


@settings(max_examples=60)
@given(st.integers(0, 40), st.sampled_from([0.001, 0.01, 0.05, 0.1, 0.2, 0.5]))
def test_no_split_of_a_smaller_drop_is_significant(n: int, alpha: float):
    """Brute force with scipy over every (newly failing, newly passing) split of n shared cases:
    the smallest net drop any split makes significant is the one min_detectable_drop gives."""
    significant = [b - c for b in range(n + 1) for c in range(n + 1 - b) if b > c and scipy_mcnemar(b, c) < alpha]
    expected = min(significant) / n if significant else None
    assert min_detectable_drop(n, alpha) == expected


def regressed(n: int, k: int, tolerance: float, alpha: float) -> bool:
    """What the gate says of n shared cases of which k newly fail (none newly pass)."""
    before = {f"c{i}": True for i in range(n)}
    after = {key: i >= k for i, key in enumerate(before)}
    return paired_comparison(before, after).direction(tolerance, alpha) == -1


@given(st.integers(1, 400), st.floats(0.0, 0.6), st.floats(1e-4, 0.3))
def test_too_small_means_the_gate_cannot_call_a_drop_just_beyond_the_tolerance(n: int, tolerance: float, alpha: float):
    """Checked against the gate itself: a suite is too small exactly when the smallest drop
    beyond the tolerance that n cases can show is not called REGRESSED."""
    beyond = smallest_drop_beyond(n, tolerance)
    assert beyond is not None  # tolerance < 1
    assert beyond / n > tolerance and (beyond == 1 or (beyond - 1) / n <= tolerance + 1e-12)
    assert too_small_to_detect(n, tolerance, alpha) == (not regressed(n, beyond, tolerance, alpha))
    k = min_detectable_failures(alpha)
    if too_small_to_detect(n, tolerance, alpha) and k <= n:
        assert regressed(n, k, tolerance, alpha)  # drops of the minimum detectable size are called


@given(st.integers(1, 200), st.floats(1e-4, 0.3))
def test_a_larger_suite_detects_smaller_drops(n: int, alpha: float):
    drop = min_detectable_drop(n, alpha)
    larger = min_detectable_drop(n + 1, alpha)
    assert drop is None or (larger is not None and larger < drop)
