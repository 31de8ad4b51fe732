"""Variants of a case: which fields a perturbation changes, its seeded draw, and the strategy a
search explores, all over a case's fields (a mapping) rather than one text."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from pytest_llmeval.datasets.casefiles import CaseError
from pytest_llmeval.perturb.base import Perturbation, PerturbationError
from pytest_llmeval.perturb.draws import derive_seed

if TYPE_CHECKING:  # pragma: no cover
    from hypothesis.strategies import SearchStrategy

__all__ = ["draw_variant", "fields_to_perturb", "variant_id", "variant_seed", "variant_strategy"]

Address = tuple[str, int | None]
"""A text inside a case: a field, and the index when the field holds a list of strings."""


def variant_id(case_id: str, perturbation: Perturbation | str) -> str:
    """The id of a case's variant: ``qa-007~typos`` (``-k '~typos'`` selects a perturbation)."""
    name = perturbation if isinstance(perturbation, str) else perturbation.name
    return f"{case_id}~{name}"


def variant_seed(seed: int, case_id: str, perturbation: Perturbation) -> int:
    """The seed of one case's variant: from the session seed, the case id and the perturbation
    (name and parameters), never from the batch, the worker or the order of items."""
    return derive_seed("llmeval-variant", seed, case_id, perturbation.key)


def fields_to_perturb(
    perturbation: Perturbation,
    prompt_fields: Iterable[str],
    *,
    fields: Sequence[str] | None = None,
    answer_fields: Iterable[str] = (),
) -> tuple[str, ...]:
    """The fields a perturbation changes: its own ``fields``, else the suite's ``fields=``, else
    the fields the prompt template reads; plus the answer fields for perturbations that change
    answers too (names, gendered words)."""
    chosen = perturbation.fields if perturbation.fields is not None else (tuple(fields) if fields is not None else tuple(prompt_fields))
    if perturbation.touches_answers:
        chosen = chosen + tuple(a for a in answer_fields if a not in chosen)
    return tuple(dict.fromkeys(chosen))


def _addresses(case: Mapping[str, Any], names: Sequence[str]) -> list[Address]:
    out: list[Address] = []
    for name in names:
        value = case.get(name)
        if isinstance(value, str):
            out.append((name, None))
        elif isinstance(value, (list, tuple)):
            out.extend((name, i) for i, item in enumerate(value) if isinstance(item, str))
    return out


def _texts(case: Mapping[str, Any], addresses: Sequence[Address]) -> list[str]:
    return [case[name] if index is None else case[name][index] for name, index in addresses]


def _rebuild(case: Mapping[str, Any], addresses: Sequence[Address], texts: Sequence[str]) -> dict[str, Any]:
    out = dict(case)
    for (name, index), text in zip(addresses, texts):
        if index is None:
            out[name] = text
        else:
            items = list(out[name])
            items[index] = text
            out[name] = type(case[name])(items) if isinstance(case[name], tuple) else items
    return out


def draw_variant(
    case: Mapping[str, Any],
    perturbation: Perturbation,
    *,
    seed: int,
    case_id: str,
    fields: Sequence[str],
) -> dict[str, Any]:
    """The case's fields with ``fields`` perturbed: one draw, the same in every run for the same
    ``seed``, case id and perturbation. A field that is missing or holds no text is left alone.
    Raises :class:`PerturbationError` (one line) for a perturbation that fails."""
    addresses = _addresses(case, fields)
    if not addresses:
        return dict(case)
    where = f"case {case_id!r}"
    try:
        texts = perturbation.draw(_texts(case, addresses), variant_seed(seed, case_id, perturbation), where=where)
    except CaseError:  # a PerturbationError (or a case problem): already one line
        raise
    except Exception as exc:  # a user's perturbation that raised: one line, never a traceback
        raise PerturbationError(
            f"perturbation {perturbation.name!r} failed for {where}: {type(exc).__name__}: {exc}; fix the perturbation"
        ) from None
    return _rebuild(case, addresses, texts)


def variant_strategy(case: Mapping[str, Any], perturbation: Perturbation, *, fields: Sequence[str]) -> "SearchStrategy[dict[str, Any]]":
    """A hypothesis strategy over the case's perturbed fields, for a search: it shrinks towards
    the smallest change (the original case is its simplest example)."""
    from hypothesis import strategies as st

    addresses = _addresses(case, fields)
    if not addresses:
        return st.just(dict(case))
    return perturbation.strategy(_texts(case, addresses)).map(functools.partial(_rebuild, case, addresses))  # no lambda: see Perturbation.strategy
