"""Statistics of repeated samples: per-case pass counts, pass@k, pass^k, flaky cases, a
cluster-aware interval, the case-paired test on proportions and the Holm correction.

Samples of one case are not independent (a case the model cannot do fails every time), so
everything here treats the *case* as the unit: the suite's rate is the mean of its cases'
rates, its interval comes from the spread of those case rates, and two runs are compared by
pairing the cases. Pure functions over plain numbers; no pytest, no scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping, Sequence

from statistics import NormalDist

Counts = tuple[int, int]
"""(passes, samples) of one case."""

__all__ = [
    "Counts", "RepeatSummary", "cluster_interval", "cluster_se", "flaky_cases", "holm", "mean_rate", "pass_at_k",
    "pass_hat_k", "sign_flip_p", "suite_pass_at_k", "suite_pass_hat_k", "summarize_repeats",
]  # fmt: skip


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of one case with ``c`` passes in ``n`` samples (Chen et al., 2021):
    ``1 - C(n - c, k) / C(n, k)``, the chance that ``k`` samples drawn without replacement from
    the ``n`` hold at least one pass. Exact (rational arithmetic); needs ``1 <= k <= n``."""
    _check(n, c, k)
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def pass_hat_k(n: int, c: int, k: int) -> float:
    """The unbiased pass^k of one case: ``C(c, k) / C(n, k)``, the chance that ``k`` samples
    drawn without replacement from the ``n`` all pass (with ``k = n``: 1 when every sample passed)."""
    _check(n, c, k)
    return float(Fraction(math.comb(c, k), math.comb(n, k)))


def _check(n: int, c: int, k: int) -> None:
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")


def suite_pass_at_k(cases: Mapping[str, Counts], k: int) -> float | None:
    """The mean pass@k over the cases with at least ``k`` samples (``None``: none has)."""
    values = [pass_at_k(n, c, k) for c, n in cases.values() if n >= k]
    return math.fsum(values) / len(values) if values else None


def suite_pass_hat_k(cases: Mapping[str, Counts], k: int) -> float | None:
    """The mean pass^k over the cases with at least ``k`` samples (``None``: none has)."""
    values = [pass_hat_k(n, c, k) for c, n in cases.values() if n >= k]
    return math.fsum(values) / len(values) if values else None


def mean_rate(cases: Mapping[str, Counts]) -> float:
    """The suite's pass rate: the mean of its cases' rates (each case weighs the same)."""
    rates = [c / n for c, n in cases.values() if n]
    return math.fsum(rates) / len(rates) if rates else 0.0


def cluster_se(cases: Mapping[str, Counts]) -> float:
    """The cluster-robust standard error of :func:`mean_rate`, the case as the cluster.

    The mean of the case rates ``r_i`` over ``G`` cases has the CR1 (small-sample corrected)
    sandwich variance ``G / (G - 1) * sum((r_i - mean)^2) / G^2 = s^2 / G`` with ``s`` the
    sample standard deviation of the ``r_i``: the samples of a case may be correlated in any
    way, only the cases are taken as independent. 0 for fewer than two cases."""
    rates = [c / n for c, n in cases.values() if n]
    g = len(rates)
    if g < 2:
        return 0.0
    m = math.fsum(rates) / g
    return math.sqrt(math.fsum((r - m) ** 2 for r in rates) / (g - 1) / g)


def cluster_interval(cases: Mapping[str, Counts], confidence: float = 0.95) -> tuple[float, float]:
    """A cluster-aware interval for the mean pass rate: a Wilson interval on the *effective*
    number of samples ``n_eff = p (1 - p) / se^2`` (Kish's design effect, ``se`` from
    :func:`cluster_se`), kept between the number of cases (every sample of a case alike) and the
    number of samples (all independent). So a suite of ``G`` cases never looks surer than ``G``
    independent cases can be when its samples agree within cases, and an all-pass or all-miss
    suite still gets a Wilson-width interval. ``(0, 1)`` with no samples."""
    counted = {k: v for k, v in cases.items() if v[1]}
    g = len(counted)
    total = sum(n for _, n in counted.values())
    if not g:
        return (0.0, 1.0)
    p = mean_rate(counted)
    se = cluster_se(counted)
    n_eff = float(total) if se == 0.0 else p * (1.0 - p) / (se * se)
    return _wilson_float(p, min(float(total), max(float(g), n_eff)), confidence)


