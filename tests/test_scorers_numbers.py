from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from pytest_llmeval.scoring.failures import EvalFailure
from pytest_llmeval.models.outputs import Completion
from pytest_llmeval.scoring import assert_number, extract_number, find_numbers

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def words(n: int, *, hyphen: bool = True, use_and: bool = False) -> str:
    """English words for 0 <= n < 1000, written independently of the code under test."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (("-" if hyphen else " ") + _ONES[ones] if ones else "")
    hundreds, rest = divmod(n, 100)
    head = f"{_ONES[hundreds]} hundred"
    if not rest:
        return head
    return head + (" and " if use_and else " ") + words(rest, hyphen=hyphen)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", 4),
        ("four", 4),
        ("The answer is 4.", 4),
        ("2 + 2 = 4", 4),
        ("Four.", 4),
        ("twenty-one", 21),
        ("one hundred and five", 105),
        ("-3", -3),
        ("1,234", 1234),
        ("3.5", 3.5),
        ("$12", 12),
        ("12%", 12),
        ("#### 42", 42),
        ("\\boxed{7}", 7),
        ("So 3 + 5 = 8. The answer is 8", 8),
        ("The sum of 12 and 30 is 42.", 42),
        # markers win over later numbers
        ("Natalia sold 48/2 = 24 clips in May.\n48 + 24 = 72\n#### 72", 72),
        ("The final answer is $\\boxed{\\frac{1}{2}}$ for 3 cases.", 0.5),
        ("The answer is 8, since 3 + 5 = 8 and 2 < 3.", 8),
        ("The answer is: 2 + 2 = 4", 4),
        ("Answer:\n42", 42),
        ("**Answer:** 17 apples in 3 baskets", 17),
        ("Sure! 2 + 2 = 4. Ask me about 3 more sums.", 4),
        # no marker: the last number
        ("I do not know the answer. It is 5", 5),
        ("First 3, then 7, finally 11", 11),
        # words
        ("The answer is negative five.", -5),
        ("two thousand three hundred and forty-five", 2345),
        ("a hundred", 100),
        ("twelve hundred", 1200),
        ("one million two thousand", 1002000),
        ("The correct one is 5", 5),
        ("5 is the correct one", 5),
        ("one two three", 3),
        # digit forms
        ("x = -3", -3),
        ("5-3=2", 2),
        ("$1,234.50", 1234.5),
        ("It is 3/4", 0.75),
        ("about 1.5 million people", 1_500_000),
        ("\u22127 degrees", -7),  # Unicode minus sign
        ("\uff14\uff12", 42),  # full-width digits
    ],
)
def test_extract_number_examples(text: str, expected: float) -> None:
    assert extract_number(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "no number here", "The answer is unknown.", "a", "hundred"])
def test_extract_number_none(text: str) -> None:
    assert extract_number(text) is None


def test_find_numbers_positions() -> None:
    found = find_numbers("add twenty-one and 3.5")
    assert [(m.start, m.end, m.value) for m in found] == [(4, 14, 21.0), (19, 22, 3.5)]


def test_extract_number_rejects_non_text() -> None:
    with pytest.raises(TypeError, match="as a str"):
        extract_number(4)  # type: ignore[arg-type]


integers = st.integers(min_value=-(10**12), max_value=10**12)


@given(integers)
def test_roundtrip_digits(n: int) -> None:
    assert extract_number(str(n)) == n
    assert extract_number(f"{n:,}") == n


@given(integers, st.sampled_from(["The answer is {}.", "Answer: {}", "So we get {} in total.", "#### {}", "\\boxed{{{}}}"]))
def test_roundtrip_in_sentences(n: int, template: str) -> None:
    assert extract_number(template.format(n)) == n
    assert extract_number(template.format(f"{n:,}")) == n


@given(integers, integers, integers)
def test_roundtrip_equation_result(a: int, b: int, n: int) -> None:
    assert extract_number(f"{a} + {b} = {n}") == n
    assert extract_number(f"We add them: {a} + {b} = {n}. Done.") == n


@given(st.integers(min_value=0, max_value=999), st.booleans(), st.booleans(), st.booleans())
def test_roundtrip_words(n: int, hyphen: bool, use_and: bool, capital: bool) -> None:
    text = words(n, hyphen=hyphen, use_and=use_and)
    if capital:
        text = text.capitalize() + "."
    assert extract_number(text) == n
    assert extract_number(f"The answer is {text}") == n


@given(st.integers(min_value=0, max_value=999))
def test_words_and_digits_agree(n: int) -> None:
    assert assert_number(words(n), n) == 1.0
    assert assert_number(str(n), words(n)) == 1.0


# -- assert_number


def test_assert_number_passes() -> None:
    assert assert_number(Completion("The answer is 4."), 4) == 1.0
    assert assert_number("four", "4") == 1.0
    assert assert_number("1,234", "1,234") == 1.0
    assert assert_number("0.333", 1 / 3, abs_tol=0.001) == 1.0
    assert assert_number("101", 100, rel_tol=0.02) == 1.0
    assert assert_number("3.0", 3) == 1.0


def test_assert_number_failure_message() -> None:
    with pytest.raises(EvalFailure) as info:
        assert_number("2 + 2 = 5", 4)
    err = info.value
    assert err.reason == "answer number is 5, expected 4"
    assert err.expected == 4 and err.actual == "2 + 2 = 5"
    assert err.scorer == "assert_number" and err.score == 0.0
    assert "expected: 4" in str(err)


def test_assert_number_no_number() -> None:
    with pytest.raises(EvalFailure, match="no number found in the text, expected 4"):
        assert_number("I cannot say.", "four")


@pytest.mark.parametrize(
    ("expected", "kwargs", "error"),
    [
        ("four apples and 3 pears", {}, ValueError),
        ("many", {}, ValueError),
        (float("nan"), {}, ValueError),
        (True, {}, TypeError),
        (None, {}, TypeError),
        (4, {"abs_tol": -1}, ValueError),
        (4, {"rel_tol": "0.1"}, TypeError),
    ],
)
def test_assert_number_bad_arguments(expected, kwargs, error) -> None:
    with pytest.raises(error):
        assert_number("4", expected, **kwargs)
