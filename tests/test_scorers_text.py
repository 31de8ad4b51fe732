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


# -- assert_regex under a time limit, with re's meaning


def test_catastrophic_pattern_is_an_error_naming_the_pattern_and_the_fix() -> None:
    with pytest.raises(TimeoutError) as info:
        assert_regex("a" * 60 + "!", r"^(a|aa)+$", timeout=0.05)
    message = str(info.value)
    assert not isinstance(info.value, AssertionError)
    assert "'^(a|aa)+$'" in message and "timeout=0.05 s" in message
    assert "simplify the pattern" in message and "timeout=10" in message
    with pytest.raises(TimeoutError):
        assert_regex("a" * 60 + "!", re.compile(r"(a|aa)+$"), fullmatch=True, timeout=0.05)


def test_nested_repeat_from_the_report_is_a_prompt_miss() -> None:
    err = fails(assert_regex, "a" * 28 + "!", r"^(a+)+$")  # re needs 2**28 steps; regex's engine sees through it
    assert "no match" in err.reason


def test_timeout_argument() -> None:
    assert assert_regex("abc", "b", timeout=None) == 1.0
    assert assert_regex("abc", "b", timeout=3) == 1.0
    with pytest.raises(ValueError, match="positive number of seconds"):
        assert_regex("abc", "b", timeout=0)
    with pytest.raises(ValueError, match="positive number of seconds"):
        assert_regex("abc", "b", timeout=float("inf"))
    with pytest.raises(TypeError, match="number of seconds or None"):
        assert_regex("abc", "b", timeout="1")  # type: ignore[arg-type]


def test_re_flags_keep_their_meaning() -> None:
    assert assert_regex("caf\u00e9", r"^\w+$") == 1.0
    fails(assert_regex, "caf\u00e9", r"^\w+$", flags=re.ASCII)  # re.ASCII is 256, regex's VERSION1
    fails(assert_regex, "caf\u00e9", re.compile(r"^\w+$", re.ASCII))
    assert assert_regex("a\nb", r"^b$", flags=re.MULTILINE) == 1.0
    assert assert_regex("a\nb", r"a.b", flags=re.DOTALL) == 1.0
    assert assert_regex("AB", r" a  b # comment", flags=re.VERBOSE | re.IGNORECASE) == 1.0
    with pytest.raises(TypeError, match="flags must be re flags"):
        assert_regex("x", "x", flags="i")  # type: ignore[arg-type]


def test_word_digit_and_space_classes_mean_what_they_mean_in_re() -> None:
    # the regex module follows Unicode's definitions; re follows str.isalnum/isdecimal/isspace
    fails(assert_regex, "e\u0301", r"^\w+$")  # a combining accent is no word character in re
    assert assert_regex("x\u00b2", r"^\w+$") == 1.0  # a superscript two is one
    assert assert_regex("a\x1cb", r"a\sb") == 1.0  # so is the file separator a space
    assert assert_regex("e\u0301", r"e\b") == 1.0  # so a word ends before it
    assert assert_regex("x\u00b2", r"[\w]{2}", fullmatch=True) == 1.0
    assert assert_regex("e\u0301", r"^[^\W]\W$") == 1.0
    verbose = "\\w+ \\#\\# # a comment with [ and \\w\n \\w$"
    assert assert_regex("caf\u00e9##\u00b2", verbose, flags=re.VERBOSE) == 1.0
    fails(assert_regex, "caf\u00e9##e\u0301", verbose, flags=re.VERBOSE)


def test_re_syntax_is_checked_by_re() -> None:
    for pattern in (r"\p{L}", r"(?<=a|bc)x", r"\K", "a{99999999999}", "(" * 2000 + ")" * 2000):
        with pytest.raises(ValueError, match="invalid regular expression"):
            assert_regex("x", pattern)


def test_a_pattern_too_nested_to_bound_is_a_value_error() -> None:
    nested = "(?:" * 300 + "a" + ")" * 300  # re compiles it; regex's compiler runs out of stack
    with pytest.raises(ValueError, match="cannot match .* under a time limit"):
        assert_regex("a", nested)