def _wilson_float(p: float, n: float, confidence: float) -> tuple[float, float]:
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1.0 - p)) / n + z2 / (4.0 * n * n)) / denom
    return (min(max(0.0, centre - half), p), max(min(1.0, centre + half), p))


def flaky_cases(cases: Mapping[str, Counts]) -> list[tuple[str, Counts]]:
    """The flaky cases (``0 < passes < samples``), flakiest first: rate nearest one half, then id."""
    flaky = [(cid, pc) for cid, pc in cases.items() if 0 < pc[0] < pc[1]]
    return sorted(flaky, key=lambda item: (abs(item[1][0] / item[1][1] - 0.5), item[0]))


# ---------------------------------------------------------------- the paired test


def sign_flip_p(differences: Sequence[Fraction]) -> float:
    """Two-sided p-value of the exact paired permutation (sign-flip) test of "no change".

    Under the null each case's difference ``d_i`` (rate after minus rate before) is as likely
    to have the other sign; the statistic is ``S = sum(d_i)`` and ``p = P(|S*| >= |S|)`` over
    the ``2^m`` sign flips of the ``m`` non-zero differences, counted exactly by a dynamic
    programme over the integer scale ``L * d_i`` (``L``: the common denominator). With one
    sample a side every ``d_i`` is -1, 0 or 1 and this is exactly McNemar's exact test."""
    nonzero = [Fraction(d) for d in differences if d != 0]
    if not nonzero:
        return 1.0
    scale = math.lcm(*(d.denominator for d in nonzero))
    steps = [abs(int(d * scale)) for d in nonzero]
    observed = abs(sum(int(d * scale) for d in nonzero))
    counts: dict[int, int] = {0: 1}
    for s in steps:
        nxt: dict[int, int] = {}
        for total, ways in counts.items():
            nxt[total + s] = nxt.get(total + s, 0) + ways
            nxt[total - s] = nxt.get(total - s, 0) + ways
        counts = nxt
    extreme = sum(ways for total, ways in counts.items() if abs(total) >= observed)
    return min(1.0, float(Fraction(extreme, 1 << len(steps))))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order: sorted ascending,
    ``p_(i) * (m - i + 1)`` made non-decreasing and capped at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


# ---------------------------------------------------------------- what the report shows


@dataclass(frozen=True)
class RepeatSummary:
    """A repeated suite's figures: samples per case ``k`` (the most any case has), the mean rate
    and its interval, pass@j and pass^j for each j asked, flaky cases flakiest first."""

    k: int
    cases: int
    samples: int
    mean: float
    interval: tuple[float, float]
    pass_at: Mapping[int, float]
    pass_hat: Mapping[int, float]
    flaky: tuple[tuple[str, Counts], ...]

    def to_json(self) -> dict[str, object]:
        return {
            "k": self.k,
            "cases": self.cases,
            "samples": self.samples,
            "mean_pass_rate": self.mean,
            "ci": list(self.interval),
            "interval": "Wilson on the effective sample size from the cluster-robust (case) standard error",
            "pass_at_k": {str(j): v for j, v in self.pass_at.items()},
            "pass_hat_k": {str(j): v for j, v in self.pass_hat.items()},
            "flaky": len(self.flaky),
            "flakiest": [{"id": cid, "passed": c, "samples": n} for cid, (c, n) in self.flaky[:10]],
        }


def summarize_repeats(cases: Mapping[str, Counts], confidence: float = 0.95, ks: Sequence[int] = ()) -> RepeatSummary:
    """The figures of a repeated suite; pass@j and pass^j for 1, each j in ``ks`` and ``k``."""
    counted = {cid: pc for cid, pc in cases.items() if pc[1]}
    k = max((n for _, n in counted.values()), default=0)
    wanted = sorted({j for j in (1, *ks, k) if 1 <= j <= k})
    at = {j: v for j in wanted if (v := suite_pass_at_k(counted, j)) is not None}
    hat = {j: v for j in wanted if (v := suite_pass_hat_k(counted, j)) is not None}
    return RepeatSummary(
        k=k,
        cases=len(counted),
        samples=sum(n for _, n in counted.values()),
        mean=mean_rate(counted),
        interval=cluster_interval(counted, confidence),
        pass_at=at,
        pass_hat=hat,
        flaky=tuple(flaky_cases(counted)),
    )
