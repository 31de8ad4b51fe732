from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st

from pytest_llmeval.scoring.failures import EvalFailure
from pytest_llmeval.models.outputs import Completion
from pytest_llmeval.scoring import (
    assert_contains,
    assert_exact,
    assert_max_chars,
    assert_max_words,
    assert_not_contains,
    assert_one_of,
    assert_regex,
)


def fails(fn, *args, **kwargs) -> EvalFailure:
    with pytest.raises(EvalFailure) as info:
        fn(*args, **kwargs)
    err = info.value
    assert isinstance(err, AssertionError)
    assert "\n" not in err.reason
    assert err.scorer == fn.__name__
    return err


# -- assert_exact


def test_exact_passes_and_strips_by_default() -> None:
    assert assert_exact("Paris\n", "Paris") == 1.0
    assert assert_exact(Completion(" Paris ", tokens_out=2), "Paris") == 1.0


def test_exact_is_strict_by_default() -> None:
    err = fails(assert_exact, "paris", "Paris")
    assert err.expected == "Paris" and err.actual == "paris"
    assert "character 0" in err.reason
    assert err.score == 0.0
    fails(assert_exact, " Paris", "Paris", strip=False)


def test_exact_flags() -> None:
    assert assert_exact("PARIS", "paris", ignore_case=True) == 1.0
    assert assert_exact("Paris!", "Paris", ignore_punctuation=True) == 1.0
    assert assert_exact("The Paris", "Paris", ignore_articles=True) == 1.0
    err = fails(assert_exact, "PARIS!", "paris", ignore_case=True)
    assert "ignoring case" in err.reason


def test_exact_normalize_true_and_callable() -> None:
    assert assert_exact("  The answer: PARIS. ", "the answer paris", normalize=True) == 1.0
    assert assert_exact("The Paris", "paris", normalize=True, ignore_articles=True) == 1.0
    assert assert_exact("abc", "ABC", normalize=str.upper) == 1.0
    err = fails(assert_exact, "Lyon", "Paris", normalize=True)
    assert "after normalization" in err.reason
    assert "'lyon' vs 'paris'" in err.reason


def test_exact_bad_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError, match="assert_number"):
        assert_exact("4", 4)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="actual text"):
        assert_exact(None, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="normalize must be"):
        assert_exact("x", "x", normalize="yes")  # type: ignore[arg-type]


@given(st.text())
def test_exact_accepts_itself(text: str) -> None:
    assert assert_exact(text, text) == 1.0
    assert assert_exact(text, text, normalize=True) == 1.0


@given(st.from_regex(r"[a-zA-Z ,.!]{1,30}", fullmatch=True))
def test_exact_ignore_case_accepts_other_case(text: str) -> None:
    assert assert_exact(text.swapcase(), text, ignore_case=True) == 1.0
    assert assert_exact(f"  {text.upper()}!!", text, normalize=True) == 1.0


# -- assert_contains / assert_not_contains


def test_contains_any_and_all() -> None:
    assert assert_contains("The capital is PARIS.", "paris") == 1.0
    assert assert_contains("I like tea", ["coffee", "tea"]) == 1.0
    assert assert_contains("full\n  refund now", "full refund") == 1.0  # whitespace runs match
    assert assert_contains("tea and coffee", ("tea", "coffee"), mode="all") == 1.0


def test_contains_failures() -> None:
    err = fails(assert_contains, "I like water", ["coffee", "tea"])
    assert "none of the phrases 'coffee', 'tea'" in err.reason
    assert err.actual == "I like water"
    err = fails(assert_contains, "Paris", "paris", ignore_case=False)
    assert err.reason == "text does not contain 'paris'" and err.expected == "paris"
    err = fails(assert_contains, "tea only", ["tea", "coffee", "milk"], mode="all")
    assert "missing 2 of 3 required phrases: 'coffee', 'milk'" in err.reason
    assert err.score == pytest.approx(1 / 3)


