"""The one comparison of suites: each suite of a run against the same suite of an earlier run.

The gate (a run against its baseline), ``python -m pytest_llmeval compare`` (run B against run
A) and the HTML compare view all call :func:`compare_suites` and get one :class:`Comparison`
per suite; each says it in its own words (REGRESSED / WORSE, KEEP / DISCARD...).

A suite is compared on the case ids both runs hold: the exact paired McNemar test with one
sample per case, the exact sign-flip permutation test on per-case pass rates with repeats
(:mod:`~pytest_llmeval.results.paired`), and Holm's correction across the suites compared at
once. Fingerprint fields that must match (prompt, generation settings, few-shot count, dataset)
make a suite INCOMPARABLE unless ``force``; a different model is what one compares.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Iterable, Mapping

from pytest_llmeval.results.paired import Paired, paired_comparison, paired_rates
from pytest_llmeval.results.fingerprint import Fingerprint
from pytest_llmeval.results.repeats import holm
from pytest_llmeval.results.stats import SuiteResult

__all__ = [
    "NO_SHARED_CASES", "Comparison", "Verdict", "adjust_for_suites", "compare_suite", "compare_suites", "fingerprint_diff",
    "prompt_diff",
]  # fmt: skip

NO_SHARED_CASES = "no case ids in common"


class Verdict(str, Enum):
    """What the comparison found for one suite (the gate prints these words as they are)."""

    REGRESSED = "REGRESSED"
    IMPROVED = "IMPROVED"
    UNCHANGED = "UNCHANGED"
    NEW = "NEW"
    INCOMPARABLE = "INCOMPARABLE"

    def __str__(self) -> str:
        return self.value


_BY_DIRECTION = {-1: Verdict.REGRESSED, 1: Verdict.IMPROVED, 0: Verdict.UNCHANGED}
_TESTED = frozenset(_BY_DIRECTION.values())


@dataclass(frozen=True)
class Comparison:
    """One suite of a run (``after``) against the same suite of an earlier run (``before``).

    ``paired`` is the paired test on the shared cases (``None`` for a NEW suite, and for an
    INCOMPARABLE one unless asked for); ``differing`` names the must-match fingerprint fields
    that differ and ``details`` says how (``generation.max_new_tokens: 32 -> 64``);
    ``compared_across`` names the compared fields that differ (a different model);
    ``versions_changed`` which versions differ (``transformers 4.57.0 -> 4.58.1``); ``note``
    why a suite with matching fingerprints is INCOMPARABLE (:data:`NO_SHARED_CASES`);
    ``prompt_diff`` the changed lines of the prompt's text (:func:`prompt_diff`), when the prompt
    differs and both runs recorded its text.
    """

    suite: str
    verdict: Verdict
    paired: Paired | None = None
    differing: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    compared_across: tuple[str, ...] = ()
    note: str = ""
    versions_changed: tuple[str, ...] = ()
    before: SuiteResult | None = None
    after: SuiteResult | None = None
    prompt_diff: tuple[str, ...] = ()

    @property
    def before_rate(self) -> float | None:
        """The earlier run's pass rate of the whole suite (``None`` for a NEW suite)."""
        return self.before.pass_rate if self.before is not None else None

    @property
    def tested(self) -> bool:
        """Whether the paired test decided the verdict (REGRESSED, IMPROVED or UNCHANGED)."""
        return self.verdict in _TESTED and self.paired is not None and bool(self.paired.shared)

    @property
    def direction(self) -> int:
        """-1 significantly worse, +1 significantly better, 0 otherwise."""
        return {Verdict.REGRESSED: -1, Verdict.IMPROVED: 1}.get(self.verdict, 0)


def fingerprint_diff(
    before: Fingerprint | Mapping[str, Any], after: Fingerprint | Mapping[str, Any]
) -> tuple[list[str], list[str], list[str]]:
    """(must-match fields that differ, how they differ, compared fields that differ)."""
    diff = Fingerprint.from_json(before).diff(Fingerprint.from_json(after))
    return list(diff.differing), list(diff.details), list(diff.compared_across)


