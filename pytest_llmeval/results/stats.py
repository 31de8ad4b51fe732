"""Suite statistics: Wilson intervals, the exact McNemar test, and suite aggregation (the paired
comparison of two runs, and what it can detect, is :mod:`~pytest_llmeval.results.paired`).

Pure functions over plain numbers and :class:`~pytest_llmeval.results.records.CaseRecord` lists; no
pytest, no scipy.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any, Iterable, Mapping, Sequence

from pytest_llmeval.results.fingerprint import Fingerprint
from pytest_llmeval.results.records import CaseRecord, Outcome
from pytest_llmeval.results.repeats import cluster_interval, mean_rate, summarize_repeats

# Markers that say how a test is run, not what it is about: not reported as groups.
_PLUMBING_MARKERS = frozenset(
    {"parametrize", "usefixtures", "filterwarnings", "skip", "skipif", "xfail", "timeout", "flaky"}
)

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
    """The aggregate of one suite (a test function) or one marker group: the one suite-result
    type that the report, ``results.json``, the baseline, ``compare`` and the history share.

    ``outcomes`` maps each case id to its :class:`~pytest_llmeval.results.records.Outcome`. ``n`` counts
    the cases that count (pass, miss, error); skipped and xfailed cases are counted apart and
    are not part of ``n`` nor of the pass rate. ``metrics`` is the mean of each graded metric
    over the cases that recorded it.
    """

    name: str
    n: int
    passed: int
    failed: int
    errors: int
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    fingerprint: Fingerprint = field(default_factory=Fingerprint)
    min_pass_rate: float | None = None
    limited: bool = False
    duration_s: float = 0.0
    reasons: Mapping[str, str] = field(default_factory=dict)
    skipped: int = 0
    xfailed: int = 0
    case_passes: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """With repeats: each counted case's (passes, samples); empty for a suite sampled once.
    Then ``outcomes`` holds each case's outcome (an error if a sample errored, a pass if the
    samples meet ``require``, by default all of them) and ``n``/``passed``... count cases."""
    require: str | None = None
    variants: Mapping[str, "SuiteResult"] = field(default_factory=dict)
    """Per perturbation name (``perturb=``), its variants' results, keyed by the original cases'
    ids; they never count in this suite's own figures."""
    min_worst_case: float | None = None

    def __post_init__(self) -> None:
        if any(not isinstance(o, Outcome) for o in self.outcomes.values()):
            object.__setattr__(self, "outcomes", {k: Outcome.parse(v) for k, v in self.outcomes.items()})
        if not isinstance(self.fingerprint, Fingerprint):
            object.__setattr__(self, "fingerprint", Fingerprint.from_json(self.fingerprint))

    @classmethod
    def from_outcomes(cls, name: str, outcomes: Mapping[str, Outcome | str], **kw: Any) -> "SuiteResult":
        """A suite whose counts are those of ``outcomes``."""
        parsed = {k: Outcome.parse(v) for k, v in sorted(outcomes.items())}
        counts = Counter(parsed.values())
        return cls(
            name=name,
            n=sum(counts[o] for o in Outcome if o.counted),
            passed=counts[Outcome.PASS],
            failed=counts[Outcome.MISS],
            errors=counts[Outcome.ERROR],
            skipped=counts[Outcome.SKIPPED],
            xfailed=counts[Outcome.XFAILED],
            outcomes=parsed,
            **kw,
        )

    @property
    def repeated(self) -> bool:
        """Whether some case has more than one sample."""
        return any(k > 1 for _, k in self.case_passes.values())

    @property
    def pass_rate(self) -> float:
        """The share of cases passing; with repeats and no ``require``, the mean of the cases' rates."""
        if self.repeated and self.require is None:
            return mean_rate(self.case_passes)
        return self.passed / self.n if self.n else 0.0

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Wilson over cases; with repeats and no ``require``, :func:`~.repeats.cluster_interval`."""
        if self.repeated and self.require is None:
            return cluster_interval(self.case_passes, confidence)
        return wilson_interval(self.passed, self.n, confidence)

    def rates(self) -> dict[str, tuple[int, int]]:
        """Each counted case's (passes, samples): (1, 1) or (0, 1) for a suite sampled once."""
        if self.case_passes:
            return dict(self.case_passes)
        return {k: (int(passed), 1) for k, passed in self.passes().items()}

    @property
    def file(self) -> str:
        """The test file part of the suite id (``evals/test_math.py``)."""
        return self.name.split("::", 1)[0]

    @property
    def under_min(self) -> bool:
        return self.min_pass_rate is not None and self.n > 0 and self.pass_rate < self.min_pass_rate - 1e-12

    def passes(self) -> dict[str, bool]:
        """Each counted case: passed or not (what the paired test compares); an error is not a pass."""
        return {k: o is Outcome.PASS for k, o in self.outcomes.items() if o.counted}

    # ------------------------------------------------------------ results.json

    def to_json(self, confidence: float = 0.95, *, cases: bool = True, ks: Sequence[int] = ()) -> dict[str, Any]:
        """The suite as ``results.json`` holds it; ``cases=False`` for a marker group; ``ks``:
        with repeats, more k for pass@k and pass^k."""
        low, high = self.interval(confidence)
        data: dict[str, Any] = {
            "n": self.n,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "skipped": self.skipped,
            "xfailed": self.xfailed,
            "pass_rate": self.pass_rate,
            "ci": [low, high],
            "metrics": dict(self.metrics),
        }
        if self.case_passes:
            data["repeats"] = summarize_repeats(self.case_passes, confidence, ks).to_json()
        if not cases:
            return data
        if self.variants:
            data["variants"] = {name: v.to_json(confidence, ks=ks) for name, v in sorted(self.variants.items())}
        if self.min_worst_case is not None:
            data["min_worst_case"] = self.min_worst_case
        if self.case_passes:
            data.update(samples={k: list(v) for k, v in self.case_passes.items()}, require=self.require)
        data.update(
            min_pass_rate=self.min_pass_rate,
            under_min=self.under_min,
            fingerprint=self.fingerprint.to_json(),
            limited=self.limited,
            duration_s=self.duration_s,
            cases={k: o.value for k, o in self.outcomes.items() if o.counted},
            not_counted={k: o.value for k, o in self.outcomes.items() if not o.counted},
        )
        return data

    @classmethod
    def from_json(cls, name: str, data: Any) -> "SuiteResult":
        """A suite read back from ``results.json``; raises ``ValueError`` saying what is wrong.

        ``cases`` may hold outcome strings or a baseline's 1 / 0; counts are recomputed from
        the cases."""
        cases = data.get("cases") if isinstance(data, Mapping) else None
        if not isinstance(cases, Mapping):
            raise ValueError("has no per-case outcomes")
        outcomes: dict[str, Outcome] = {}
        for key, value in cases.items():
            if value in (0, 1) and not isinstance(value, (bool, float)):
                outcomes[str(key)] = Outcome.from_bit(value)
            elif value in ("pass", "fail", "error"):
                outcomes[str(key)] = Outcome(value)
            else:
                raise ValueError(f"has an unknown outcome {value!r} for case {key!r}")
        extra = data.get("not_counted")
        for key, value in (extra.items() if isinstance(extra, Mapping) else ()):
            if value in ("skipped", "xfailed"):
                outcomes[str(key)] = Outcome(value)
        metrics = data.get("metrics")
        min_rate = data.get("min_pass_rate")
        samples = _read_samples(data.get("samples"), outcomes)
        variants = data.get("variants")
        worst = data.get("min_worst_case")
        return cls.from_outcomes(
            name,
            outcomes,
            variants={str(k): cls.from_json(f"{name}~{k}", v) for k, v in variants.items()} if isinstance(variants, Mapping) else {},
            min_worst_case=float(worst) if isinstance(worst, (int, float)) and not isinstance(worst, bool) else None,
            metrics=dict(metrics) if isinstance(metrics, Mapping) else {},
            fingerprint=Fingerprint.from_json(data.get("fingerprint") if isinstance(data.get("fingerprint"), Mapping) else None),
            min_pass_rate=float(min_rate) if isinstance(min_rate, (int, float)) and not isinstance(min_rate, bool) else None,
            limited=bool(data.get("limited")),
            case_passes=samples,
            require=data.get("require") if data.get("require") in ("all", "majority") else None,
        )


