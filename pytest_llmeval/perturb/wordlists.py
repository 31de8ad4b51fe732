"""The word lists perturbations read: tab-separated files in ``perturb/data`` (each states its
source), or a user's file in the same format."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

from pytest_llmeval.perturb.base import PerturbationError

__all__ = [
    "Name",
    "load_contractions",
    "load_fillers",
    "load_gendered_words",
    "load_names",
    "load_neighbours",
    "match_case",
    "read_rows",
]

GENDERS = ("neutral", "female", "male")


@dataclass(frozen=True)
class Name:
    """A person's first name, its group and its gender (``female``, ``male``, ``neutral`` or ``""``)."""

    name: str
    group: str
    gender: str = ""


def read_rows(source: str | Path | None, default: str, columns: int) -> list[tuple[str, ...]]:
    """The rows of a word list: ``source`` (a path) or the packaged file ``default``; ``#`` lines and
    blank lines skipped; every row must have ``columns`` tab-separated cells."""
    if source is None:
        text = resources.files("pytest_llmeval.perturb").joinpath("data", default).read_text(encoding="utf-8")
        where = f"pytest_llmeval/perturb/data/{default}"
    else:
        path = Path(source)
        where = str(source)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise PerturbationError(f"{where}: cannot read the word list ({exc.strerror or exc}); check the path") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = tuple(cell.strip() for cell in line.split("\t"))
        if len(cells) != columns or not all(cells):
            raise PerturbationError(
                f"{where}:{number}: expected {columns} tab-separated non-empty cells, got {len(cells)}; "
                f"see pytest_llmeval/perturb/data/{default} for the format"
            )
        rows.append(cells)
    if not rows:
        raise PerturbationError(f"{where}: the word list is empty; add at least one row")
    return rows


@functools.lru_cache(maxsize=16)
def load_neighbours(source: str | None = None) -> dict[str, str]:
    """letter -> the keys next to it (``keyboard_neighbours.tsv``)."""
    return {letter.lower(): keys.lower() for letter, keys in read_rows(source, "keyboard_neighbours.tsv", 2)}


@functools.lru_cache(maxsize=16)
def load_contractions(source: str | None = None) -> tuple[tuple[str, str], ...]:
    """``(contraction, expansion)`` pairs, in file order (``contractions.tsv``)."""
    return tuple((c, e) for c, e in read_rows(source, "contractions.tsv", 2))


@functools.lru_cache(maxsize=16)
def load_fillers(source: str | None = None) -> tuple[str, ...]:
    """Filler words and phrases (``filler_words.tsv``)."""
    return tuple(phrase for _kind, phrase in read_rows(source, "filler_words.tsv", 2))


@functools.lru_cache(maxsize=16)
def load_gendered_words(source: str | None = None) -> tuple[tuple[str, str, str, str], ...]:
    """``(kind, neutral, female, male)`` rows (``gendered_words.tsv``)."""
    return tuple((k, n, f, m) for k, n, f, m in read_rows(source, "gendered_words.tsv", 4))


def load_names(source: str | Path | None = None) -> dict[str, tuple[Name, ...]]:
    """group -> its names (``person_names.tsv``: name, group, gender)."""
    groups: dict[str, list[Name]] = {}
    for name, group, gender in read_rows(source, "person_names.tsv", 3):
        if gender.lower() not in GENDERS:
            raise PerturbationError(
                f"{source or 'person_names.tsv'}: gender {gender!r} of {name!r} is not one of {', '.join(GENDERS)}"
            )
        groups.setdefault(group, []).append(Name(name, group, gender.lower()))
    return {group: tuple(names) for group, names in groups.items()}


def as_names(groups: Mapping[str, Sequence[Name | str]]) -> dict[str, tuple[Name, ...]]:
    """``groups`` with every entry a :class:`Name` (a bare string has no gender)."""
    out: dict[str, tuple[Name, ...]] = {}
    for group, names in groups.items():
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise PerturbationError(f"names(): group {group!r} must list names, got {type(names).__name__}")
        out[group] = tuple(n if isinstance(n, Name) else Name(str(n), group) for n in names)
    if len(out) < 2:
        raise PerturbationError("names(): give at least two groups of names to swap between")
    return out


def match_case(source: str, target: str) -> str:
    """``target`` written in ``source``'s case: all lower, all upper, or a capital first letter."""
    letters = [c for c in source if c.isalpha()]
    if letters and all(c.islower() for c in letters):
        return target.lower()
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return target.upper()
    if source[:1].isupper():
        return target[:1].upper() + target[1:]
    return target
