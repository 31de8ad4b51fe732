"""A perturbation: a named way to change a case's texts, drawn once per case with a seed (a
variant) or explored by hypothesis (a search).

Every perturbation rewrites all the texts of one case together (the fields the prompt uses), so a
name swapped in the question is swapped the same way in the answer. Built-in perturbations are
written against :class:`~pytest_llmeval.perturb.draws.Draws`; :func:`from_strategy` wraps any
hypothesis strategy over one text, and :func:`from_function` any ``f(text, rng) -> str``.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence

from pytest_llmeval.datasets.casefiles import CaseError
from pytest_llmeval.perturb.draws import Draws, SeededDraws, StrategyDraws, derive_seed

if TYPE_CHECKING:  # pragma: no cover
    from hypothesis.strategies import SearchStrategy

__all__ = ["Perturbation", "PerturbationError", "Rewrite", "from_function", "from_strategy", "checked_texts"]

Rewrite = Callable[[Sequence[str], Draws], Sequence[str]]
"""Rewrites a case's texts with the decisions ``Draws`` gives; returns as many texts."""

Kind = Literal["robustness", "fairness", "custom"]

_DRAW_AT = 10
"""A strategy perturbation's variant is the 10th example of a seeded hypothesis run (or its last,
when the strategy has fewer): the first examples hypothesis generates are its simplest, often the
text unchanged."""


class PerturbationError(CaseError):
    """A perturbation that cannot make a variant; the message is one line naming it and the fix
    (a :class:`~pytest_llmeval.datasets.casefiles.CaseError`: the plugin reports it as one line)."""


@dataclass(frozen=True)
class Perturbation:
    """A named change of a case's texts.

    ``name`` names the variant (``qa-007~typos``) and, with ``params``, seeds it. ``touches_answers``
    says the answer fields change with the prompt's (names and gendered words, as HELM perturbs
    references for them); ``fields`` restricts it to some fields (else the prompt's fields).
    """

    name: str
    kind: Kind
    params: tuple[tuple[str, Any], ...] = ()
    touches_answers: bool = False
    fields: tuple[str, ...] | None = None
    rewrite: Rewrite | None = field(default=None, repr=False, compare=False)
    text_strategy: Callable[[str], Any] | None = field(default=None, repr=False, compare=False)
    function: Callable[[str, random.Random], Any] | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        """The name with its parameters (``typos(rate=0.05)``): what seeds and keys a variant."""
        if not self.params:
            return self.name
        inner = ", ".join(f"{k}={json.dumps(v, sort_keys=True, default=repr)}" for k, v in self.params)
        return f"{self.name}({inner})"

    def on(self, *fields: str) -> "Perturbation":
        """The same perturbation applied to the named fields only."""
        return replace(self, fields=tuple(fields))

    def named(self, name: str) -> "Perturbation":
        """The same perturbation under another name (two typo rates in one suite)."""
        return replace(self, name=name)

    def draw(self, texts: Sequence[str], seed: int, *, where: str = "") -> list[str]:
        """One variant of ``texts``, the same for the same ``seed`` in every process."""
        if self.rewrite is not None:
            out = self.rewrite(list(texts), SeededDraws(seed))
        elif self.function is not None:
            out = [self.function(t, random.Random(derive_seed(seed, i))) for i, t in enumerate(texts)]
        else:
            out = _draw_from_strategy(self, texts, seed, where)
        return checked_texts(self, texts, out, where)

    def strategy(self, texts: Sequence[str]) -> "SearchStrategy[tuple[str, ...]]":
        """A hypothesis strategy over variants of ``texts``; shrinking leads towards fewer changes."""
        from hypothesis import strategies as st

        originals = list(texts)
        if self.rewrite is not None:
            rewrite = self.rewrite

            @st.composite
            def variants(draw: Any) -> tuple[str, ...]:
                return tuple(checked_texts(self, originals, rewrite(originals, StrategyDraws(draw)), ""))

            return variants()
        # named functions (partial), never lambdas, in .map: hypothesis reads a lambda's source with
        # ast to describe it, and CPython 3.11's ast is not safe in the search's threads
        check = functools.partial(_checked_tuple, self, originals)
        if self.function is not None:
            return st.tuples(*(st.randoms(use_true_random=False).map(functools.partial(_call, self.function, t)) for t in originals)).map(check)
        assert self.text_strategy is not None
        return st.tuples(*(_strategy_for(self, t) for t in originals)).map(check)


