"""Numbers in text: every number a completion mentions, in digits (with separators, decimals,
fractions, scientific notation) or in words, with its exact value and where it stands."""

from __future__ import annotations

import bisect
import decimal
import math
import re
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

from pytest_llmeval.scoring.text import check_text

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


def prepare(text: str) -> str:
    if not text.isascii():  # (ASCII text is its own NFKC form and has no format characters or dashes)
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


_NUMBER_WORDS = frozenset({"zero", "hundred", *_UNITS, *_TEENS, *_TENS, *_SCALES})
"""Every word :func:`_kind` reads as part of a number."""


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
    if _NUMBER_WORDS.isdisjoint(t[2] for t in tokens):
        return []  # no word that can be (or make, as "a" does before "thousand") part of a number
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
    return find_prepared(prepare(str.__str__(text)))


def find_prepared(prepared: str) -> list[NumberMention]:
    digits = _digit_mentions(prepared)
    starts = [d.start for d in digits]
    words = [w for w in _word_mentions(prepared) if not _overlaps_any(w, digits, starts)]
    return sorted(digits + words, key=lambda m: m.start)


def _overlaps_any(w: NumberMention, digits: list[NumberMention], starts: list[int]) -> bool:
    """Whether ``w`` overlaps one of ``digits`` (sorted, disjoint spans starting at ``starts``)."""
    i = bisect.bisect_right(starts, w.start)
    return (i > 0 and digits[i - 1].end > w.start) or (i < len(digits) and digits[i].start < w.end)


# -- choosing the answer number -----------------------------------------------------------------

GSM8K_MARK = re.compile(r"####")
