"""Regular expressions with ``re``'s syntax and meaning, matched under a time limit.

``re`` cannot be interrupted: a pattern with nested repeats such as ``(a|aa)+$`` can backtrack
for hours on a model's text. The ``regex`` module can (``timeout=``), and in its VERSION0 mode it
reads ``re``'s syntax; so a pattern is checked by ``re``, its flags are translated, and the
escapes whose meaning differs between the two (``\\w``, ``\\d``, ``\\s``, ``\\b`` and their
negations: ``regex`` follows Unicode's newer definitions, ``re`` follows ``str.isalnum``,
``str.isdecimal`` and ``str.isspace``) are spelled out as the classes ``re`` matches.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

import regex

__all__ = ["DEFAULT_TIMEOUT", "BoundedPattern", "check_timeout", "compile_bounded"]

DEFAULT_TIMEOUT = 1.0  # seconds; an ordinary pattern takes microseconds on a completion

# re's flags as the regex module spells them (re.ASCII is 256, which is regex.VERSION1)
_FLAGS = {
    re.IGNORECASE: regex.IGNORECASE,
    re.LOCALE: regex.LOCALE,
    re.MULTILINE: regex.MULTILINE,
    re.DOTALL: regex.DOTALL,
    re.UNICODE: regex.UNICODE,
    re.VERBOSE: regex.VERBOSE,
    re.ASCII: regex.ASCII,
    re.DEBUG: 0,
}
_INLINE_FLAGS = re.compile(r"\(\?([aiLmsux]+)(?:-[imsx]*)?[:)]")
_MAX_UNICODE = 0x10FFFF


def check_timeout(timeout: object, scorer: str, keyword: str = "timeout") -> float | None:
    """A time limit in seconds (``None``: no limit), or ``TypeError``/``ValueError``."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{scorer}() {keyword} must be a number of seconds or None, got {type(timeout).__name__}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"{scorer}() {keyword} must be a positive number of seconds, got {timeout!r}; pass e.g. 5")
    return float(timeout)


@dataclass(frozen=True)
class BoundedPattern:
    """A pattern as its author wrote it (``source``) and compiled for a bounded match."""

    source: str
    compiled: Any  # regex.Pattern

    def matches(self, text: str, timeout: float | None, *, scorer: str, keyword: str, full: bool = False) -> bool:
        """``search`` (``full``: ``fullmatch``) in ``text``, stopped after ``timeout`` seconds.

        An overrun raises ``TimeoutError``: a pattern that backtracks without end is the
        test's bug, not the model's miss.
        """
        try:
            if full:
                found = self.compiled.fullmatch(text, timeout=timeout)
            else:
                found = self.compiled.search(text, timeout=timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{scorer}() gave up on the pattern {clip(self.source)!r} after its {keyword}={timeout:g} s "
                f"limit on a {len(text)}-character text; simplify the pattern (nested or overlapping repeats "
                f"such as (a+)+ or (a|aa)+ backtrack exponentially) or raise the limit, "
                f"e.g. {keyword}={max(10 * (timeout or 1), 10):g}"
            ) from None
        return found is not None


def compile_bounded(pattern: object, flags: object, scorer: str) -> BoundedPattern:
    """``pattern`` (a str, an ``re.Pattern`` or a ``regex.Pattern``) ready for a bounded match.

    A str or ``re.Pattern`` is checked by ``re`` (its syntax, its errors) and compiled by
    ``regex`` to match what ``re`` would; a ``regex.Pattern`` is used as it is.
    """
    if isinstance(flags, bool) or not isinstance(flags, int):
        raise TypeError(f"{scorer}() flags must be re flags (an int), got {type(flags).__name__}; pass e.g. re.IGNORECASE")
    if isinstance(pattern, (re.Pattern, regex.Pattern)):
        if flags:
            raise ValueError(f"{scorer}() cannot add flags to a compiled pattern; put them in re.compile()")
        if not isinstance(pattern.pattern, str):
            raise TypeError(f"{scorer}() needs a str pattern, got a bytes pattern")
        if isinstance(pattern, regex.Pattern):
            return BoundedPattern(pattern.pattern, pattern)
        checked: re.Pattern[str] = pattern
    elif isinstance(pattern, str):
        try:
            checked = re.compile(pattern, flags)
        except (re.error, ValueError, OverflowError, RecursionError) as exc:
            raise ValueError(
                f"{scorer}() got an invalid regular expression {clip(pattern)!r}: {exc}; fix the pattern"
            ) from None
    else:
        raise TypeError(f"{scorer}() needs the pattern as a str or re.Pattern, got {type(pattern).__name__}")
    try:
        return BoundedPattern(checked.pattern, _as_regex(checked.pattern, checked.flags))
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise ValueError(
            f"{scorer}() cannot match {clip(checked.pattern)!r} under a time limit "
            f"({type(exc).__name__}: {exc}); simplify the pattern"
        ) from None


