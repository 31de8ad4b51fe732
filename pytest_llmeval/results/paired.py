"""Two runs of the same cases compared case by case: exact McNemar for one sample per case,
the exact sign-flip permutation test on per-case pass rates with repeats; and the smallest drop
such a test can call significant."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping

from pytest_llmeval.results.repeats import mean_rate, sign_flip_p
from pytest_llmeval.results.stats import mcnemar_exact

__all__ = [
    "Paired", "min_detectable_drop", "min_detectable_failures", "paired_comparison", "paired_rates", "smallest_drop_beyond",
    "too_small_to_detect",
]  # fmt: skip


def min_detectable_failures(alpha: float) -> int:
    """The fewest newly failing cases, with none newly passing, for which the exact McNemar
    test gives ``p < alpha``: 6 at alpha 0.05 (p = 2 * 0.5**6 = 0.031; five give 0.0625).

    With none newly passing the p-value is ``min(1, 2 * 0.5**k)``. For the same net drop
    ``b - c``, newly passing cases only raise it: going from ``(b, c)`` to ``(b + 1, c + 1)``
    adds ``(P[X=c+1] - P[X=c]) / 4 >= 0`` to ``P[X <= c]`` (``X ~ Binomial(b + c, 0.5)``,
    ``c + 1 <= (b + c + 1) / 2``), so no split of the same drop does better.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    k = 1
    while mcnemar_exact(k, 0) >= alpha:
        k += 1
    return k


