"""Numeric answers: find the number a completion gives as its answer, and compare it."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

from pytest_llmeval.scoring.failures import EvalFailure
from pytest_llmeval.scoring.text import check_text

__all__ = ["extract_number", "find_numbers", "assert_number"]


@dataclass(frozen=True)
class NumberMention:
    """One number written in a text: where it is and its value."""

    start: int
    end: int
    value: float


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
      | (?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)?(?P<frac>\.\d+)?
    )
    (?:\s*(?P<scale>hundred|thousand|million|billion|trillion)\b)?
    """,
    re.VERBOSE | re.IGNORECASE,
)

_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_SCALE_VALUES = {"hundred": 100, **_SCALES}


def _digit_mentions(text: str) -> list[NumberMention]:
    found: list[NumberMention] = []
    for m in _DIGITS.finditer(text):
        sign = -1.0 if m.group("sign") == "-" else 1.0
        if m.group("num") is not None:
            den = int(m.group("den"))
            if den == 0:
                continue
            value = int(m.group("num")) / den
        elif m.group("int") is not None or m.group("frac") is not None:
            value = float((m.group("int") or "0").replace(",", "") + (m.group("frac") or ""))
        else:
            continue
        if m.group("scale"):
            value *= _SCALE_VALUES[m.group("scale").lower()]
        found.append(NumberMention(m.start(), m.end(), sign * value))
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
            found.append(NumberMention(current.start, current.end, float(current.value())))
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
    """Every number in ``text`` (digits, fractions, or English words), in order of position."""
    check_text(text, "find_numbers")
    return _find(_prepare(str.__str__(text)))


def _find(prepared: str) -> list[NumberMention]:
    digits = _digit_mentions(prepared)
    words = [w for w in _word_mentions(prepared) if not any(_overlaps(w, d) for d in digits)]
    return sorted(digits + words, key=lambda m: m.start)


def _overlaps(a: NumberMention, b: NumberMention) -> bool:
    return a.start < b.end and b.start < a.end


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


def _after_last_equals(text: str, mentions: list[NumberMention], lo: int, hi: int) -> NumberMention | None:
    """The number written right after the last "=" between ``lo`` and ``hi`` that has one."""
    for eq in reversed([m.end() for m in _EQUALS.finditer(text, lo, hi)]):
        for m in mentions:
            if m.start >= eq:
                if m.start < hi and _BEFORE_VALUE.fullmatch(text, eq, m.start):
                    return m
                break
    return None


def _in_segment(text: str, mentions: list[NumberMention], lo: int, hi: int) -> NumberMention | None:
    """The answer within one span: after its last "=", else its first number."""
    inside = [m for m in mentions if lo <= m.start < hi]
    if not inside:
        return None
    return _after_last_equals(text, inside, lo, hi) or inside[0]


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


def _answer_mention(text: str) -> NumberMention | None:
    mentions = _find(text)
    if not mentions:
        return None
    # 1. GSM8K style "#### 42"
    marks = list(_GSM8K.finditer(text))
    if marks:
        pick = next((m for m in mentions if m.start >= marks[-1].end()), None)
        if pick is not None:
            return pick
    # 2. LaTeX \boxed{...}
    span = _boxed_span(text)
    if span is not None:
        pick = _in_segment(text, mentions, *span)
        if pick is not None:
            return pick
    # 3. "the answer is ...", "Answer: ...": the sentence that follows the last such phrase
    for marker in reversed(list(_ANSWER.finditer(text))):
        end = _SENTENCE_END.search(text, marker.end())
        stop = end.start() if end else len(text)
        # "The answer is." / "answer:\n4": look on into the next line when the phrase ends it
        if not text[marker.end():stop].strip() and end is not None:
            nxt = _SENTENCE_END.search(text, end.end())
            stop = nxt.start() if nxt else len(text)
        pick = _in_segment(text, mentions, marker.end(), stop)
        if pick is not None:
            return pick
    # 4. the result of the last equation: "2 + 2 = 4"
    pick = _after_last_equals(text, mentions, 0, len(text))
    if pick is not None:
        return pick
    # 5. the last number in the text
    return mentions[-1]


def extract_number(text: str) -> float | None:
    """The number ``text`` gives as its answer, or ``None`` when it has none.

    In order: the number after the last GSM8K ``####`` marker; inside the last ``\\boxed{}``;
    in the sentence after the last "answer is" / "answer:"; right after the last "=";
    else the last number in the text. Numbers may be written with digits ("1,234", "-3",
    "3.5", "$12", "12%", "3/4", "2 million") or English words ("twenty-one",
    "one hundred and five").

    >>> extract_number("So 3 + 5 = 8. The answer is 8")
    8.0
    >>> extract_number("Twenty-one.")
    21.0
    """
    check_text(text, "extract_number")
    pick = _answer_mention(_prepare(str.__str__(text)))
    return None if pick is None else pick.value


# -- the scorer ---------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _expected_value(expected: object, scorer: str) -> float:
    if isinstance(expected, bool):
        raise TypeError(f"{scorer}() expected must be a number or a numeric string, not a bool")
    if isinstance(expected, (int, float)):
        value = float(expected)
    elif isinstance(expected, str):
        mentions = _find(_prepare(expected))
        if len(mentions) != 1:
            raise ValueError(
                f"{scorer}() expected {expected!r} is not one number; "
                "pass a number such as 4, '4', '1,234' or 'four'"
            )
        value = mentions[0].value
    else:
        try:
            value = float(expected)  # numpy scalars, Decimal, Fraction
        except (TypeError, ValueError):
            raise TypeError(
                f"{scorer}() expected must be a number or a numeric string, got {type(expected).__name__}"
            ) from None
    if not math.isfinite(value):
        raise ValueError(f"{scorer}() expected must be finite, got {expected!r}")
    return value


def _tolerance(value: object, name: str, scorer: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{scorer}() {name} must be a number, got {type(value).__name__}")
    if not value >= 0 or not math.isfinite(value):
        raise ValueError(f"{scorer}() {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def assert_number(text: str, expected: int | float | str, *, abs_tol: float = 1e-6, rel_tol: float = 0.0) -> float:
    """Pass when the answer number of ``text`` (see :func:`extract_number`) equals ``expected``
    within ``abs_tol`` or ``rel_tol`` (as :func:`math.isclose`).

    ``expected`` may be an int, a float or a string such as ``"4"``, ``"1,234"`` or ``"four"``.
    """
    scorer = "assert_number"
    t = check_text(text, scorer)
    want = _expected_value(expected, scorer)
    atol = _tolerance(abs_tol, "abs_tol", scorer)
    rtol = _tolerance(rel_tol, "rel_tol", scorer)
    got = extract_number(t)
    if got is None:
        raise EvalFailure(f"no number found in the text, expected {_fmt(want)}", expected=expected, actual=t, scorer=scorer)
    if math.isclose(got, want, rel_tol=rtol, abs_tol=atol):
        return 1.0
    raise EvalFailure(
        f"answer number is {_fmt(got)}, expected {_fmt(want)}",
        expected=expected,
        actual=t,
        scorer=scorer,
    )