def test_contains_bad_arguments() -> None:
    with pytest.raises(ValueError, match="empty list"):
        assert_contains("x", [])
    with pytest.raises(ValueError, match="empty phrase"):
        assert_contains("x", ["a", " "])
    with pytest.raises(ValueError, match="mode must be"):
        assert_contains("x", "x", mode="some")
    with pytest.raises(TypeError, match="phrases must be str"):
        assert_contains("x", ["a", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="a phrase or a list"):
        assert_contains("x", 3)  # type: ignore[arg-type]


def test_not_contains_names_the_phrase() -> None:
    assert assert_not_contains("We can look into it.", ["refund guaranteed", "full refund"]) == 1.0
    text = "You get a Full Refund, refund guaranteed."
    err = fails(assert_not_contains, text, ["refund guaranteed", "full refund"])
    assert "forbidden phrase 'full refund' at character 10" in err.reason
    assert "and 1 more: 'refund guaranteed'" in err.reason
    assert err.actual == text
    assert "full refund" in err.expected
    assert assert_not_contains("Full Refund", "full refund", ignore_case=False) == 1.0


# -- assert_regex


def test_regex_search_and_fullmatch() -> None:
    assert assert_regex("Order #1234 shipped", r"#\d{4}") == 1.0
    assert assert_regex(" 2024-01-05\n", r"\d{4}-\d\d-\d\d", fullmatch=True) == 1.0
    assert assert_regex("YES", r"yes", flags=re.IGNORECASE) == 1.0
    assert assert_regex("YES", re.compile("yes", re.I)) == 1.0
    err = fails(assert_regex, "on 2024-01-05", r"\d{4}-\d\d-\d\d", fullmatch=True)
    assert "does not fully match the pattern" in err.reason
    err = fails(assert_regex, "no digits", r"\d+")
    assert err.reason == r"text has no match for the pattern '\\d+'"
    assert err.expected == r"/\d+/"


def test_regex_bad_patterns_are_value_errors() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        assert_regex("x", "(unclosed")
    with pytest.raises(ValueError, match="compiled pattern"):
        assert_regex("x", re.compile("x"), flags=re.I)
    with pytest.raises(TypeError):
        assert_regex("x", 5)  # type: ignore[arg-type]


# -- assert_one_of


def test_one_of() -> None:
    assert assert_one_of("Yes.", ["yes", "no"]) == 1.0
    assert assert_one_of(" No ", ("yes", "no")) == 1.0
    err = fails(assert_one_of, "Maybe", ["yes", "no"])
    assert "'maybe' is not one of the 2 options 'yes', 'no'" in err.reason
    assert err.expected == "one of ['yes', 'no']"
    fails(assert_one_of, "Yes.", ["yes"], normalize=False)
    with pytest.raises(TypeError, match="list of str"):
        assert_one_of("yes", "yes")
    with pytest.raises(ValueError, match="no options"):
        assert_one_of("yes", [])


# -- length limits


def test_max_words_and_chars() -> None:
    assert assert_max_words("one two  three", 3) == 1.0
    err = fails(assert_max_words, "one two three four", 3)
    assert err.reason == "text has 4 words, over the limit of 3"
    assert err.expected == "at most 3 words"
    assert assert_max_chars("abcd", 4) == 1.0
    err = fails(assert_max_chars, Completion("abcde"), 4)
    assert err.reason == "text has 5 characters, over the limit of 4"
    assert type(err.actual) is str and err.actual == "abcde"


@pytest.mark.parametrize("fn", [assert_max_words, assert_max_chars])
def test_limits_reject_bad_arguments(fn) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        fn("x", -1)
    with pytest.raises(TypeError, match="as an int"):
        fn("x", 2.5)
    with pytest.raises(TypeError, match="as an int"):
        fn("x", True)
    with pytest.raises(TypeError, match="as a str"):
        fn(b"x", 3)


@given(st.text(), st.integers(min_value=0, max_value=30))
def test_max_words_agrees_with_split(text: str, n: int) -> None:
    words = len(text.split())
    if words <= n:
        assert assert_max_words(text, n) == 1.0
    else:
        with pytest.raises(EvalFailure, match=f"has {words} words, over the limit of {n}"):
            assert_max_words(text, n)


@given(st.text(), st.integers(min_value=0, max_value=30))
def test_max_chars_agrees_with_len(text: str, n: int) -> None:
    if len(text) <= n:
        assert assert_max_chars(text, n) == 1.0
    else:
        with pytest.raises(EvalFailure):
            assert_max_chars(text, n)
