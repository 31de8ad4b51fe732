"""Perturbations of eval cases (robustness and fairness), the seeded variants drawn from them, and
the batched hypothesis search for the smallest change that breaks a case.

``le.perturb.typos(rate=0.05)``, ``case("lower")``, ``whitespace()``, ``contractions()``,
``expansions()``, ``punctuation()``, ``filler_words()``, ``names(NAMES_BY_GROUP)``, ``gender()``;
``from_strategy`` and ``from_function`` for your own. Nothing here imports pytest, torch or the
plugin; hypothesis is imported when a strategy is built or a search runs.
"""

from __future__ import annotations

from typing import Any

from pytest_llmeval.perturb.base import Perturbation, PerturbationError, from_function, from_strategy
from pytest_llmeval.perturb.fairness import gender, names, names_by_group
from pytest_llmeval.perturb.robustness import case, contractions, expansions, filler_words, punctuation, typos, whitespace
from pytest_llmeval.perturb.variants import draw_variant, fields_to_perturb, variant_id, variant_seed, variant_strategy
from pytest_llmeval.perturb.wordlists import Name, load_names

__all__ = [
    "NAMES_BY_GROUP",
    "Name",
    "Perturbation",
    "PerturbationError",
    "case",
    "contractions",
    "draw_variant",
    "expansions",
    "fields_to_perturb",
    "filler_words",
    "from_function",
    "from_strategy",
    "gender",
    "load_names",
    "names",
    "punctuation",
    "typos",
    "variant_id",
    "variant_seed",
    "variant_strategy",
    "whitespace",
]


def __getattr__(name: str) -> Any:
    if name == "NAMES_BY_GROUP":  # read from the packaged list on first use
        return names_by_group()
    raise AttributeError(f"module 'pytest_llmeval.perturb' has no attribute {name!r}")