def test_a_regex_module_pattern_is_used_as_given() -> None:
    import regex

    assert assert_regex("\u00e9t\u00e9", regex.compile(r"^\p{L}+$")) == 1.0
    with pytest.raises(ValueError, match="compiled pattern"):
        assert_regex("x", regex.compile("x"), flags=re.I)


# where re and the regex module disagree unless the classes are spelled out: combining marks,
# superscripts, connector punctuation, newer digits, control separators; and case-folding specials
_HARD_TEXT = "ab AB1_\n\u00e9e\u0301\u00b2\u093f\u203f\u0663\U00010d40\x1c\u00a0\u212a\u017f\u0130#["
_ATOMS = st.sampled_from(
    ["a", "b", "A", ".", " ", "_", "\u00e9", "#", "\n", r"\[", "\u0301"]
    + [r"\d", r"\D", r"\w", r"\W", r"\s", r"\S", r"\b", r"\B", "^", "$", r"\A", r"\Z"]
    + ["[ab]", "[^a]", "[a-z]", r"[\w]", r"[^\W\d]", r"[\s,]", r"[\b]", r"[]a]", r"[\D\S]", "[#]"]
)
_QUANTIFIERS = st.sampled_from(["", "", "*", "+", "?", "{1,2}", "*?", "+?", "{2}"])


def _pattern(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, children).map("".join),
        st.tuples(children, children).map(lambda p: f"(?:{p[0]}|{p[1]})"),
        st.tuples(children, _QUANTIFIERS).map(lambda p: f"({p[0]}){p[1]}"),
    )


patterns = st.recursive(st.tuples(_ATOMS, _QUANTIFIERS).map("".join), _pattern, max_leaves=6)
flag_sets = st.sampled_from(
    [0, re.IGNORECASE, re.MULTILINE, re.DOTALL, re.ASCII, re.VERBOSE, re.IGNORECASE | re.ASCII, re.VERBOSE | re.IGNORECASE]
)


@given(patterns, st.text(alphabet=_HARD_TEXT, max_size=12), flag_sets, st.booleans())
def test_assert_regex_agrees_with_re(pattern: str, text: str, flags: int, full: bool) -> None:
    try:
        compiled = re.compile(pattern, flags)
    except re.error:
        with pytest.raises(ValueError, match="invalid regular expression"):
            assert_regex(text, pattern, flags=flags)
        return
    expected = (compiled.fullmatch(text.strip()) if full else compiled.search(text)) is not None
    try:
        got = assert_regex(text, pattern, flags=flags, fullmatch=full) == 1.0
    except EvalFailure:
        got = False
    assert got == expected


# -- inputs that must be judged, not crash


_SCORERS = [
    (assert_exact, ("x",)),
    (assert_contains, ("x",)),
    (assert_not_contains, ("x",)),
    (assert_regex, ("x",)),
    (assert_one_of, (["x"],)),
    (assert_max_words, (3,)),
    (assert_max_chars, (3,)),
]


@pytest.mark.parametrize(("fn", "args"), _SCORERS, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("text", [None, 4, b"x", ["x"]], ids=repr)
def test_non_text_is_a_type_error_naming_the_scorer(fn, args, text) -> None:
    with pytest.raises(TypeError, match=f"{fn.__name__}\\(\\) needs .* as a str"):
        fn(text, *args)


@pytest.mark.parametrize(("fn", "args"), _SCORERS, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("text", ["\ud800 lone surrogate", "nul\x00byte", "{" * 100_000, " " * 1_000_000], ids=["surrogate", "nul", "braces", "spaces"])
def test_odd_or_huge_text_is_judged(fn, args, text) -> None:
    try:
        assert fn(text, *args) == 1.0
    except EvalFailure as err:
        assert err.reason and "\n" not in err.reason and len(str(err)) < 1000
