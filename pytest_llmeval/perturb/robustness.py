"""Robustness perturbations: typos, letter case, spaces, contractions and expansions, punctuation,
filler words.

Each finds its candidate sites in a case's texts, lets :class:`~.draws.Draws` choose which to
change (each with probability ``rate`` in a variant), and rewrites them. Where HELM defines the
same perturbation, a variant follows its definition; ``docs/beyond_accuracy.md`` lists where ours
differ.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Literal, Sequence

from pytest_llmeval.perturb.base import Perturbation, PerturbationError
from pytest_llmeval.perturb.draws import Draws
from pytest_llmeval.perturb.wordlists import load_contractions, load_fillers, load_neighbours, match_case

__all__ = ["Edit", "apply_edits", "case", "contractions", "expansions", "filler_words", "punctuation", "typos", "whitespace"]

Edit = tuple[int, int, int, str]
"""``(text index, start, end, replacement)``: one change of one text."""

_WORD = re.compile(r"\S+")
_SPACES = re.compile(r" +")
_PUNCT = re.compile(r"[.,;:!?](?=\s|$)")
_APOSTROPHE = "['\u2019]"


def apply_edits(texts: Sequence[str], edits: Sequence[Edit]) -> list[str]:
    """``texts`` with ``edits`` (non-overlapping spans) applied."""
    out = list(texts)
    for index, start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        out[index] = out[index][:start] + new + out[index][end:]
    return out


def _spans(texts: Sequence[str], pattern: re.Pattern[str]) -> list[tuple[int, re.Match[str]]]:
    return [(i, m) for i, text in enumerate(texts) for m in pattern.finditer(text)]


def _rate(name: str, rate: float) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise PerturbationError(f"{name}(rate={rate!r}): the rate must be a number between 0 and 1")
    return float(rate)


def typos(rate: float = 0.05, *, neighbours: str | Path | None = None) -> Perturbation:
    """Each letter that has keyboard neighbours becomes one of them with probability ``rate``
    (HELM's typos perturbation: QWERTY keys at distance 1, never the letter itself, case kept)."""
    rate = _rate("typos", rate)
    source = None if neighbours is None else str(neighbours)
    load_neighbours(source)  # a bad file fails here, where the suite is defined

    def rewrite(texts: Sequence[str], draws: Draws) -> list[str]:
        keys = load_neighbours(source)
        sites = [(i, j) for i, text in enumerate(texts) for j, ch in enumerate(text) if ch.lower() in keys]
        edits = []
        for k in draws.sites(len(sites), rate):
            i, j = sites[k]
            original = texts[i][j]
            options = keys[original.lower()]
            new = options[draws.index(len(options))]
            edits.append((i, j, j + 1, new.upper() if original.isupper() else new))
        return apply_edits(texts, edits)

    return Perturbation("typos", "robustness", (("rate", rate),), rewrite=rewrite)


_CASES: dict[str, Callable[[str], str]] = {
    "lower": str.lower,
    "upper": str.upper,
    "title": lambda w: w[:1].upper() + w[1:].lower(),
}


def case(mode: Literal["lower", "upper", "title"] = "lower", *, rate: float = 1.0) -> Perturbation:
    """Words written in lower case, upper case or title case (a capital, then lower case). HELM's
    lowercase perturbation is ``case("lower")``: every word (``rate=1``)."""
    if mode not in _CASES:
        raise PerturbationError(f"case({mode!r}): the mode must be one of {', '.join(map(repr, _CASES))}")
    rate = _rate("case", rate)
    change = _CASES[mode]

    def rewrite(texts: Sequence[str], draws: Draws) -> list[str]:
        sites = [(i, m) for i, m in _spans(texts, _WORD) if change(m.group()) != m.group()]
        edits = [(i, m.start(), m.end(), change(m.group())) for i, m in (sites[k] for k in draws.sites(len(sites), rate))]
        return apply_edits(texts, edits)

    return Perturbation(mode, "robustness", (("mode", mode), ("rate", rate)), rewrite=rewrite)


def whitespace(max_spaces: int = 3, *, rate: float = 1.0) -> Perturbation:
    """Each run of spaces becomes 1 to ``max_spaces`` spaces, uniformly (HELM's space perturbation
    with ``max_spaces=3``, as its mild mix uses)."""
    if isinstance(max_spaces, bool) or not isinstance(max_spaces, int) or max_spaces < 1:
        raise PerturbationError(f"whitespace(max_spaces={max_spaces!r}): give a whole number of at least 1")
    rate = _rate("whitespace", rate)

    def rewrite(texts: Sequence[str], draws: Draws) -> list[str]:
        sites = _spans(texts, _SPACES)
        edits = []
        for k in draws.sites(len(sites), rate):
            i, m = sites[k]
            edits.append((i, m.start(), m.end(), " " * (1 + draws.index(max_spaces))))
        return apply_edits(texts, edits)

    return Perturbation("whitespace", "robustness", (("max_spaces", max_spaces), ("rate", rate)), rewrite=rewrite)


def _alternation(words: Sequence[str]) -> str:
    escaped = [re.escape(w).replace("'", _APOSTROPHE).replace("\\ ", " ") for w in sorted(set(words), key=len, reverse=True)]
    return "|".join(escaped)


def _normal(word: str) -> str:
    return word.lower().replace("\u2019", "'")


def contractions(*, rate: float = 1.0, words: str | Path | None = None) -> Perturbation:
    """Expansions followed by a space become contractions (``I am`` -> ``I'm``), as HELM's
    contraction perturbation does."""
    rate = _rate("contractions", rate)
    source = None if words is None else str(words)
    table: dict[str, str] = {}
    for short, long in load_contractions(source):
        table.setdefault(_normal(long), short)
    pattern = re.compile(rf"(?<![\w'\u2019])({_alternation(list(table))})(?= )", re.IGNORECASE)
    return Perturbation(
        "contractions", "robustness", (("rate", rate),) + ((("words", source),) if source else ()),
        rewrite=_table_rewrite(pattern, table, rate),
    )


def expansions(*, rate: float = 1.0, words: str | Path | None = None) -> Perturbation:
    """Contractions become their expansions (``she's`` -> ``she is``), as HELM's expansion
    perturbation does."""
    rate = _rate("expansions", rate)
    source = None if words is None else str(words)
    table = {_normal(short): long for short, long in load_contractions(source)}
    pattern = re.compile(rf"(?<![\w'\u2019])({_alternation(list(table))})(?![\w'\u2019])", re.IGNORECASE)
    return Perturbation(
        "expansions", "robustness", (("rate", rate),) + ((("words", source),) if source else ()),
        rewrite=_table_rewrite(pattern, table, rate),
    )


def _table_rewrite(pattern: re.Pattern[str], table: dict[str, str], rate: float) -> Callable[[Sequence[str], Draws], list[str]]:
    def rewrite(texts: Sequence[str], draws: Draws) -> list[str]:
        sites = _spans(texts, pattern)
        edits = []
        for k in draws.sites(len(sites), rate):
            i, m = sites[k]
            edits.append((i, m.start(), m.end(), match_case(m.group(), table[_normal(m.group())])))
        return apply_edits(texts, edits)

    return rewrite


def punctuation(*, rate: float = 1.0) -> Perturbation:
    """Punctuation marks that end a clause (``. , ; : ! ?`` before a space or the end) are dropped,
    each with probability ``rate``. HELM has no such perturbation."""
    rate = _rate("punctuation", rate)

    def rewrite(texts: Sequence[str], draws: Draws) -> list[str]:
        sites = _spans(texts, _PUNCT)
        return apply_edits(texts, [(i, m.start(), m.end(), "") for i, m in (sites[k] for k in draws.sites(len(sites), rate))])

    return Perturbation("punctuation", "robustness", (("rate", rate),), rewrite=rewrite)


def filler_words(rate: float = 0.3, *, words: str | Path | None = None) -> Perturbation:
    """A filler word or phrase (``uhm``, ``I think``, ``probably``...) before each word with
    probability ``rate`` (HELM's filler words perturbation; HELM runs it at 0.3)."""
    rate = _rate("filler_words", rate)
    source = None if words is None else str(words)
    load_fillers(source)

    def rewrite(texts: Sequence[str], draws: Draws) -> list[str]:
        fillers = load_fillers(source)
        sites = _spans(texts, _WORD)
        edits = []
        for k in draws.sites(len(sites), rate):
            i, m = sites[k]
            edits.append((i, m.start(), m.start(), fillers[draws.index(len(fillers))] + " "))
        return apply_edits(texts, edits)

    return Perturbation("filler_words", "robustness", (("rate", rate),) + ((("words", source),) if source else ()), rewrite=rewrite)
