"""String scorers: exact match, phrases, regular expressions, options and length limits."""

from __future__ import annotations

import re
from typing import Callable, Iterable, Union

from pytest_llmeval.scoring.bounded_regex import DEFAULT_TIMEOUT, check_timeout, compile_bounded
from pytest_llmeval.scoring.failures import EvalFailure, hide_misses
from pytest_llmeval.scoring.normalize import collapse_whitespace, normalize as _normalize, strip_articles, strip_punctuation

__tracebackhide__ = hide_misses  # a miss shows the test's line and its reason, not this module's code

__all__ = [
    "assert_exact",
    "assert_contains",
    "assert_not_contains",
    "assert_regex",
    "assert_one_of",
    "assert_max_words",
    "assert_max_chars",
]

Normalizer = Union[bool, Callable[[str], str]]


# -- argument checks (a bad argument is the test author's bug: TypeError/ValueError, never EvalFailure)


def check_text(value: object, scorer: str, what: str = "text") -> str:
    """Return ``value`` as a plain ``str`` (a ``Completion`` is one) or raise ``TypeError``."""
    if not isinstance(value, str):
        raise TypeError(
            f"{scorer}() needs {what} as a str (or the completion fixture), got {type(value).__name__}; "
            "pass the completion or str(value)"
        )
    return str.__str__(value)