PROMPT_DIFF_LINES = 12
"""The most lines of a prompt's diff that a comparison keeps (the rest are counted)."""


def prompt_diff(before: Fingerprint, after: Fingerprint, limit: int = PROMPT_DIFF_LINES) -> tuple[str, ...]:
    """The prompt's text, before -> after, as a unified diff with one line of context (without
    its file header; hunk headers only when there are several hunks); () when either side did
    not record the text (an older baseline) or the texts are the same."""
    a, b = before.prompt_text, after.prompt_text
    if a is None or b is None or a == b:
        return ()
    lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), n=1, lineterm=""))[2:]
    if sum(line.startswith("@@") for line in lines) == 1:
        lines = [line for line in lines if not line.startswith("@@")]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines)"]
    return tuple(lines)


def _paired(before: SuiteResult, after: SuiteResult) -> Paired:
    if before.repeated or after.repeated:
        return paired_rates(before.rates(), after.rates())
    return paired_comparison(before.passes(), after.passes())


def compare_suite(
    after: SuiteResult, before: SuiteResult | None, *, tolerance: float, alpha: float, force: bool = False, pair_incomparable: bool = False
) -> Comparison:
    """The verdict for one suite against its earlier run (``None``: NEW), before Holm.

    ``force`` compares suites whose must-match fields differ; ``pair_incomparable`` runs the
    paired test on an INCOMPARABLE suite too (shown beside the verdict, never deciding it)."""
    if before is None:
        return Comparison(after.name, Verdict.NEW, after=after)
    diff = before.fingerprint.diff(after.fingerprint)
    found = Comparison(
        after.name, Verdict.INCOMPARABLE, differing=diff.differing, details=diff.details, compared_across=diff.compared_across,
        versions_changed=diff.versions_changed, before=before, after=after,
        prompt_diff=prompt_diff(before.fingerprint, after.fingerprint) if "prompt" in diff.differing else (),
    )  # fmt: skip
    if diff.differing and not force:
        return replace(found, paired=_paired(before, after)) if pair_incomparable else found
    paired = _paired(before, after)
    if paired.shared == 0:
        return replace(found, paired=paired, note=NO_SHARED_CASES)
    return replace(found, verdict=_BY_DIRECTION[paired.direction(tolerance, alpha)], paired=paired)


def adjust_for_suites(comparisons: Mapping[str, Comparison], *, tolerance: float, alpha: float) -> dict[str, Comparison]:
    """Holm's correction across the suites compared at once: each tested suite's p-value is
    adjusted over all of them, and its verdict decided again on the adjusted p (with one suite,
    nothing changes). NEW and INCOMPARABLE suites take no part."""
    tested = [name for name, c in comparisons.items() if c.tested]
    if len(tested) < 2:
        return dict(comparisons)
    adjusted = holm([comparisons[name].paired.p_value for name in tested])  # type: ignore[union-attr]
    out = dict(comparisons)
    for name, p in zip(tested, adjusted):
        c = comparisons[name]
        paired = replace(c.paired, adjusted_p=p)  # type: ignore[arg-type]
        out[name] = replace(c, paired=paired, verdict=_BY_DIRECTION[paired.direction(tolerance, alpha)])
    return out


def compare_suites(
    before: Mapping[str, SuiteResult],
    after: Iterable[SuiteResult],
    *,
    tolerance: float,
    alpha: float,
    force: bool = False,
    pair_incomparable: bool = False,
) -> dict[str, Comparison]:
    """Each suite of ``after`` (in its order) against the suite of the same name in ``before``,
    and each perturbation of a suite (``perturb=``) as a suite of its own (``suite~typos``),
    Holm-corrected across the tested ones."""
    from pytest_llmeval.results.beyond import units

    earlier = {u.name: u for u in units(before.values())}
    found = {
        s.name: compare_suite(s, earlier.get(s.name), tolerance=tolerance, alpha=alpha, force=force, pair_incomparable=pair_incomparable)
        for s in units(after)
    }
    return adjust_for_suites(found, tolerance=tolerance, alpha=alpha)
