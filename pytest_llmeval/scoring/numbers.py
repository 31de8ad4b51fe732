"""Numeric answers: find the number a completion gives as its answer, and compare it exactly."""

from __future__ import annotations

import bisect
import decimal
import math
import numbers
import re
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

from pytest_llmeval.scoring.failures import EvalFailure
from pytest_llmeval.scoring.text import check_text

__all__ = ["extract_number", "find_numbers", "assert_number"]

# A literal with more digits, or a larger power of ten, than Python's int() reads by default
# (sys.get_int_max_str_digits) is found but not compared: exact arithmetic on it is unbounded.
MAX_DIGITS = 4300


@dataclass(frozen=True)
class NumberMention:
    """One number written in a text: where it is, its value as a float, and its exact value.

    ``exact`` is the value as a :class:`fractions.Fraction` ("0.1" is exactly 1/10, "1e3" is
    1000); it is ``None`` for a literal longer than :data:`MAX_DIGITS` digits or exponent.
    """

    start: int
    end: int
    value: float
    exact: Fraction | None = field(default=None, compare=False)


def _to_float(x: Fraction) -> float:
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


# -- preprocessing ------------------------------------------------------------------------------

_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(\d+)\s*\}")
_LATEX_TEXT = re.compile(r"\\(?:text|mathrm|textbf|mathbf)\s*\{([^{}]*)\}")


def _prepare(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = text.replace("\u2212", "-").replace("\u2013", "-").replace("\u2014", " - ")
    text = text.replace("{,}", ",").replace("\\$", "$").replace("\\%", "%").replace("**", "")
    text = _LATEX_FRAC.sub(lambda m: f"{m.group(1)}/{m.group(2)}", text)
    return _LATEX_TEXT.sub(lambda m: m.group(1), text)


# -- numbers written with digits ----------------------------------------------------------------

_DIGITS = re.compile(
    r"""
    (?<![\w.])                                   # not glued to a word or a decimal point
    (?P<sign>[-+])?
    (?:
        (?<!/)(?P<num>\d+)/(?P<den>\d+)(?![\d/]|\.\d)  # a simple fraction: 3/4, not a date
      | (?:(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<frac>\.\d+)?|(?P<point>\.\d+))
        (?:                                      # scientific notation: 1.5e3, 1.5 x 10^3
            [eE](?P<exp>[-+]?\d+)(?!\w)
          | \s*(?:[x\u00d7*\u00b7]|\\times|\\cdot)\s*10\s*\^\s*(?:\{\s*(?P<bexp>[-+]?\d+)\s*\}|(?P<pexp>[-+]?\d+))
        )?
    )
    (?:\s*(?P<scale>hundred|thousand|million|billion|trillion)\b)?
    """,
    re.VERBOSE | re.IGNORECASE,
)

_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_SCALE_VALUES = {"hundred": 100, **_SCALES}


def _decimal_literal(digits: str, frac: str, exp: str) -> tuple[Fraction | None, float]:
    """``digits.frac`` times ten to ``exp``: the exact value (None past MAX_DIGITS) and a float."""
    literal = f"{digits or '0'}.{frac or '0'}e{exp or '0'}"
    approx = float(literal)  # float() reads a literal of any length
    if len((digits + frac).lstrip("0")) > MAX_DIGITS or len(exp.lstrip("+-").lstrip("0")) > 6:
        return None, approx
    d = decimal.Decimal(literal)
    if abs(d.adjusted()) > MAX_DIGITS:
        return None, approx
    return Fraction(d), approx


def _ratio(num: str, den: str) -> tuple[Fraction | None, float]:
    num, den = num.lstrip("0") or "0", den.lstrip("0")
    if len(num) > MAX_DIGITS or len(den) > MAX_DIGITS:
        with decimal.localcontext(decimal.Context(prec=20, traps=[])):
            return None, float(decimal.Decimal(num) / decimal.Decimal(den))
    exact = Fraction(int(num), int(den))
    return exact, _to_float(exact)


def _digit_value(m: re.Match[str]) -> tuple[Fraction | None, float] | None:
    if m.group("num") is not None:
        if not m.group("den").lstrip("0"):
            return None  # "x/0" is not a number
        return _ratio(m.group("num"), m.group("den"))
    digits = (m.group("int") or "").replace(",", "")
    frac = (m.group("frac") or m.group("point") or ".")[1:]
    exp = m.group("exp") or m.group("bexp") or m.group("pexp") or ""
    return _decimal_literal(digits, frac, exp)


def _digit_mentions(text: str) -> list[NumberMention]:
    found: list[NumberMention] = []
    for m in _DIGITS.finditer(text):
        if not m.group():
            continue
        parsed = _digit_value(m)
        if parsed is None:
            continue
        exact, value = parsed
        if m.group("scale"):
            scale = _SCALE_VALUES[m.group("scale").lower()]
            exact, value = (None if exact is None else exact * scale), value * scale
        if m.group("sign") == "-":
            exact, value = (None if exact is None else -exact), -value
        found.append(NumberMention(m.start(), m.end(), value, exact))
    return found


# -- numbers written as English words -----------------------------------------------------------

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9,
}
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}
# "one" is also a pronoun: "the correct one", "which one", "one's"
_PRONOUN_BEFORE_ONE = frozenset(
    "the this that which each every any another no some correct right wrong same other little "
    "big last first next".split()
)
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_JOINER = re.compile(r"\s*-\s*|\s+")


