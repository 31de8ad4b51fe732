"""TruthfulQA MC2 and GSM8K metrics (lm-eval's definitions; its logged values are in
tests/test_leaderboard_reference.py)."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pytest_llmeval as le
from pytest_llmeval.models.outputs import Ranked
from pytest_llmeval.scoring.leaderboard import _gsm8k_normal
from pytest_llmeval.scoring.recording import collecting_scores


def ranked(lls, choices=None) -> Ranked:
    choices = tuple(choices or (f"choice {i}" for i in range(len(lls))))
    return Ranked(context="Q: ?\nA:", choices=choices, loglikelihoods=tuple(lls), is_greedy=(False,) * len(lls))


def plain_mc2(lls, labels) -> float:
    """The formula as lm-eval writes it: exp, normalise, sum the true ones."""
    probs = [math.exp(v) for v in lls]
    total = sum(probs)
    return sum(p / total for p, f in zip(probs, labels) if f)


lls_and_labels = st.integers(min_value=2, max_value=8).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(min_value=-60, max_value=0), min_size=n, max_size=n),
        st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n).filter(lambda ls: 0 < sum(ls) < len(ls)),
    )
)


# ----------------------------------------------------------------------------- MC2


def test_mc2_is_the_normalised_probability_of_the_true_answers():
    # p = (e^-1, e^-2, e^-3): true mass (e^-1 + e^-3) / (e^-1 + e^-2 + e^-3)
    want = (math.exp(-1) + math.exp(-3)) / (math.exp(-1) + math.exp(-2) + math.exp(-3))
    assert le.mc2_score([-1.0, -2.0, -3.0], [1, 0, 1]) == pytest.approx(want, rel=1e-15)
    assert le.mc2_score(ranked([-1.0, -2.0, -3.0]), [True, False, True]) == pytest.approx(want, rel=1e-15)
    assert le.mc2_score([-5.0, -5.0], [0, 1]) == 0.5


@settings(max_examples=200)
@given(lls_and_labels)
def test_mc2_equals_the_plain_formula(case):
    lls, labels = case
    assert le.mc2_score(lls, labels) == pytest.approx(plain_mc2(lls, labels), rel=1e-12, abs=1e-15)


@settings(max_examples=200)
@given(lls_and_labels, st.floats(min_value=-1000, max_value=0))
def test_mc2_depends_only_on_differences(case, shift):
    lls, labels = case
    shifted = [v + shift for v in lls]
    assert le.mc2_score(shifted, labels) == pytest.approx(le.mc2_score(lls, labels), rel=1e-9, abs=1e-12)


@settings(max_examples=300)
@given(lls_and_labels, st.data())
def test_mc2_moves_at_most_half_the_largest_loglikelihood_change(case, data):
    """The bound the lm-eval parity test relies on: the gradient of mc2 with respect to the
    loglikelihoods has 1-norm 2P(1-P) <= 1/2, so |mc2(a) - mc2(b)| <= max|a - b| / 2."""
    lls, labels = case
    deltas = data.draw(st.lists(st.floats(min_value=-3, max_value=3), min_size=len(lls), max_size=len(lls)))
    moved = [v + d for v, d in zip(lls, deltas)]
    change = abs(le.mc2_score(moved, labels) - le.mc2_score(lls, labels))
    assert change <= max(abs(d) for d in deltas) / 2 + 1e-12


def test_mc2_rises_with_a_true_answer_and_falls_with_a_false_one():
    base = le.mc2_score([-3.0, -2.0, -4.0], [1, 0, 0])
    assert le.mc2_score([-2.5, -2.0, -4.0], [1, 0, 0]) > base
    assert le.mc2_score([-3.0, -1.5, -4.0], [1, 0, 0]) < base


def test_mc2_stays_exact_far_below_exp_range():
    # exp(-900) is 0.0 in float64: the plain formula gives 0/0, the ratio is still e^0 / (e^0 + e^-1)
    lls, labels = [-900.0, -901.0], [1, 0]
    assert [math.exp(v) for v in lls] == [0.0, 0.0]
    assert le.mc2_score(lls, labels) == pytest.approx(1 / (1 + math.exp(-1)), rel=1e-15)
    assert le.mc2_score([-math.inf, -2.0, -3.0], [1, 0, 1]) == pytest.approx(1 / (1 + math.e), rel=1e-15)


@pytest.mark.parametrize(
    "lls, labels, error, message",
    [
        ([-1.0, -2.0], [1], ValueError, "1 labels for 2 choices"),
        ([-1.0, -2.0], [1, 2], ValueError, "1 \\(true\\) or 0 \\(false\\)"),
        ([-1.0, -2.0], [1, 1], ValueError, "at least one true and one false"),
        ([-1.0, -2.0], [0, 0], ValueError, "at least one true and one false"),
        ([-1.0, -2.0], "10", TypeError, "labels must be a list"),
        ([-1.0, -2.0], 1, TypeError, "labels must be a list"),
        ([-1.0, math.nan], [1, 0], ValueError, "got the loglikelihood nan"),
        ([-1.0, math.inf], [1, 0], ValueError, "got the loglikelihood inf"),
        ([-math.inf, -math.inf], [1, 0], ValueError, "every choice has loglikelihood -inf"),
        (["a", "b"], [1, 0], TypeError, "must be numbers"),
        ([], [], ValueError, "no choices"),
        ("ranked", [1, 0], TypeError, "ranked` fixture or a list"),
    ],
)
def test_mc2_bad_arguments_say_what_to_pass(lls, labels, error, message):
    with pytest.raises(error, match=message):
        le.mc2_score(lls, labels)


def test_assert_mc2_records_the_score_and_applies_the_pass_rule():
    r = ranked([-1.0, -2.0, -0.5], ["Yes, it is true.", "Also true.", "A falsehood."])
    value = le.mc2_score(r, [1, 1, 0])
    assert 0.3 < value < 0.5
    with collecting_scores() as scores:
        assert le.assert_mc2(r, [1, 1, 0], min_score=0.3) == value
    assert scores == {"mc2": value}
    with collecting_scores() as scores:
        with pytest.raises(le.EvalFailure) as info:
            le.assert_mc2(r, [1, 1, 0])  # default rule: more mass on the true answers
    assert scores == {"mc2": value}  # recorded for the suite mean even when the case misses
    failure = info.value
    assert failure.score == value and failure.scorer == "assert_mc2"
    assert failure.reason == f"mc2 {value:.3f} is below min_score 0.500; the most likely answer 'A falsehood.' is false"
    assert failure.expected == ["Yes, it is true.", "Also true."] and failure.actual == "A falsehood."
    with collecting_scores() as scores:
        assert le.assert_mc2(r, [1, 1, 0], min_score=0) == value


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        (([-1.0, -2.0], [1, 0]), {}, TypeError, "needs the `ranked` fixture"),
        ((ranked([-1.0, -2.0]), [1, 0]), {"min_score": 1.5}, ValueError, "between 0 and 1"),
        ((ranked([-1.0, -2.0]), [1, 0]), {"min_score": math.nan}, ValueError, "between 0 and 1"),
        ((ranked([-1.0, -2.0]), [1, 0]), {"min_score": "0.5"}, TypeError, "must be a number"),
        ((ranked([-1.0, -2.0]), [1, 0, 0]), {}, ValueError, "3 labels for 2 choices"),
    ],
)
def test_assert_mc2_bad_arguments_are_errors_not_misses(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        le.assert_mc2(*args, **kwargs)


# ----------------------------------------------------------------------------- GSM8K


@pytest.mark.parametrize(
    "text, strict, flexible",
    [
        ("3 + 4 = <<3+4=7>>7\n#### 7\n\n", "7", "7"),
        ("The answer is 42.", None, "42."),
        ("#### -5\nThen #### 6", "-5", "6"),
        ("It costs $1,250.", None, "$1,250."),
        ("####5", None, "5"),
        ("#### ", None, None),
        ("", None, None),
        ("1, 2, 3", None, "3"),
        ("It was -7 degrees.", None, "-7"),
        ("#### 1,000,000", "1,000,000", "1,000,000"),
    ],
)
def test_gsm8k_answer_strict_and_flexible(text, strict, flexible):
    assert le.gsm8k_answer(text) == strict == le.gsm8k_answer(text, "strict")
    assert le.gsm8k_answer(text, "flexible") == flexible


@pytest.mark.parametrize(
    "text, answer, strict, flexible",
    [
        ("so 5 * 12 = 60\n#### 60", "60", 1.0, 1.0),
        ("#### 1,234", "1234", 1.0, 1.0),  # commas dropped on both sides
        ("It costs $1,250.", "1250", 0.0, 1.0),  # "$" and a final period dropped
        ("#### 4250", "2500 + 1750 = 4250\n#### 4,250", 1.0, 1.0),  # the worked solution as reference
        ("#### 3.", "3", 1.0, 1.0),
        ("#### 7\nand then 8", "7", 1.0, 0.0),  # flexible takes the last number
        ("no number", "3", 0.0, 0.0),
        ("#### 0.50", "0.5", 0.0, 0.0),  # text, not numeric, comparison (as lm-eval)
    ],
)
def test_gsm8k_exact_match(text, answer, strict, flexible):
    assert le.gsm8k_exact_match(text, answer) == strict
    assert le.gsm8k_exact_match(text, answer, "flexible") == flexible


def test_assert_gsm8k_records_both_figures_and_judges_by_mode():
    text = "She has 3 + 4 = 7 apples. The answer is 7."
    with collecting_scores() as scores:
        with pytest.raises(le.EvalFailure) as info:
            le.assert_gsm8k(text, "7")
    assert scores == {"strict_match": 0.0, "flexible_extract": 1.0}
    assert info.value.reason == "strict extraction found no '#### <number>' line; expected 7"
    with collecting_scores() as scores:
        assert le.assert_gsm8k(text, 7, mode="flexible") == 1.0
    assert scores == {"strict_match": 0.0, "flexible_extract": 1.0}
    with pytest.raises(le.EvalFailure) as info:
        le.assert_gsm8k("#### 8", "#### 7", mode="flexible")
    assert info.value.reason == "flexible extraction found 8, expected 7"
    assert (info.value.expected, info.value.actual) == ("7", "8")


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: le.gsm8k_answer("#### 1", "loose"), ValueError, "'strict' or 'flexible'"),
        (lambda: le.assert_gsm8k("#### 1", "1", mode="loose"), ValueError, "'strict' or 'flexible'"),
        (lambda: le.gsm8k_answer(b"#### 1"), TypeError, "as a str"),
        (lambda: le.assert_gsm8k("#### 1", 1.0), TypeError, "reference as a str"),
        (lambda: le.assert_gsm8k("#### 1", True), TypeError, "reference as a str"),
        (lambda: le.gsm8k_exact_match("#### 1", None), TypeError, "reference as a str"),
    ],
)
def test_gsm8k_bad_arguments_are_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# lm-eval's steps written as its config states them, for the property tests below
STRICT = r"#### (\-?[0-9\.\,]+)"
FLEXIBLE = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"
IGNORE = [",", "\\$", "(?s).*#### ", "\\.$"]


def findall_answer(text: str, pattern: str, select: int) -> str | None:
    found = re.findall(pattern, text)
    if not found:
        return None
    match = found[select]
    if isinstance(match, tuple):
        match = next((m for m in match if m), None)
    return None if match is None else match.strip()


def regex_normal(text: str) -> str:
    for pattern in IGNORE:
        text = re.sub(pattern, "", text)
    return text.lower()


gsm_text = st.text(alphabet="#### 0123456789.,$-\nxA", max_size=40)


@settings(max_examples=400)
@given(gsm_text)
def test_gsm8k_answer_equals_findall_with_the_task_regexes(text):
    assert le.gsm8k_answer(text, "strict") == findall_answer(text, STRICT, 0)
    assert le.gsm8k_answer(text, "flexible") == findall_answer(text, FLEXIBLE, -1)


@settings(max_examples=400)
@given(gsm_text)
def test_answer_normalisation_equals_the_task_regexes(text):
    assert _gsm8k_normal(text) == regex_normal(text)


def test_long_texts_are_judged_in_linear_time():
    # "(?s).*#### " applied with re.sub rescans from every position: quadratic on a long text
    # without "#### "; the scorer must not be
    text = "1 " * 200_000 + "so the answer is 5."
    assert le.gsm8k_answer(text, "flexible") == "5."
    assert le.gsm8k_exact_match(text, "#### 5", "flexible") == 1.0
    assert le.gsm8k_answer("#" * 300_000) is None
