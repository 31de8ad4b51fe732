"""Numeric answers: find the number a completion gives as its answer, and compare it exactly."""

from __future__ import annotations

import bisect
import decimal
import math
import numbers
import re
from fractions import Fraction

from pytest_llmeval.scoring.failures import EvalFailure, hide_misses
from pytest_llmeval.scoring.number_mentions import GSM8K_MARK, MAX_DIGITS, NumberMention, find_numbers, find_prepared, prepare
from pytest_llmeval.scoring.text import check_text

__tracebackhide__ = hide_misses  # a miss shows the test's line and its reason, not this module's code

__all__ = ["extract_number", "find_numbers", "assert_number"]

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER = re.compile(
    r"\banswer\b\s*(?:is|was|would be|will be|should be|equals|=|:)\s*:?",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"\.(?!\d)|[!?;\n]")
_EQUALS = re.compile(r"(?<![<>!=])=(?!=)")
_BEFORE_VALUE = re.compile(r"[\s$€£¥(]*")
_BLANK = re.compile(r"\s*")


class _Mentions:
    """The numbers of a text, sorted by position, with a binary search over their starts."""

    def __init__(self, mentions: list[NumberMention]) -> None:
        self.items = mentions
        self.starts = [m.start for m in mentions]

    def first_from(self, pos: int) -> NumberMention | None:
        i = bisect.bisect_left(self.starts, pos)
        return self.items[i] if i < len(self.items) else None

    def between(self, lo: int, hi: int) -> list[NumberMention]:
        return self.items[bisect.bisect_left(self.starts, lo):bisect.bisect_left(self.starts, hi)]


def _after_last_equals(text: str, mentions: _Mentions, lo: int, hi: int) -> NumberMention | None:
    """The number written right after the last "=" between ``lo`` and ``hi`` that has one."""
    for eq in reversed([m.end() for m in _EQUALS.finditer(text, lo, hi)]):
        m = mentions.first_from(eq)
        if m is not None and m.start < hi and _BEFORE_VALUE.fullmatch(text, eq, m.start):
            return m
    return None


def _in_segment(text: str, mentions: _Mentions, lo: int, hi: int) -> NumberMention | None:
    """The answer within one span: after its last "=", else its first number."""
    inside = mentions.between(lo, hi)
    if not inside:
        return None
    return _after_last_equals(text, mentions, lo, hi) or inside[0]


def _boxed_span(text: str) -> tuple[int, int] | None:
    opens = list(_BOXED.finditer(text))
    if not opens:
        return None
    start = opens[-1].end()
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return start, i
    return start, len(text)


def _after_answer_phrase(text: str, mentions: _Mentions) -> NumberMention | None:
    """The number in the sentence after the last "the answer is" / "Answer:" that has one."""
    ends = [m.start() for m in _SENTENCE_END.finditer(text)]
    for marker in reversed(list(_ANSWER.finditer(text))):
        i = bisect.bisect_left(ends, marker.end())
        stop = ends[i] if i < len(ends) else len(text)
        # "The answer is." / "answer:\n4": look on into the next line when the phrase ends it
        if i < len(ends) and _BLANK.fullmatch(text, marker.end(), stop):
            stop = ends[i + 1] if i + 1 < len(ends) else len(text)
        pick = _in_segment(text, mentions, marker.end(), stop)
        if pick is not None:
            return pick
    return None


def _answer_mention(text: str) -> NumberMention | None:
    found = find_prepared(text)
    if not found:
        return None
    mentions = _Mentions(found)
    # 1. GSM8K style "#### 42"
    marks = list(GSM8K_MARK.finditer(text))
    if marks:
        pick = mentions.first_from(marks[-1].end())
        if pick is not None:
            return pick
    # 2. LaTeX \boxed{...}
    span = _boxed_span(text)
    if span is not None:
        pick = _in_segment(text, mentions, *span)
        if pick is not None:
            return pick
    # 3. "the answer is ...", "Answer: ...": the sentence that follows the last such phrase
    pick = _after_answer_phrase(text, mentions)
    if pick is not None:
        return pick
    # 4. the result of the last equation: "2 + 2 = 4"
    pick = _after_last_equals(text, mentions, 0, len(text))
    if pick is not None:
        return pick
    # 5. the last number in the text
    return found[-1]


def extract_number(text: str) -> float | None:
    """The number ``text`` gives as its answer, or ``None`` when it has none.

    In order: the number after the last GSM8K ``####`` marker; inside the last ``\\boxed{}``;
    in the sentence after the last "answer is" / "answer:"; right after the last "=";
    else the last number in the text. Numbers may be written with digits ("1,234", "-3",
    "3.5", "$12", "12%", "3/4", "2 million", "1.5e3", "1.5 x 10^3") or English words
    ("twenty-one", "one hundred and five"). The float may round a long number; the exact
    value is :func:`find_numbers`' ``exact``, and :func:`assert_number` compares that.

    >>> extract_number("So 3 + 5 = 8. The answer is 8")
    8.0
    >>> extract_number("Twenty-one.")
    21.0
    """
    check_text(text, "extract_number")
    pick = _answer_mention(prepare(str.__str__(text)))
    return None if pick is None else pick.value


def _answer(text: str) -> NumberMention | None:
    return _answer_mention(prepare(text))


# -- exact values -------------------------------------------------------------------------------


def _fmt(x: Fraction) -> str:
    """A number for a reason line: "4", "-3.5", "1/3", else "about 3.1428571428571429E-13"."""
    if x.denominator == 1 and abs(x.numerator) < 10**_SHOWN:
        return str(x.numerator)
    context = decimal.Context(prec=_SHOWN, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[])
    with decimal.localcontext(context) as ctx:
        d = decimal.Decimal(x.numerator) / decimal.Decimal(x.denominator)
        if not ctx.flags[decimal.Inexact] and -_SHOWN < d.adjusted() < _SHOWN:
            return f"{d.normalize():f}"
    if abs(x.numerator) < 10**12 and x.denominator < 10**12:
        return f"{x.numerator}/{x.denominator}"
    with decimal.localcontext(decimal.Context(prec=17, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[])):
        return f"about {(+d).normalize()}"


