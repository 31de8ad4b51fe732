"""Records beyond a suite's cases as written, split before aggregation: variants (``perturb=``)
apart from the suite's own figures, rotations (``permute="cyclic"``) folded into one outcome per
case, the search item (``search=``) left out. Pure functions over records.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Sequence

from pytest_llmeval.results.records import CaseRecord, Outcome

__all__ = ["VARIANT_SEP", "VariantRecords", "fold_rotations", "split_records"]

VARIANT_SEP = "~"
"""Between a case id and its perturbation (``qa-007~typos``), a suite and a perturbation's unit."""

VariantRecords = dict[str, dict[str, list[CaseRecord]]]
"""suite -> perturbation name -> the records of its variants (case ids: the originals')."""


def split_records(records: Iterable[CaseRecord]) -> tuple[list[CaseRecord], VariantRecords]:
    """The records that make the suites' own figures (rotations folded into one per case, the
    search item left out) and, per suite and perturbation, the variants' records keyed by the
    original case's id."""
    plain: list[CaseRecord] = []
    rotated: list[CaseRecord] = []
    variants: VariantRecords = {}
    for r in records:
        if r.search is not None:
            continue
        if r.perturbation is not None:
            original = r.original_id or r.case_id.rsplit(VARIANT_SEP, 1)[0]
            variants.setdefault(r.suite, {}).setdefault(r.perturbation, []).append(replace(r, case_id=original))
        elif r.rotation is not None:
            rotated.append(r)
        else:
            plain.append(r)
    return plain + fold_rotations(rotated), variants


def fold_rotations(records: Sequence[CaseRecord]) -> list[CaseRecord]:
    """One record per case from its rotations' records (CircularEval): a pass only when every
    rotation passed, an error when one errored, else a miss whose reason names the first wrong
    rotation. The folded record keeps the first rotation's output (the case as written)."""
    by_case: dict[tuple[str, str], list[CaseRecord]] = {}
    for r in records:
        by_case.setdefault((r.suite, r.original_id or r.case_id), []).append(r)
    out = []
    for (_suite, case_id), group in by_case.items():
        group = sorted(group, key=lambda r: r.rotation or 0)
        counted = [r for r in group if r.outcome.counted]
        if not counted:
            outcome, reason = min((r.outcome for r in group), key=lambda o: o.rank), group[0].reason
        elif any(r.outcome is Outcome.ERROR for r in counted):
            bad = next(r for r in counted if r.outcome is Outcome.ERROR)
            outcome, reason = Outcome.ERROR, f"rotation {bad.rotation}: {bad.reason}"
        elif all(r.outcome is Outcome.PASS for r in group):
            outcome, reason = Outcome.PASS, ""
        else:
            bad = next(r for r in group if r.outcome is not Outcome.PASS)
            outcome, reason = Outcome.MISS, f"rotation {bad.rotation} of {len(group)}: {bad.reason or bad.outcome.value}"
        first = group[0]
        out.append(replace(first, case_id=case_id, outcome=outcome, reason=reason, rotation=None,
                           duration_s=sum(r.duration_s for r in group)))  # fmt: skip
    return out
