from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

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


# -- exact comparison: integers of any size, decimals, fractions, scientific notation


def test_large_integers_are_compared_digit_for_digit() -> None:
    assert assert_number("12345678901234567890", 12345678901234567890) == 1.0
    err = _miss("12345678901234567891", 12345678901234567890)
    assert err.reason == "answer number is 12345678901234567891, expected 12345678901234567890"
    _miss("The answer is 9007199254740993.", 9007199254740992)  # 2**53 + 1: equal as floats
    _miss("9007199254740993", "9,007,199,254,740,992")


def test_decimals_are_exact_by_default() -> None:
    assert assert_number("0.1", 0.1) == 1.0  # a float is the decimal it prints as
    assert assert_number("0.1", Decimal("0.10")) == 1.0
    assert assert_number("1/3", Fraction(1, 3)) == 1.0
    _miss("3.0000001", 3)
    _miss("0.3", 0.1 + 0.2)  # 0.30000000000000004: compare computed floats with a tolerance
    assert assert_number("0.3", 0.1 + 0.2, abs_tol=1e-9) == 1.0


def test_tolerances_are_exact_at_the_boundary() -> None:
    # as floats 1.3 - 1.0 is 0.30000000000000004 > 0.3; exactly it is 0.3
    assert assert_number("1.3", 1, abs_tol=0.3) == 1.0
    _miss("1.31", 1, abs_tol=0.3)
    assert assert_number("110", 100, rel_tol=0.1) == 1.0  # |110 - 100| <= 0.1 * 110
    assert assert_number("111", 100, rel_tol=Fraction(1, 9)) == 1.0  # 11 <= 111/9
    _miss("112.5", 100, rel_tol=0.1)
    assert assert_number("2", 1, abs_tol=Decimal("1")) == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e3", 1000),
        ("1e3", "1e3"),
        ("1000", "1e3"),
        ("1000", "1E+3"),
        ("The answer is 2.5e-3.", Fraction(1, 400)),
        ("1.5 x 10^3", 1500),
        ("$1.5 \\times 10^{6}$", "1.5 million"),
        ("\\boxed{6.02 \\times 10^{23}}", Decimal("6.02e23")),
        ("-4E2", -400),
        ("c = 3 \u00d7 10^8 m/s", "300,000,000"),
    ],
)
def test_scientific_notation(text: str, expected: object) -> None:
    assert assert_number(text, expected) == 1.0


def test_expected_1e3_is_a_thousand_not_one() -> None:
    _miss("1", "1e3")
    assert extract_number("1e3") == 1000.0
    assert [m.exact for m in find_numbers("0.1 and 2/3 and 1.5e3")] == [Fraction(1, 10), Fraction(2, 3), 1500]


def test_number_types_as_expected() -> None:
    import numpy as np

    assert assert_number("3", np.int64(3)) == 1.0
    assert assert_number("0.1", np.float32(0.1)) == 1.0  # the decimal float32 prints as
    assert assert_number("0.25", np.float64(0.25)) == 1.0
    _miss("4", np.int64(3))


ints = st.integers()


@given(ints)
def test_every_integer_passes_itself_and_misses_its_neighbour(n: int) -> None:
    assert assert_number(str(n), n) == 1.0
    assert assert_number(f"The answer is {n:,}.", n) == 1.0
    assert assert_number(str(n), str(n)) == 1.0
    _miss(str(n + 1), n)
    _miss(f"#### {n - 1}", str(n))


decimal_parts = st.tuples(st.integers(min_value=-(10**40), max_value=10**40), st.integers(min_value=-40, max_value=40))


@given(decimal_parts)
def test_every_decimal_passes_itself_and_misses_one_unit_away(parts: tuple[int, int]) -> None:
    mantissa, exponent = parts
    d = Decimal(f"{mantissa}e{exponent}")
    for written in (str(d), f"{d:f}", f"{d:e}"):
        assert assert_number(written, d) == 1.0
        assert assert_number(f"So the answer is {written}.", written) == 1.0
    _miss(str(Decimal(f"{mantissa + 1}e{exponent}")), d)
    _miss(f"{d:f}", Decimal(f"{mantissa - 1}e{exponent}"))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_passes_its_repr(x: float) -> None:
    assert assert_number(repr(x), x) == 1.0


@given(st.integers(), st.integers(min_value=1))
def test_fractions_are_exact(a: int, b: int) -> None:
    assert assert_number(f"{a}/{b}", Fraction(a, b)) == 1.0
    if Fraction(a, b) != Fraction(a + 1, b + 1):
        _miss(f"{a + 1}/{b + 1}", Fraction(a, b))


# -- inputs that must be judged, not crash


def test_numbers_past_the_digit_limit_are_a_miss_not_a_crash() -> None:
    for text in ["9" * 5000, "1e999999999", "1e" + "9" * 10_000, "1/" + "7" * 5000, "0." + "0" * 5000 + "1"]:
        err = _miss(text, 1)
        assert "more than 4300 digits" in err.reason
    assert extract_number("9" * 5000) == float("inf")
    err = _miss("5", 10**5000)  # an expected value too long to print
    assert err.reason.startswith("answer number is 5, expected about 1E+5000")
    assert "expected: <int that cannot be shown" in str(err)


def test_long_completions_are_read_in_linear_time() -> None:
    # an extractor that rescans the text once per number, marker or blank takes minutes here
    assert assert_number(" " * 200_000 + "4", 4) == 1.0
    assert assert_number("one 1 " * 20_000 + "The answer is 7", 7) == 1.0
    assert assert_number("5 " + "answer: " * 50_000, 5) == 1.0
    assert assert_number("= x 1 " * 30_000 + "= 3", 3) == 1.0


@pytest.mark.parametrize(
    ("expected", "error"),
    [
        (float("inf"), ValueError),
        (Decimal("NaN"), ValueError),
        (Decimal("sNaN"), ValueError),
        (Decimal("-Infinity"), ValueError),
        (Decimal("1e999999999"), ValueError),
        ("nan", ValueError),
        ("9" * 5000, ValueError),
        (3 + 4j, TypeError),
        ([4], TypeError),
    ],
)
def test_expected_values_that_are_not_a_finite_number(expected: object, error: type) -> None:
    with pytest.raises(error, match="assert_number\\(\\) expected"):
        assert_number("4", expected)


@pytest.mark.parametrize("kwargs", [{"abs_tol": float("nan")}, {"rel_tol": float("inf")}, {"abs_tol": Decimal("-1")}])
def test_bad_tolerances(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must be"):
        assert_number("4", 4, **kwargs)


@pytest.mark.parametrize("text", [None, 4, b"4", ["4"]])
def test_non_text_completion_is_a_type_error(text: object) -> None:
    with pytest.raises(TypeError, match="assert_number\\(\\) needs text as a str"):
        assert_number(text, 4)  # type: ignore[arg-type]


def _miss(text: str, expected: object, **kwargs: object) -> EvalFailure:
    with pytest.raises(EvalFailure) as info:
        assert_number(text, expected, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in info.value.reason
    return info.value
