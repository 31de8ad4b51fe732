"""Fairness perturbations: person names swapped between groups, gendered words swapped.

Both change a case's answer fields along with its prompt (a swapped name is swapped in the
expected answer too), as HELM perturbs references for them, and both change a word the same way
everywhere in a case.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Mapping, Sequence

from pytest_llmeval.perturb.base import Perturbation, PerturbationError
from pytest_llmeval.perturb.draws import Draws
from pytest_llmeval.perturb.robustness import _rate, apply_edits
from pytest_llmeval.perturb.wordlists import GENDERS, Name, as_names, load_gendered_words, load_names, match_case

__all__ = ["gender", "names", "names_by_group"]

_TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


@functools.lru_cache(maxsize=1)
def names_by_group() -> dict[str, tuple[Name, ...]]:
    """The packaged name list (``person_names.tsv``): group -> its names."""
    return load_names()


def names(
    groups: Mapping[str, Sequence[Name | str]] | None = None,
    *,
    source: str | None = None,
    target: str | None = None,
    rate: float = 1.0,
    preserve_gender: bool = True,
) -> Perturbation:
    """Person names of one group replaced by names of another.

    A name counts where a word equals it, with a capital first letter. Each distinct name found
    (with probability ``rate``) becomes a name of ``target`` (default: any other group), of the
    same gender when ``preserve_gender`` and the target has one; the same substitute everywhere
    in the case. ``source`` limits which group's names are replaced. HELM's person-name
    perturbation is ``names(source="european_american", target="african_american")``.
    """
    table = as_names(names_by_group() if groups is None else groups)
    for label, value in (("source", source), ("target", target)):
        if value is not None and value not in table:
            raise PerturbationError(f"names({label}={value!r}): no such group; the groups are {', '.join(sorted(table))}")
    rate = _rate("names", rate)
    lookup = {n.name.lower(): n for group, members in table.items() if source in (None, group) for n in members}

    def options(found: Name) -> list[Name]:
        pool = [n for group, members in table.items() if group != found.group and target in (None, group) for n in members]
        if preserve_gender and found.gender:
            same = [n for n in pool if n.gender == found.gender]
            pool = same or pool
        return pool

    def rewrite(texts: Sequence[str], draws: Draws) -> list[str]:
        hits = [(i, m) for i, text in enumerate(texts) for m in _TOKEN.finditer(text)
                if m.group()[:1].isupper() and m.group().lower() in lookup]
        distinct = list(dict.fromkeys(m.group().lower() for _i, m in hits))
        swap: dict[str, str] = {}
        for k in draws.sites(len(distinct), rate):
            pool = options(lookup[distinct[k]])
            if pool:
                swap[distinct[k]] = pool[draws.index(len(pool))].name
        edits = [(i, m.start(), m.end(), match_case(m.group(), swap[m.group().lower()])) for i, m in hits if m.group().lower() in swap]
        return apply_edits(texts, edits)

    params = (("source", source), ("target", target), ("rate", rate), ("preserve_gender", preserve_gender))
    if groups is not None:
        params += (("groups", sorted((g, [n.name for n in ns]) for g, ns in table.items())),)
    return Perturbation("names", "fairness", params, touches_answers=True, rewrite=rewrite)


def gender(
    source: str = "male",
    target: str = "female",
    *,
    rate: float = 1.0,
    kinds: Sequence[str] = ("term", "pronoun"),
    words: str | Path | None = None,
) -> Perturbation:
    """Gendered words of ``source`` (``male``, ``female`` or ``neutral``) replaced by the same row's
    word of ``target``: terms (``son`` -> ``daughter``) and pronouns (``he`` -> ``she``), each
    occurrence with probability ``rate``. HELM's gender perturbation, male to female; where a word
    has several rows (``her``: ``him`` or ``his``), the first row wins, as in HELM."""
    for label, value in (("source", source), ("target", target)):
        if value not in GENDERS:
            raise PerturbationError(f"gender({label}={value!r}): must be one of {', '.join(GENDERS)}")
    if source == target:
        raise PerturbationError(f"gender(source={source!r}, target={target!r}): source and target must differ")
    rate = _rate("gender", rate)
    path = None if words is None else str(words)
    column = {g: 1 + i for i, g in enumerate(GENDERS)}
    table: dict[str, str] = {}
    for row in load_gendered_words(path):
        if row[0] in kinds:
            table.setdefault(row[column[source]].lower(), row[column[target]])
    if not table:
        raise PerturbationError(f"gender(kinds={list(kinds)!r}): no word list rows of those kinds; the kinds are term, pronoun")
    alternation = "|".join(re.escape(w) for w in sorted(table, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w'\u2019-])({alternation})(?![\w'\u2019-])", re.IGNORECASE)

    def rewrite(texts: Sequence[str], draws: Draws) -> list[str]:
        sites = [(i, m) for i, text in enumerate(texts) for m in pattern.finditer(text)]
        edits = [(i, m.start(), m.end(), match_case(m.group(), table[m.group().lower()]))
                 for i, m in (sites[k] for k in draws.sites(len(sites), rate))]
        return apply_edits(texts, edits)

    params = (("source", source), ("target", target), ("rate", rate), ("kinds", list(kinds)))
    return Perturbation("gender", "fairness", params + ((("words", path),) if path else ()), touches_answers=True, rewrite=rewrite)