def check_limit(n: object, scorer: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{scorer}() needs the limit as an int, got {type(n).__name__}; pass e.g. 100")
    if n < 0:
        raise ValueError(f"{scorer}() limit must be >= 0, got {n}; pass a non-negative count")
    return n


def _phrases(needles: object, scorer: str) -> tuple[str, ...]:
    if isinstance(needles, str):
        items: tuple[object, ...] = (needles,)
    elif isinstance(needles, Iterable) and not isinstance(needles, (bytes, dict)):
        items = tuple(needles)
    else:
        raise TypeError(
            f"{scorer}() needs a phrase or a list of phrases, got {type(needles).__name__}; pass e.g. ['refund']"
        )
    if not items:
        raise ValueError(f"{scorer}() got an empty list of phrases; pass at least one phrase")
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{scorer}() phrases must be str, got {type(item).__name__} ({item!r}); pass str(value)")
        if not item.strip():
            raise ValueError(f"{scorer}() got an empty phrase {item!r}; remove it from the list")
    return items


def _quoted(items: Iterable[str], limit: int = 5) -> str:
    items = list(items)
    shown = ", ".join(repr(x) for x in items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


# -- exact match


def _normalizer(
    normalize: Normalizer,
    *,
    ignore_case: bool,
    ignore_punctuation: bool,
    ignore_articles: bool,
    strip: bool,
    scorer: str,
) -> tuple[Callable[[str], str], str]:
    """The function applied to both sides, and a short description of it for the reason line."""
    if callable(normalize) and not isinstance(normalize, bool):
        name = getattr(normalize, "__name__", type(normalize).__name__)
        return normalize, f"after {name}()"
    if not isinstance(normalize, bool):
        raise TypeError(f"{scorer}() normalize must be a bool or a callable, got {type(normalize).__name__}")
    if normalize:
        return (
            lambda s: _normalize(s, strip_articles=ignore_articles),
            "after normalization",
        )
    steps: list[Callable[[str], str]] = []
    notes: list[str] = []
    if strip:
        steps.append(str.strip)
    if ignore_case:
        steps.append(str.casefold)
        notes.append("case")
    if ignore_punctuation:
        steps.append(lambda s: collapse_whitespace(strip_punctuation(s)))
        notes.append("punctuation")
    if ignore_articles:
        steps.append(lambda s: collapse_whitespace(strip_articles(s)))
        notes.append("articles")

    def apply(s: str) -> str:
        for step in steps:
            s = step(s)
        return s

    return apply, ("ignoring " + ", ".join(notes)) if notes else ""


def _first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def assert_exact(
    actual: str,
    expected: str,
    *,
    normalize: Normalizer = False,
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    ignore_articles: bool = False,
    strip: bool = True,
) -> float:
    """Pass when ``actual`` equals ``expected`` after the chosen normalization.

    ``normalize=True`` applies :func:`normalize` (Unicode, case, punctuation, whitespace; articles
    too with ``ignore_articles``); a callable is applied to both sides; otherwise the
    ``ignore_*`` flags and ``strip`` (surrounding whitespace) pick the steps.
    """
    scorer = "assert_exact"
    a = check_text(actual, scorer, "the actual text")
    if not isinstance(expected, str):
        raise TypeError(
            f"{scorer}() needs expected as a str, got {type(expected).__name__}; "
            "use assert_number() for numbers or pass str(expected)"
        )
    fn, how = _normalizer(
        normalize,
        ignore_case=ignore_case,
        ignore_punctuation=ignore_punctuation,
        ignore_articles=ignore_articles,
        strip=strip,
        scorer=scorer,
    )
    na, ne = fn(a), fn(str.__str__(expected))
    if not isinstance(na, str) or not isinstance(ne, str):
        raise TypeError(f"{scorer}() normalize callable must return a str")
    if na == ne:
        return 1.0
    pos = _first_difference(na, ne)
    suffix = f" ({how})" if how else ""
    raise EvalFailure(
        f"text differs from the expected text at character {pos}{suffix}: {na[pos:pos + 20]!r} vs {ne[pos:pos + 20]!r}",
        expected=expected,
        actual=a,
        scorer=scorer,
    )


# -- phrases


def _fold(text: str, ignore_case: bool) -> str:
    text = collapse_whitespace(text)
    return text.casefold() if ignore_case else text


def assert_contains(
    text: str,
    needles: str | Iterable[str],
    *,
    mode: str = "any",
    ignore_case: bool = True,
) -> float:
    """Pass when ``text`` contains any (``mode="any"``) or all (``mode="all"``) of the phrases.

    Matching is by substring; runs of whitespace match any whitespace. On a miss the score is the
    fraction of phrases found.
    """
    scorer = "assert_contains"
    t = check_text(text, scorer)
    phrases = _phrases(needles, scorer)
    if mode not in ("any", "all"):
        raise ValueError(f"{scorer}() mode must be 'any' or 'all', got {mode!r}")
    haystack = _fold(t, ignore_case)
    found = [p for p in phrases if _fold(p, ignore_case) in haystack]
    missing = [p for p in phrases if p not in found]
    score = len(found) / len(phrases)
    if mode == "any" and found:
        return 1.0
    if mode == "all" and not missing:
        return 1.0
    if mode == "any":
        reason = (
            f"text contains none of the phrases {_quoted(phrases)}"
            if len(phrases) > 1
            else f"text does not contain {phrases[0]!r}"
        )
    else:
        reason = f"text is missing {len(missing)} of {len(phrases)} required phrases: {_quoted(missing)}"
    expected = phrases[0] if len(phrases) == 1 else f"{mode} of {list(phrases)!r}"
    raise EvalFailure(reason, score=score, expected=expected, actual=t, scorer=scorer)


def assert_not_contains(text: str, needles: str | Iterable[str], *, ignore_case: bool = True) -> float:
    """Pass when ``text`` contains none of the forbidden phrases; a miss names the phrase found."""
    scorer = "assert_not_contains"
    t = check_text(text, scorer)
    phrases = _phrases(needles, scorer)
    haystack = _fold(t, ignore_case)
    hits = [(haystack.find(_fold(p, ignore_case)), p) for p in phrases]
    hits = sorted((pos, p) for pos, p in hits if pos >= 0)
    if not hits:
        return 1.0
    pos, first = hits[0]
    more = f" (and {len(hits) - 1} more: {_quoted(p for _, p in hits[1:])})" if len(hits) > 1 else ""
    raise EvalFailure(
        f"text contains the forbidden phrase {first!r} at character {pos}{more}",
        expected=f"none of {list(phrases)!r}",
        actual=t,
        scorer=scorer,
    )


# -- regular expressions


def assert_regex(
    text: str,
    pattern: str | re.Pattern[str],
    *,
    flags: int = 0,
    fullmatch: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> float:
    """Pass when ``pattern`` is found in ``text`` (``re.search``), or with ``fullmatch=True``
    when it matches the whole text with surrounding whitespace removed.

    The pattern has ``re`` syntax and meaning; the match stops after ``timeout`` seconds
    (``None``: no limit) with a ``TimeoutError``, an error of the test rather than a miss.
    """
    scorer = "assert_regex"
    t = check_text(text, scorer)
    bounded = compile_bounded(pattern, flags, scorer)
    limit = check_timeout(timeout, scorer)
    if bounded.matches(t.strip() if fullmatch else t, limit, scorer=scorer, keyword="timeout", full=fullmatch):
        return 1.0
    how = "does not fully match" if fullmatch else "has no match for"
    raise EvalFailure(
        f"text {how} the pattern {bounded.source!r}",
        expected=f"/{bounded.source}/",
        actual=t,
        scorer=scorer,
    )


# -- options


def assert_one_of(text: str, options: Iterable[str], *, normalize: Normalizer = True) -> float:
    """Pass when ``text`` equals one of ``options`` (after :func:`normalize` by default)."""
    scorer = "assert_one_of"
    t = check_text(text, scorer)
    if isinstance(options, str) or not isinstance(options, Iterable):
        raise TypeError(f"{scorer}() needs options as a list of str, got {type(options).__name__}; pass e.g. ['yes', 'no']")
    opts = tuple(options)
    if not opts:
        raise ValueError(f"{scorer}() got no options; pass at least one")
    for o in opts:
        if not isinstance(o, str):
            raise TypeError(f"{scorer}() options must be str, got {type(o).__name__} ({o!r}); pass str(value)")
    fn, how = _normalizer(
        normalize, ignore_case=False, ignore_punctuation=False, ignore_articles=False, strip=True, scorer=scorer
    )
    got = fn(t)
    if any(fn(o) == got for o in opts):
        return 1.0
    suffix = f" ({how})" if how else ""
    raise EvalFailure(
        f"text {got[:60]!r} is not one of the {len(opts)} options {_quoted(opts)}{suffix}",
        expected=f"one of {list(opts)!r}",
        actual=t,
        scorer=scorer,
    )


# -- length limits


def assert_max_words(text: str, n: int) -> float:
    """Pass when ``text`` has at most ``n`` whitespace-separated words."""
    scorer = "assert_max_words"
    t = check_text(text, scorer)
    limit = check_limit(n, scorer)
    count = len(t.split())
    if count <= limit:
        return 1.0
    raise EvalFailure(
        f"text has {count} words, over the limit of {limit}",
        expected=f"at most {limit} words",
        actual=t,
        scorer=scorer,
    )


def assert_max_chars(text: str, n: int) -> float:
    """Pass when ``text`` has at most ``n`` characters (code points, whitespace included)."""
    scorer = "assert_max_chars"
    t = check_text(text, scorer)
    limit = check_limit(n, scorer)
    count = len(t)
    if count <= limit:
        return 1.0
    raise EvalFailure(
        f"text has {count} characters, over the limit of {limit}",
        expected=f"at most {limit} characters",
        actual=t,
        scorer=scorer,
    )
