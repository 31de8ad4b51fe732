"""The gate's words for a :class:`~pytest_llmeval.results.comparison.Comparison` of a suite with
its baseline entry: the table's verdict cell, the detail lines under the table, the blocking
reason, and the ``verdict`` object of ``results.json``."""

from __future__ import annotations

from typing import Any, Iterator

from pytest_llmeval.results.comparison import Comparison, Verdict
from pytest_llmeval.results.messages import Markup, listing, pct, points, pvalues
from pytest_llmeval.results.paired import min_detectable_drop, min_detectable_failures, too_small_to_detect

__all__ = ["comparison_json", "detail_lines", "detection_note", "incomparable_reason", "verdict_cell"]


def detection_note(n: int, tolerance: float, alpha: float) -> str:
    """What ``n`` shared cases can detect, when that is more than ``tolerance``
    (``n=20 can only detect drops of 30+ pts at alpha 0.05``); '' when they can detect it."""
    if not too_small_to_detect(n, tolerance, alpha):
        return ""
    if min_detectable_drop(n, alpha) is None:
        return f"n={n} cannot detect any drop at alpha {alpha:g}"
    tenths = min_detectable_failures(alpha) * 1000 // n  # rounded down: drops this large can be detected
    return f"n={n} can only detect drops of {tenths / 10:g}+ pts at alpha {alpha:g}"


def _note(c: Comparison) -> str:
    """The comparison's note, said of the baseline."""
    return f"{c.note} with the baseline" if c.note else ""


def incomparable_reason(c: Comparison) -> str:
    """Why an INCOMPARABLE suite is: the must-match fields that differ, or its note."""
    if c.differing:
        return ", ".join(c.differing) + (" differ" if len(c.differing) != 1 else " differs")
    return _note(c)


def verdict_cell(c: Comparison | None, *, recorded: bool, tolerance: float, alpha: float) -> str:
    """The table's ``baseline`` cell: ``REGRESSED -15.0 pts (p<0.001)``, ``NEW, recorded``..."""
    if c is None:
        return "-"
    text = c.verdict.value
    if c.paired is not None and c.paired.shared and c.verdict is not Verdict.INCOMPARABLE:
        note = "" if c.verdict is Verdict.REGRESSED else detection_note(c.paired.shared, tolerance, alpha)
        text += f" {points(c.paired.delta)} ({pvalues(c.paired.p_value, c.paired.adjusted_p)}{'; ' + note if note else ''})"
    elif c.differing:
        text += f" ({', '.join(c.differing)})"
    if recorded:
        text += ", recorded"
    return text


def detail_lines(name: str, c: Comparison | None, *, recorded: bool) -> Iterator[tuple[str, Markup]]:
    """The lines under the table for one suite: why it is INCOMPARABLE, or its change with the
    cases newly failing and newly passing (nothing for a NEW suite or a quiet UNCHANGED one)."""
    if c is None or c.verdict is Verdict.NEW:
        return
    if c.verdict is Verdict.INCOMPARABLE:
        what = _note(c) or f"{', '.join(c.differing)} differ{'s' if len(c.differing) == 1 else ''} from the baseline"
        yield f"{name}: INCOMPARABLE: {what}", {"red": not recorded}
        for d in c.details:
            yield f"  {d}", {}
        return
    p = c.paired
    if p is None:
        return
    changed = p.newly_failing or p.newly_passing or p.only_before or p.only_after
    if c.verdict is Verdict.UNCHANGED and not changed and not c.compared_across:
        return
    markup: Markup = {"red": True} if c.verdict is Verdict.REGRESSED else {"green": True} if c.verdict is Verdict.IMPROVED else {}
    head = (
        f"{name}: {c.verdict.value} {pct(p.before_rate)} -> {pct(p.after_rate)} on {p.shared} shared "
        f"case{'s' if p.shared != 1 else ''} ({points(p.delta)}, {pvalues(p.p_value, p.adjusted_p)})"
    )
    if c.verdict is Verdict.UNCHANGED and changed:
        head += " within noise" if (p.newly_failing or p.newly_passing) else ""
    yield head, markup
    across = [f for f in c.compared_across if f != "versions"]
    if across:
        yield f"  compared across a different {', '.join(across)}", {}
    if c.versions_changed:
        yield f"  versions changed since the baseline: {', '.join(c.versions_changed)}", {}
    if p.newly_failing:
        yield f"  newly failing ({len(p.newly_failing)}): {listing(p.newly_failing)}", {"red": c.verdict is Verdict.REGRESSED}
    if p.newly_passing:
        yield f"  newly passing ({len(p.newly_passing)}): {listing(p.newly_passing)}", {"green": c.verdict is Verdict.IMPROVED}
    if p.only_after:
        yield f"  not in the baseline ({len(p.only_after)}): {listing(p.only_after)}", {}
    if p.only_before:
        yield f"  in the baseline, not run ({len(p.only_before)}): {listing(p.only_before)}", {}


def comparison_json(c: Comparison | None, *, recorded: bool, tolerance: float, alpha: float) -> dict[str, Any] | None:
    """The ``verdict`` object of a suite in ``results.json``."""
    if c is None:
        return None
    data: dict[str, Any] = {
        "verdict": c.verdict.value,
        "baseline_rate": c.before_rate,
        "differing": list(c.differing),
        "details": list(c.details),
        "compared_across": list(c.compared_across),
        "versions_changed": list(c.versions_changed),
        "note": _note(c),
        "recorded": recorded,
    }
    if c.paired is not None:
        p = c.paired
        data.update(
            shared=p.shared,
            before_rate=p.before_rate,
            after_rate=p.after_rate,
            delta=p.delta,
            p_value=p.p_value,
            p_holm=p.adjusted_p,
            test="sign-flip permutation over cases" if p.rates is not None else "exact McNemar",
            newly_failing=list(p.newly_failing),
            newly_passing=list(p.newly_passing),
            not_in_baseline=list(p.only_after),
            not_run=list(p.only_before),
            min_detectable_drop=p.min_detectable_drop(alpha) if p.shared else None,
            too_small=bool(p.shared) and too_small_to_detect(p.shared, tolerance, alpha),
        )
    return data