def _read_samples(raw: Any, outcomes: Mapping[str, Outcome]) -> dict[str, tuple[int, int]]:
    """``results.json``'s per-case ``[passes, samples]`` of a repeated suite (none: sampled once)."""
    if not isinstance(raw, Mapping):
        return {}
    out = {}
    for key, value in raw.items():
        ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        if not ok or not 0 <= value[0] <= value[1] or value[1] < 1 or str(key) not in outcomes:
            raise ValueError(f"has bad samples {value!r} for case {key!r} (expected [passes, samples])")
        out[str(key)] = (int(value[0]), int(value[1]))
    return out


def case_outcome(samples: Sequence[Outcome], require: str | None) -> Outcome:
    """One case's outcome from its counted samples: an error if one errored, a pass if the
    passes meet ``require`` (``"majority"``: more than half; otherwise all), else a miss."""
    if Outcome.ERROR in samples:
        return Outcome.ERROR
    passes = sum(o is Outcome.PASS for o in samples)
    needed = len(samples) // 2 + 1 if require == "majority" else len(samples)
    return Outcome.PASS if passes >= needed else Outcome.MISS


def merge_case_records(records: Sequence[CaseRecord]) -> dict[tuple[str, str], CaseRecord]:
    """One record per (suite, case id, sample): the worst outcome wins (error > miss > skipped > pass).

    A case can report more than once (an error in teardown after a pass in the call); it
    counts once, as its worst phase. Each sample of a repeated case is its own entry.
    """
    merged: dict[tuple[str, str, int], CaseRecord] = {}
    for record in records:
        key = (record.suite, record.case_id, record.repeat)
        old = merged.get(key)
        if old is None or record.outcome.rank >= old.outcome.rank:
            if old is not None and old.scores and not record.scores:
                record = replace(record, scores=dict(old.scores))
            merged[key] = record
    return merged


