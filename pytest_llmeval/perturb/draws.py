"""Where a perturbation's random decisions come from: a seeded ``random.Random`` for a case's
variant, or hypothesis for a search.

A built-in perturbation is written once, against :class:`Draws`: which of its candidate sites
(letters, words, names...) to change, and which of a few rewrites to pick at each. Two sources
answer those questions:

- :class:`SeededDraws` answers from ``random.Random(seed)``, calling only ``random()`` (the one
  method whose sequence Python promises to keep for a seed), so a variant is the same text in every
  process, at every batch size, on every Python. Each site is changed with probability ``rate``,
  as HELM draws its perturbations.
- :class:`StrategyDraws` answers from a hypothesis ``draw``: the sites are a list that hypothesis
  explores and shrinks towards fewer and earlier sites, and each pick shrinks towards the first
  rewrite, so a search ends at the smallest change that still breaks the case.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from typing import Any, Callable, Protocol

__all__ = ["Draws", "SeededDraws", "StrategyDraws", "derive_seed"]


def derive_seed(*parts: Any) -> int:
    """A 64-bit seed from ``parts`` (JSON-encoded, then SHA-256): the same in every process and on
    every platform, unlike ``hash()``. ``derive_seed(llmeval_seed, case_id, perturbation)`` seeds a
    variant."""
    blob = json.dumps(list(parts), sort_keys=True, ensure_ascii=True, default=repr).encode("utf-8")
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big")


class Draws(Protocol):
    """The decisions a perturbation asks for."""

    def sites(self, count: int, rate: float) -> list[int]:
        """Which of ``count`` candidate sites to change (sorted, distinct indices)."""
        ...

    def index(self, n: int) -> int:
        """One of ``n`` options (``0 <= i < n``)."""
        ...


class SeededDraws:
    """Decisions from ``random.Random(seed)``: each site independently with probability ``rate``,
    each option with probability ``1 / n``."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def sites(self, count: int, rate: float) -> list[int]:
        return [i for i in range(count) if self._random.random() < rate]

    def index(self, n: int) -> int:
        if n <= 1:
            return 0
        return min(int(self._random.random() * n), n - 1)


class StrategyDraws:
    """Decisions from a hypothesis ``draw`` (inside ``st.composite``).

    ``sites`` draws a list of at most ``ceil(2 * rate * count)`` distinct sites (at least one), so
    hypothesis explores changes of about the size the rate gives on average, and shrinks them
    towards fewer sites; ``index`` shrinks towards option 0.

    Each site is drawn together with its pick (the option ``index`` then returns for it, in site
    order), so when hypothesis deletes a site it deletes that site's pick with it and every other
    site keeps its rewrite: a breaking change shrinks to its one decisive site.
    """

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        self._draw = draw
        self._picks: list[int] = []

    def sites(self, count: int, rate: float) -> list[int]:
        self._picks = []
        if count <= 0 or rate <= 0:
            return []
        from hypothesis import strategies as st

        cap = min(count, max(1, math.ceil(2 * rate * count)))
        pairs = st.tuples(st.integers(0, count - 1), st.integers(0, _PICKS - 1))
        drawn = self._draw(st.lists(pairs, max_size=cap))
        chosen = sorted(dict(reversed(drawn)).items())  # a site drawn twice keeps its first pick
        self._picks = [pick for _site, pick in chosen]
        return [site for site, _pick in chosen]

    def index(self, n: int) -> int:
        if n <= 1:
            if self._picks:
                self._picks.pop(0)
            return 0
        if self._picks:
            return self._picks.pop(0) % n
        from hypothesis import strategies as st

        return int(self._draw(st.integers(0, n - 1)))


_PICKS = 720
"""The range of a site's pick (``index(n)`` is ``pick % n``): a multiple of every option count a
built-in perturbation has up to 6, so each option is equally likely there."""