def min_detectable_drop(n: int, alpha: float) -> float | None:
    """The smallest drop in pass rate over ``n`` shared cases that the paired test can call
    significant at ``alpha`` (what a REGRESSED verdict needs, besides exceeding the
    tolerance): ``k / n`` for :func:`min_detectable_failures`. ``None`` when no drop can be:
    ``n`` cases are fewer than ``k``, or ``alpha`` is 0."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if alpha <= 0.0:
        return None
    k = min_detectable_failures(alpha)
    return k / n if k <= n else None


def too_small_to_detect(n: int, tolerance: float, alpha: float) -> bool:
    """Whether ``n`` shared cases are too few for the tolerance: the smallest drop beyond
    ``tolerance`` that ``n`` cases can show (:func:`smallest_drop_beyond`) could not be called
    significant at ``alpha``, so an UNCHANGED verdict does not mean the suite held within the
    tolerance. ``False`` when no drop beyond the tolerance is possible (a tolerance of 1)."""
    if n <= 0 or alpha <= 0.0:
        return True
    beyond = smallest_drop_beyond(n, tolerance)
    return beyond is not None and min_detectable_failures(alpha) > beyond


def smallest_drop_beyond(n: int, tolerance: float) -> int | None:
    """The fewest net newly failing cases out of ``n`` whose drop in pass rate exceeds
    ``tolerance`` as :meth:`Paired.direction` judges it (``k / n > tolerance + 1e-12``);
    ``None`` when even ``n`` do not."""
    if n <= 0 or 1.0 <= tolerance + 1e-12:
        return None
    k = max(1, min(n, math.floor(n * tolerance)))
    while k > 1 and (k - 1) / n > tolerance + 1e-12:
        k -= 1
    while k / n <= tolerance + 1e-12:
        k += 1
    return k



@dataclass(frozen=True)
class Paired:
    """Two runs of the same cases, compared case by case (``True`` is a pass).

    ``newly_failing`` passed before and not now (McNemar's ``b``), ``newly_passing`` the
    reverse (``c``); ``delta`` is the change in pass rate over the shared cases.
    """

    shared: int
    before_passed: int
    after_passed: int
    newly_failing: tuple[str, ...]
    newly_passing: tuple[str, ...]
    only_before: tuple[str, ...]
    only_after: tuple[str, ...]
    p_value: float
    rates: tuple[float, float] | None = None
    """With repeats: the mean case rates (before, after) over the shared cases; then
    ``newly_failing`` / ``newly_passing`` are the cases whose rate fell / rose, and ``p_value``
    is the exact sign-flip test's (:func:`~.repeats.sign_flip_p`)."""
    adjusted_p: float | None = None
    """The Holm-adjusted p-value when several suites were gated at once (what the verdict uses)."""
    samples: int = 1
    """The fewest samples a shared case has on either side (1 without repeats)."""

    @property
    def before_rate(self) -> float:
        if self.rates is not None:
            return self.rates[0]
        return self.before_passed / self.shared if self.shared else 0.0

    @property
    def after_rate(self) -> float:
        if self.rates is not None:
            return self.rates[1]
        return self.after_passed / self.shared if self.shared else 0.0

    @property
    def delta(self) -> float:
        if self.rates is not None:
            return self.rates[1] - self.rates[0]
        return (len(self.newly_passing) - len(self.newly_failing)) / self.shared if self.shared else 0.0

    @property
    def gate_p(self) -> float:
        """The p-value the verdict uses: Holm-adjusted when set, else the test's own."""
        return self.p_value if self.adjusted_p is None else self.adjusted_p

    def min_detectable_drop(self, alpha: float) -> float | None:
        """The smallest drop in mean rate these shared cases could show as significant at
        ``alpha``: the sign-flip test needs at least ``k`` cases all moving the same way
        (:func:`min_detectable_failures`; two-sided ``p >= 2 / 2^m`` for ``m`` non-zero
        differences), and each moves by at least ``1 / samples``: ``k / (shared * samples)``."""
        drop = min_detectable_drop(self.shared, alpha)
        return None if drop is None else drop / self.samples

    def direction(self, tolerance: float, alpha: float) -> int:
        """-1 for a significant drop beyond ``tolerance``, +1 for such a gain, else 0."""
        if not self.shared or self.gate_p >= alpha:
            return 0
        if self.delta < -tolerance - 1e-12:
            return -1
        if self.delta > tolerance + 1e-12:
            return 1
        return 0


def paired_comparison(before: Mapping[str, bool], after: Mapping[str, bool]) -> Paired:
    """Compare two runs on the case ids they share, with the exact McNemar p-value."""
    shared = sorted(set(before) & set(after))
    newly_failing = tuple(k for k in shared if before[k] and not after[k])
    newly_passing = tuple(k for k in shared if after[k] and not before[k])
    return Paired(
        shared=len(shared),
        before_passed=sum(1 for k in shared if before[k]),
        after_passed=sum(1 for k in shared if after[k]),
        newly_failing=newly_failing,
        newly_passing=newly_passing,
        only_before=tuple(sorted(set(before) - set(after))),
        only_after=tuple(sorted(set(after) - set(before))),
        p_value=mcnemar_exact(len(newly_failing), len(newly_passing)),
    )


def paired_rates(before: Mapping[str, tuple[int, int]], after: Mapping[str, tuple[int, int]]) -> Paired:
    """Compare two repeated runs on the cases they share, case by case: each case's change in
    pass rate (passes / samples), tested by the exact sign-flip permutation test over cases.
    With one sample per case on both sides this equals :func:`paired_comparison`'s p-value."""
    shared = sorted(set(before) & set(after))
    diffs = {k: Fraction(*after[k]) - Fraction(*before[k]) for k in shared}
    n = len(shared)
    return Paired(
        shared=n,
        before_passed=sum(before[k][0] for k in shared),
        after_passed=sum(after[k][0] for k in shared),
        newly_failing=tuple(k for k in shared if diffs[k] < 0),
        newly_passing=tuple(k for k in shared if diffs[k] > 0),
        only_before=tuple(sorted(set(before) - set(after))),
        only_after=tuple(sorted(set(after) - set(before))),
        p_value=sign_flip_p(list(diffs.values())),
        rates=(mean_rate({k: before[k] for k in shared}), mean_rate({k: after[k] for k in shared})) if n else (0.0, 0.0),
        samples=min((min(before[k][1], after[k][1]) for k in shared), default=1),
    )