@dataclass
class _WordNumber:
    """A spelled-out number being read, one word at a time."""

    start: int
    end: int
    negative: bool = False
    total: int = 0          # completed thousands/millions/... groups
    group: int = 0          # the group below 1000 being read
    group_hundred: bool = False
    last: str = ""          # kind of the last word: unit, teen, tens, hundred, scale, zero, a
    last_scale: int = 0     # the last scale used (a later one must be smaller)

    def value(self) -> int:
        v = self.total + self.group
        return -v if self.negative else v

    def accepts(self, kind: str, value: int) -> bool:
        """Whether the next word of this kind continues the number (else a new number starts)."""
        last = self.last
        if last == "zero":
            return False
        if last == "a":
            return kind in ("hundred", "scale")
        if kind == "unit":
            return last in ("hundred", "scale") or (last == "tens" and self.group % 10 == 0)
        if kind in ("teen", "tens"):
            return last in ("hundred", "scale")
        if kind == "hundred":
            return last in ("unit", "teen", "tens") and not self.group_hundred and 0 < self.group < 100
        if kind == "scale":
            smaller = self.last_scale == 0 or value < self.last_scale
            return last in ("unit", "teen", "tens", "hundred") and self.group > 0 and smaller
        return False

    def add(self, kind: str, value: int) -> None:
        if kind in ("unit", "teen", "tens", "zero"):
            self.group += value
        elif kind == "a":
            self.group = 1
        elif kind == "hundred":
            self.group *= 100
            self.group_hundred = True
        elif kind == "scale":
            self.total += self.group * value
            self.group = 0
            self.group_hundred = False
            self.last_scale = value
        self.last = kind


def _kind(word: str) -> tuple[str, int] | None:
    if word == "zero":
        return "zero", 0
    if word in _UNITS:
        return "unit", _UNITS[word]
    if word in _TEENS:
        return "teen", _TEENS[word]
    if word in _TENS:
        return "tens", _TENS[word]
    if word == "hundred":
        return "hundred", 100
    if word in _SCALES:
        return "scale", _SCALES[word]
    return None


def _word_mentions(text: str) -> list[NumberMention]:
    tokens = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]
    found: list[NumberMention] = []
    current: _WordNumber | None = None
    negative: int | None = None  # where a preceding "negative" starts
    after_and = False     # "one hundred and five": an "and" after hundred/scale may continue

    def finish() -> None:
        nonlocal current
        if current is not None and current.last != "a":
            number = current.value()
            found.append(NumberMention(current.start, current.end, float(number), Fraction(number)))
        current = None

    for i, (start, end, word) in enumerate(tokens):
        joined = i > 0 and _JOINER.fullmatch(text, tokens[i - 1][1], start) is not None
        if not joined:
            finish()
            negative, after_and = None, False
        if word == "and" and current is not None and current.last in ("hundred", "scale") and not after_and:
            after_and = True
            continue
        kind = _kind(word)
        if word == "a" and i + 1 < len(tokens) and tokens[i + 1][2] in _SCALE_VALUES:
            kind = ("a", 1)
        elif word == "one" and _is_pronoun_one(tokens, i):
            kind = None
        if kind is None:
            finish()
            negative, after_and = (start if word == "negative" else None), False
            continue
        name, value = kind
        if current is not None:
            if after_and and name not in ("unit", "teen", "tens"):
                finish()
            elif not current.accepts(name, value):
                finish()
        after_and = False
        if current is None:
            if name in ("hundred", "scale"):  # a bare "hundred" is not a number by itself
                negative = None
                continue
            current = _WordNumber(start if negative is None else negative, end, negative=negative is not None)
            negative = None
        current.add(name, value)
        current.end = end
    finish()
    return found


def _is_pronoun_one(tokens: Sequence[tuple[int, int, str]], i: int) -> bool:
    before = tokens[i - 1][2] if i else ""
    after = tokens[i + 1][2] if i + 1 < len(tokens) else ""
    if before in _PRONOUN_BEFORE_ONE:
        return after not in _SCALE_VALUES
    return after == "another"


def find_numbers(text: str) -> list[NumberMention]:
    """Every number in ``text`` (digits, fractions, scientific notation, or English words), in
    order of position."""
    check_text(text, "find_numbers")
    return _find(_prepare(str.__str__(text)))


def _find(prepared: str) -> list[NumberMention]:
    digits = _digit_mentions(prepared)
    starts = [d.start for d in digits]
    words = [w for w in _word_mentions(prepared) if not _overlaps_any(w, digits, starts)]
    return sorted(digits + words, key=lambda m: m.start)


def _overlaps_any(w: NumberMention, digits: list[NumberMention], starts: list[int]) -> bool:
    """Whether ``w`` overlaps one of ``digits`` (sorted, disjoint spans starting at ``starts``)."""
    i = bisect.bisect_right(starts, w.start)
    return (i > 0 and digits[i - 1].end > w.start) or (i < len(digits) and digits[i].start < w.end)


# -- choosing the answer number -----------------------------------------------------------------

_GSM8K = re.compile(r"####")
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
    found = _find(text)
    if not found:
        return None
    mentions = _Mentions(found)
    # 1. GSM8K style "#### 42"
    marks = list(_GSM8K.finditer(text))
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
    pick = _answer_mention(_prepare(str.__str__(text)))
    return None if pick is None else pick.value


def _answer(text: str) -> NumberMention | None:
    return _answer_mention(_prepare(text))


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
        mentions = _find(_prepare(str.__str__(expected)))
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


def _tolerance(value: object, name: str, scorer: str) -> Fraction:
    what = f"{scorer}() {name}"
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal, Fraction)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}; pass e.g. 0.01")
    exact = _exact_number(value, what) or Fraction(0)
    if exact < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return exact


def _close(got: Fraction, want: Fraction, abs_tol: Fraction, rel_tol: Fraction) -> bool:
    """:func:`math.isclose` on exact values: ``|got - want| <= max(rel_tol * max(|got|, |want|), abs_tol)``."""
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