def _summarize(name: str, records: Sequence[CaseRecord], default_min: float | None) -> SuiteResult:
    outcomes: dict[str, Outcome] = {}
    reasons: dict[str, str] = {}
    metric_values: dict[str, list[float]] = {}
    samples: dict[str, list[Outcome]] = {}
    require = next((r.require for r in records if r.require is not None), None)
    for r in records:
        key = r.case_id if r.suite == name else f"{r.suite}::{r.case_id}"
        samples.setdefault(key, []).append(r.outcome)
        if r.outcome is not Outcome.PASS and r.reason:
            reasons.setdefault(key, r.reason)
        for metric, value in r.scores.items():
            metric_values.setdefault(metric, []).append(float(value))
    repeated = any(r.repeats > 1 for r in records)
    case_passes: dict[str, tuple[int, int]] = {}
    for key, outs in samples.items():
        counted = [o for o in outs if o.counted]
        if not repeated:
            outcomes[key] = outs[0]
        elif counted:
            outcomes[key] = case_outcome(counted, require)
            case_passes[key] = (sum(o is Outcome.PASS for o in counted), len(counted))
        else:
            outcomes[key] = min(outs, key=lambda o: o.rank)
    min_rate = next((r.min_pass_rate for r in records if r.min_pass_rate is not None), default_min)
    fingerprint = next((r.fingerprint for r in records if r.fingerprint), Fingerprint())
    return SuiteResult.from_outcomes(
        name,
        outcomes,
        metrics={m: mean(v) for m, v in sorted(metric_values.items())},
        fingerprint=fingerprint,
        min_pass_rate=min_rate,
        limited=any(r.limited for r in records),
        duration_s=math.fsum(r.duration_s for r in records),
        reasons=dict(sorted(reasons.items())),
        case_passes=case_passes,
        require=require if repeated else None,
    )


def aggregate_suites(records: Sequence[CaseRecord], default_min_pass_rate: float | None = None) -> list[SuiteResult]:
    """One :class:`SuiteResult` per suite, sorted by suite id; a suite's variants (``perturb=``)
    in its ``variants``, out of its own figures (:mod:`~pytest_llmeval.results.beyond`)."""
    from pytest_llmeval.results.variant_records import split_records

    plain, variants = split_records(merge_case_records(records).values())
    by_suite: dict[str, list[CaseRecord]] = {}
    for record in plain:
        by_suite.setdefault(record.suite, []).append(record)
    out = []
    for name in sorted(set(by_suite) | set(variants)):
        own = by_suite.get(name, [])
        result = _summarize(name, own, default_min_pass_rate) if own else SuiteResult(name, 0, 0, 0, 0)
        every = own + [r for rs in variants.get(name, {}).values() for r in rs]
        worst = next((r.min_worst_case for r in every if r.min_worst_case is not None), None)
        found = {p: replace(_summarize(name, rs, None), min_pass_rate=None) for p, rs in sorted(variants.get(name, {}).items())}
        if not own:  # only variants ran (-k '~typos'): the suite's fingerprint and gates come from them
            first = every[0]
            result = replace(result, fingerprint=first.fingerprint, min_pass_rate=first.min_pass_rate or default_min_pass_rate)
        out.append(replace(result, variants=found, min_worst_case=worst) if found or worst is not None else result)
    return out


def aggregate_markers(records: Sequence[CaseRecord]) -> list[SuiteResult]:
    """One :class:`SuiteResult` per marker (across suites; case keys are ``suite::case``), over
    the cases as written (variants and the search item aside)."""
    from pytest_llmeval.results.variant_records import split_records

    by_marker: dict[str, list[CaseRecord]] = {}
    for record in split_records(merge_case_records(records).values())[0]:
        for marker in dict.fromkeys(record.markers):
            if marker in _PLUMBING_MARKERS or marker.startswith("llmeval"):
                continue
            by_marker.setdefault(marker, []).append(record)
    return [replace(_summarize(m, by_marker[m], None), fingerprint=Fingerprint()) for m in sorted(by_marker)]
