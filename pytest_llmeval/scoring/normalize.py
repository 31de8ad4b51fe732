"""Text normalization shared by the scorers: Unicode, case, punctuation, whitespace, articles."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize", "collapse_whitespace", "strip_punctuation", "strip_articles"]

# Apostrophes join a word ("don't" -> "dont"); every other punctuation mark separates words.
_APOSTROPHES = frozenset("'\u2018\u2019\u02bc\u2032\uff07")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b", re.IGNORECASE)
_MAX_ROUNDS = 8


def collapse_whitespace(text: str) -> str:
    """Runs of whitespace become one space; leading and trailing whitespace is dropped."""
    return " ".join(text.split())


def strip_punctuation(text: str) -> str:
    """Remove Unicode punctuation (categories P*): apostrophes vanish, other marks become a space."""
    out: list[str] = []
    for ch in text:
        if ch in _APOSTROPHES:
            continue
        out.append(" " if unicodedata.category(ch).startswith("P") else ch)
    return "".join(out)


def strip_articles(text: str) -> str:
    """Remove the English articles "a", "an" and "the" as whole words (any case)."""
    return _ARTICLES.sub(" ", text)


def _unicode(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    # invisible format characters (zero-width space, BOM, soft hyphen) say nothing about the answer
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def _one_round(
    text: str,
    *,
    lower: bool,
    strip_punctuation_: bool,
    collapse_whitespace_: bool,
    strip_articles_: bool,
    unicode: bool,
) -> str:
    if unicode:
        text = _unicode(text)
    if lower:
        text = text.casefold()
    if strip_punctuation_:
        text = strip_punctuation(text)
    if strip_articles_:
        text = strip_articles(text)
    if collapse_whitespace_:
        text = collapse_whitespace(text)
    return text


def normalize(
    text: str,
    *,
    lower: bool = True,
    strip_punctuation: bool = True,
    collapse_whitespace: bool = True,
    strip_articles: bool = False,
    unicode: bool = True,
) -> str:
    """Normalize ``text`` for comparison; ``normalize(normalize(x)) == normalize(x)``.

    The steps, each switchable: Unicode NFKC plus removal of invisible format characters
    (``unicode``), case folding (``lower``), punctuation removal (``strip_punctuation``:
    apostrophes vanish, other marks become spaces), English article removal
    (``strip_articles``: "a", "an", "the") and whitespace collapsing (``collapse_whitespace``:
    single spaces, no leading or trailing space).

    >>> normalize("  The  Answer:\\tParis! ")
    'the answer paris'
    >>> normalize("The Eiffel Tower", strip_articles=True)
    'eiffel tower'
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize() needs a str, got {type(text).__name__}; pass str(value) for other types")
    options = dict(
        lower=lower,
        strip_punctuation_=strip_punctuation,
        collapse_whitespace_=collapse_whitespace,
        strip_articles_=strip_articles,
        unicode=unicode,
    )
    # One pass can expose new work (a removed apostrophe lets a combining mark compose under NFKC,
    # case folding can produce a non-NFKC sequence), so repeat until nothing changes.
    for _ in range(_MAX_ROUNDS):
        result = _one_round(text, **options)
        if result == text:
            return result
        text = result
    return text