_SHOWN = 60  # digits a reason line shows in full


def _finite_decimal(d: decimal.Decimal, what: str) -> Fraction:
    if not d.is_finite():
        raise ValueError(f"{what} must be finite, got {d!r}")
    digits = len(d.as_tuple().digits)
    if digits > MAX_DIGITS or abs(d.adjusted()) > MAX_DIGITS:
        raise ValueError(f"{what} {d!r} has more than {MAX_DIGITS} digits or a power of ten beyond it")
    return Fraction(d)


def _exact_float(value: float, what: str) -> Fraction:
    """A float as the decimal it prints as: 0.1 is 1/10, not the binary double next to it."""
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return Fraction(decimal.Decimal(repr(float(value))))


def _exact_number(value: object, what: str) -> Fraction | None:
    """``value`` as an exact Fraction when it is a number type, else None."""
    if type(value) is int:  # the common case, before the abstract-class checks below
        return Fraction(value)
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a number or a numeric string, not a bool")
    if isinstance(value, numbers.Integral):  # int, numpy integers
        return Fraction(int(value))
    if isinstance(value, float):
        return _exact_float(value, what)
    if isinstance(value, decimal.Decimal):
        return _finite_decimal(value, what)
    if isinstance(value, numbers.Rational):
        return Fraction(int(value.numerator), int(value.denominator))
    if isinstance(value, numbers.Real) or hasattr(value, "__float__"):  # numpy floats, tensors
        try:
            as_float = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return _own_decimal(value) or _exact_float(as_float, what)
    return None


def _own_decimal(value: object) -> Fraction | None:
    """The decimal a number type prints itself as, when it reads back as the same value
    (numpy.float32(0.1) prints "0.1"; as a double it is 0.10000000149011612)."""
    text = str(value)
    try:
        d = decimal.Decimal(text)
        same = d.is_finite() and type(value)(text) == value  # type: ignore[call-arg]
    except Exception:  # a type that cannot read its own text back: use its float
        return None
    return Fraction(d) if same and len(d.as_tuple().digits) <= 40 else None


def _expected_value(expected: object, scorer: str) -> Fraction:
    what = f"{scorer}() expected"
    if isinstance(expected, str):
        mentions = find_prepared(prepare(str.__str__(expected)))
        if len(mentions) != 1:
            raise ValueError(
                f"{what} {expected[:80]!r} is not one number; "
                "pass a number such as 4, '4', '1,234', '1e3' or 'four'"
            )
        if mentions[0].exact is None:
            raise ValueError(f"{what} has more than {MAX_DIGITS} digits or a power of ten beyond it")
        return mentions[0].exact
    exact = _exact_number(expected, what)
    if exact is None:
        raise TypeError(f"{what} must be a number or a numeric string, got {type(expected).__name__}")
    return exact


_ZERO = Fraction(0)


def _tolerance(value: object, name: str, scorer: str) -> Fraction:
    if type(value) in (float, int) and value == 0:  # the default (0.0; -0.0 and 0 alike): no tolerance
        return _ZERO
    what = f"{scorer}() {name}"
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal, Fraction)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}; pass e.g. 0.01")
    exact = _exact_number(value, what) or Fraction(0)
    if exact < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return exact


def _close(got: Fraction, want: Fraction, abs_tol: Fraction, rel_tol: Fraction) -> bool:
    """:func:`math.isclose` on exact values: ``|got - want| <= max(rel_tol * max(|got|, |want|), abs_tol)``."""
    if not abs_tol and not rel_tol:  # exact (the default): the same test, without the arithmetic
        return got == want
    diff = abs(got - want)
    return diff <= abs_tol or diff <= rel_tol * max(abs(got), abs(want))


# -- the scorer ---------------------------------------------------------------------------------


def assert_number(
    text: str,
    expected: int | float | str,
    *,
    abs_tol: float = 0.0,
    rel_tol: float = 0.0,
) -> float:
    """Pass when the answer number of ``text`` (see :func:`extract_number`) equals ``expected``,
    exactly by default, or within ``abs_tol`` or ``rel_tol`` (as :func:`math.isclose`).

    ``expected`` may be an int, a float, a ``Decimal``, a ``Fraction`` or a string such as
    ``"4"``, ``"1,234"``, ``"1e3"`` or ``"four"``. Values are compared as exact rationals: a
    float counts as the decimal it prints as (``0.1`` is one tenth), and integers of any size
    are compared digit for digit.
    """
    scorer = "assert_number"
    t = check_text(text, scorer)
    want = _expected_value(expected, scorer)
    atol = _tolerance(abs_tol, "abs_tol", scorer)
    rtol = _tolerance(rel_tol, "rel_tol", scorer)
    got = _answer(t)
    if got is None:
        raise EvalFailure(f"no number found in the text, expected {_fmt(want)}", expected=expected, actual=t, scorer=scorer)
    if got.exact is None:
        raise EvalFailure(
            f"answer number has more than {MAX_DIGITS} digits or a power of ten beyond it, expected {_fmt(want)}",
            expected=expected,
            actual=t,
            scorer=scorer,
        )
    if _close(got.exact, want, atol, rtol):
        return 1.0
    raise EvalFailure(
        f"answer number is {_fmt(got.exact)}, expected {_fmt(want)}",
        expected=expected,
        actual=t,
        scorer=scorer,
    )
