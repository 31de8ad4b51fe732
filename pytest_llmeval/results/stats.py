"""Suite statistics: Wilson intervals, the exact paired McNemar test, and suite aggregation.

Pure functions over plain numbers and :class:`~pytest_llmeval.records.CaseRecord` lists; no
pytest, no scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any, Iterable, Mapping, Sequence

from pytest_llmeval.results.records import CaseRecord

# Markers that say how a test is run, not what it is about: not reported as groups.
_PLUMBING_MARKERS = frozenset(
    {"parametrize", "usefixtures", "filterwarnings", "skip", "skipif", "xfail", "timeout", "flaky"}
)

_OUTCOME_RANK = {"pass": 0, "fail": 1, "error": 2}


def z_for(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (1.959963984540054 for 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``n``; ``(0.0, 1.0)`` when ``n`` is 0."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return (0.0, 1.0)
    z = z_for(confidence)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    low = max(0.0, centre - half)
    high = min(1.0, centre + half)
    # the closed form can lose a hair to rounding at the ends: keep the estimate inside
    return (min(low, p), max(high, p))


def binom_cdf_half(k: int, n: int) -> float:
    """P[X <= k] for X ~ Binomial(n, 0.5)."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if n <= 2000:
        # exact: sum of C(n, i) for i <= k, over 2**n (int / int is correctly rounded)
        total, term = 0, 1
        for i in range(k + 1):
            total += term
            term = term * (n - i) // (i + 1)
        return total / (1 << n)
    log_terms = [_log_comb(n, i) - n * math.log(2.0) for i in range(k + 1)]
    top = max(log_terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in log_terms))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs.

    ``p = min(1, 2 * P[X <= min(b, c)])`` with ``X ~ Binomial(b + c, 0.5)``; 1.0 when there are
    no discordant pairs.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * binom_cdf_half(min(b, c), n))


def mean(values: Iterable[float]) -> float | None:
    items = [float(v) for v in values]
    return math.fsum(items) / len(items) if items else None


@dataclass(frozen=True)
class SuiteResult:
    """The aggregate of one suite (a test function) or one marker group.

    ``outcomes`` maps each case id to ``"pass"``, ``"fail"`` or ``"error"``; ``metrics`` is the
    mean of each graded metric over the cases that recorded it.
    """

    name: str
    n: int
    passed: int
    failed: int
    errors: int
    outcomes: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    fingerprint: Mapping[str, Any] = field(default_factory=dict)
    min_pass_rate: float | None = None
    limited: bool = False
    duration_s: float = 0.0
    reasons: Mapping[str, str] = field(default_factory=dict)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.n if self.n else 0.0

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        return wilson_interval(self.passed, self.n, confidence)

    @property
    def file(self) -> str:
        """The test file part of the suite id (``evals/test_math.py``)."""
        return self.name.split("::", 1)[0]

    @property
    def under_min(self) -> bool:
        return self.min_pass_rate is not None and self.n > 0 and self.pass_rate < self.min_pass_rate - 1e-12


def merge_case_records(records: Sequence[CaseRecord]) -> dict[tuple[str, str], CaseRecord]:
    """One record per (suite, case id): the worst outcome wins (error > fail > pass).

    A case can report more than once (an error in teardown after a pass in the call); it
    counts once, as its worst phase.
    """
    merged: dict[tuple[str, str], CaseRecord] = {}
    for record in records:
        key = (record.suite, record.case_id)
        old = merged.get(key)
        if old is None or _OUTCOME_RANK.get(record.outcome, 2) >= _OUTCOME_RANK.get(old.outcome, 2):
            if old is not None and old.scores and not record.scores:
                record = _with_scores(record, old.scores)
            merged[key] = record
    return merged


def _with_scores(record: CaseRecord, scores: Mapping[str, float]) -> CaseRecord:
    return replace(record, scores=dict(scores))


def _summarize(name: str, records: Sequence[CaseRecord], default_min: float | None) -> SuiteResult:
    outcomes: dict[str, str] = {}
    reasons: dict[str, str] = {}
    metric_values: dict[str, list[float]] = {}
    for r in records:
        key = r.case_id if r.suite == name else f"{r.suite}::{r.case_id}"
        outcomes[key] = r.outcome if r.outcome in _OUTCOME_RANK else "error"
        if r.outcome != "pass" and r.reason:
            reasons[key] = r.reason
        for metric, value in r.scores.items():
            metric_values.setdefault(metric, []).append(float(value))
    counts = {o: 0 for o in _OUTCOME_RANK}
    for o in outcomes.values():
        counts[o] += 1
    min_rate = next((r.min_pass_rate for r in records if r.min_pass_rate is not None), default_min)
    fingerprint = next((dict(r.fingerprint) for r in records if r.fingerprint), {})
    return SuiteResult(
        name=name,
        n=len(outcomes),
        passed=counts["pass"],
        failed=counts["fail"],
        errors=counts["error"],
        outcomes=dict(sorted(outcomes.items())),
        metrics={m: mean(v) for m, v in sorted(metric_values.items())},  # type: ignore[misc]
        fingerprint=fingerprint,
        min_pass_rate=min_rate,
        limited=any(r.limited for r in records),
        duration_s=math.fsum(r.duration_s for r in records),
        reasons=dict(sorted(reasons.items())),
    )


def aggregate_suites(records: Sequence[CaseRecord], default_min_pass_rate: float | None = None) -> list[SuiteResult]:
    """One :class:`SuiteResult` per suite, sorted by suite id."""
    by_suite: dict[str, list[CaseRecord]] = {}
    for (suite, _), record in merge_case_records(records).items():
        by_suite.setdefault(suite, []).append(record)
    return [_summarize(s, by_suite[s], default_min_pass_rate) for s in sorted(by_suite)]


def aggregate_markers(records: Sequence[CaseRecord]) -> list[SuiteResult]:
    """One :class:`SuiteResult` per marker (across suites; case keys are ``suite::case``)."""
    by_marker: dict[str, list[CaseRecord]] = {}
    for record in merge_case_records(records).values():
        for marker in dict.fromkeys(record.markers):
            if marker in _PLUMBING_MARKERS or marker.startswith("llmeval"):
                continue
            by_marker.setdefault(marker, []).append(record)
    return [replace(_summarize(m, by_marker[m], None), fingerprint={}) for m in sorted(by_marker)]


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

    @property
    def before_rate(self) -> float:
        return self.before_passed / self.shared if self.shared else 0.0

    @property
    def after_rate(self) -> float:
        return self.after_passed / self.shared if self.shared else 0.0

    @property
    def delta(self) -> float:
        return (len(self.newly_passing) - len(self.newly_failing)) / self.shared if self.shared else 0.0

    def direction(self, tolerance: float, alpha: float) -> int:
        """-1 for a significant drop beyond ``tolerance``, +1 for such a gain, else 0."""
        if not self.shared or self.p_value >= alpha:
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
