"""A suite's robustness figures: accuracy per perturbation, HELM's worst case, the invariance rate,
and McNemar with Holm (the project's own functions) for each perturbation's drop."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.results.paired import paired_comparison
from pytest_llmeval.results.repeats import holm
from pytest_llmeval.results.robustness import robustness


def test_figures_of_a_small_suite() -> None:
    original = {"a": True, "b": True, "c": False, "d": True}
    variants = {
        "typos": {"a": True, "b": False, "c": False, "d": True},
        "lower": {"a": True, "b": True, "c": True, "d": True},
    }
    r = robustness(original, variants)
    assert (r.n, r.passed, r.accuracy) == (4, 3, 0.75)
    # worst case: a and d pass everywhere; b misses under typos; c misses as written
    assert (r.complete, r.worst_case_passed, r.worst_case) == (4, 2, 0.5)
    # invariant everywhere: a and d (b changes under typos, c under lower)
    assert r.invariance == 0.5
    typos, lower = r.perturbations
    assert (typos.accuracy, typos.invariance) == (0.5, 0.75) and typos.paired.newly_failing == ("b",)
    assert lower.paired.newly_passing == ("c",) and lower.accuracy == 1.0
    assert typos.paired.p_value == paired_comparison(original, variants["typos"]).p_value
    assert [typos.paired.adjusted_p, lower.paired.adjusted_p] == holm([typos.paired.p_value, lower.paired.p_value])
    assert r.as_dict()["perturbations"]["typos"]["newly_failing"] == ["b"]


def test_a_variant_without_a_verdict_leaves_the_worst_case() -> None:
    original = {"a": True, "b": True}
    r = robustness(original, {"typos": {"a": True}})  # b's variant errored
    assert r.complete == 1 and r.worst_case == 1.0
    assert r.perturbations[0].paired.shared == 1 and r.perturbations[0].paired.only_before == ("b",)
    single = robustness(original, {"typos": {"a": False, "b": True}})
    assert single.perturbations[0].paired.adjusted_p is None  # one perturbation: nothing to correct


verdicts = st.dictionaries(st.sampled_from("abcdefgh"), st.booleans(), min_size=1)


@given(verdicts, st.lists(st.booleans(), min_size=8, max_size=8), st.lists(st.booleans(), min_size=8, max_size=8))
def test_worst_case_is_at_most_every_accuracy(original, flips1, flips2) -> None:
    keys = sorted(original)
    variants = {
        "p1": {k: original[k] != f for k, f in zip(keys, flips1)},
        "p2": {k: original[k] != f for k, f in zip(keys, flips2)},
    }
    r = robustness(original, variants)
    assert r.worst_case <= r.accuracy + 1e-12
    for p in r.perturbations:
        assert r.worst_case <= p.accuracy + 1e-12
        assert p.paired.adjusted_p >= p.paired.p_value
    assert 0.0 <= r.invariance <= min(p.invariance for p in r.perturbations) + 1e-12
    if not any(flips1[: len(keys)]) and not any(flips2[: len(keys)]):
        assert r.invariance == 1.0 and r.worst_case == r.accuracy