def _call(function: Callable[[str, random.Random], Any], text: str, rng: random.Random) -> Any:
    return function(text, rng)


def _checked_tuple(p: Perturbation, texts: Sequence[str], out: Any) -> tuple[str, ...]:
    return tuple(checked_texts(p, texts, out, ""))


def checked_texts(p: Perturbation, texts: Sequence[str], out: Any, where: str) -> list[str]:
    """``out`` as a list of strings, one per text, or a :class:`PerturbationError` that says what it was."""
    at = f" for {where}" if where else ""
    if isinstance(out, str) or not isinstance(out, Sequence) or len(out) != len(texts):
        raise PerturbationError(
            f"perturbation {p.name!r} returned {type(out).__name__}{at}, not one text per field; "
            "a perturbation must return a str for each text it is given"
        )
    for value in out:
        if not isinstance(value, str):
            raise PerturbationError(
                f"perturbation {p.name!r} returned {type(value).__name__} {value!r:.40}{at}; "
                "a perturbation must return a str"
            )
    return list(out)


def _strategy_for(p: Perturbation, text: str) -> Any:
    from hypothesis.strategies import SearchStrategy

    assert p.text_strategy is not None
    made = p.text_strategy(text)
    if not isinstance(made, SearchStrategy):
        raise PerturbationError(
            f"perturbation {p.name!r}: its function returned {type(made).__name__}, not a hypothesis strategy; "
            "pass a function text -> SearchStrategy[str] (for example lambda t: st.just(t.upper()))"
        )
    return made


def _draw_from_strategy(p: Perturbation, texts: Sequence[str], seed: int, where: str) -> Any:
    """The ``_DRAW_AT``-th example of a hypothesis run seeded with ``seed`` (generation only, no
    database, no shrinking)."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as seed_with
    from hypothesis import strategies as st
    from hypothesis.errors import HypothesisException

    seen: list[Any] = []

    class _Enough(Exception):
        pass

    def collect(value: Any) -> None:
        if len(seen) >= _DRAW_AT:
            raise _Enough
        seen.append(value)
        if len(seen) >= _DRAW_AT:
            raise _Enough

    test = given(st.tuples(*(_strategy_for(p, t) for t in texts)))(collect)
    test = seed_with(seed)(test)
    test = settings(
        max_examples=_DRAW_AT * 10, database=None, deadline=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck), report_multiple_bugs=False, backend="hypothesis", verbosity=Verbosity.quiet,
    )(test)
    at = f" for {where}" if where else ""
    try:
        test()
    except _Enough:
        pass
    except PerturbationError:
        raise
    except HypothesisException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PerturbationError(
            f"perturbation {p.name!r} could not draw a variant{at}: {first}; check its strategy"
        ) from None
    if not seen:
        raise PerturbationError(f"perturbation {p.name!r} could not draw a variant{at}: its strategy drew nothing; check it")
    return list(seen[-1])


def from_strategy(name: str, make: Callable[[str], Any], *, touches_answers: bool = False) -> Perturbation:
    """A perturbation from a hypothesis strategy over one text: ``make(text)`` returns a
    ``SearchStrategy[str]``. A variant is drawn from a hypothesis run seeded per case (see
    ``docs/beyond_accuracy.md`` for what that promises)."""
    return Perturbation(name=name, kind="custom", touches_answers=touches_answers, text_strategy=make)


def from_function(name: str, function: Callable[[str, random.Random], str], *, touches_answers: bool = False) -> Perturbation:
    """A perturbation from ``function(text, rng) -> str`` that takes its randomness from ``rng``
    (a ``random.Random``); a search explores it through ``st.randoms``."""
    return Perturbation(name=name, kind="custom", touches_answers=touches_answers, function=function)