def clip(pattern: str, limit: int = 120) -> str:
    return pattern if len(pattern) <= limit else pattern[: limit - 3] + "..."


# -- re's meaning in regex's syntax


@functools.lru_cache(maxsize=256)
def _as_regex(pattern: str, re_flags: int) -> Any:
    out = regex.VERSION0  # the re-compatible syntax
    for flag, equivalent in _FLAGS.items():
        if re_flags & flag:
            out |= equivalent
            re_flags &= ~flag
    if re_flags:
        raise ValueError(f"unknown flags {re_flags:#x}")
    return regex.compile(_spell_out_classes(pattern, out), out)


def _spell_out_classes(pattern: str, flags: int) -> str:
    """``pattern`` with ``\\w \\W \\d \\D \\s \\S \\b \\B`` written as the classes ``re`` means.

    Under ASCII the two modules agree, so such a pattern is left as it is; so is one with a
    scoped ``(?a:...)``, where the classes would differ inside and outside.
    """
    inline = [m.group(1) for m in _INLINE_FLAGS.finditer(pattern)]
    if "\\" not in pattern or flags & regex.ASCII or any("a" in f for f in inline):
        return pattern
    verbose = bool(flags & regex.VERBOSE) or any("x" in f for f in inline)
    out: list[str] = []
    i, n = 0, len(pattern)
    class_first = -1  # inside [...]: where a "]" would still be literal; else -1
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(_escape(pattern[i + 1], inside=class_first >= 0) or pattern[i : i + 2])
            i += 2
            continue
        if class_first >= 0:
            if c == "]" and i != class_first:
                class_first = -1
        elif c == "[":
            class_first = i + 2 if pattern.startswith("^", i + 1) else i + 1
        elif c == "#" and verbose:  # a comment runs to the end of the line
            end = pattern.find("\n", i)
            end = n if end < 0 else end
            out.append(pattern[i:end])
            i = end
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _escape(letter: str, *, inside: bool) -> str | None:
    """What ``\\<letter>`` means in ``re``, in regex syntax; None when the two agree."""
    kind = letter.lower()
    if kind in ("w", "d", "s"):
        ranges = _ranges(kind, negated=letter.isupper())
        return ranges if inside else f"[{ranges}]"
    if kind == "b" and not inside:  # inside a class \b is a backspace in both
        word = f"[{_ranges('w', negated=False)}]"
        if letter == "b":
            return f"(?:(?<={word})(?!{word})|(?<!{word})(?={word}))"
        guard = r"(?!\A\Z)" if _EMPTY_TEXT_HAS_NO_NONBOUNDARY else ""
        return f"(?:{guard}(?:(?<={word})(?={word})|(?<!{word})(?!{word})))"
    return None


# re's \B does not match in an empty text before Python 3.14
_EMPTY_TEXT_HAS_NO_NONBOUNDARY = re.search(r"\B", "") is None


@functools.lru_cache(maxsize=None)
def _ranges(kind: str, *, negated: bool) -> str:
    """The code points ``re`` matches with ``\\w``, ``\\d`` or ``\\s`` (or their complement), as
    the inside of a regex character class; found by asking ``re`` itself."""
    spans: list[tuple[int, int]] = []
    for first, last in ((0, 0xD7FF), (0xE000, _MAX_UNICODE)):  # a str may hold no lone surrogate here
        block = "".join(map(chr, range(first, last + 1)))
        spans += [(first + m.start(), first + m.end() - 1) for m in re.finditer(f"\\{kind}+", block)]
    if negated:
        spans = _complement(spans)
    return "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in spans)


def _complement(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, start = [], 0
    for lo, hi in spans:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= _MAX_UNICODE:
        out.append((start, _MAX_UNICODE))
    return out
