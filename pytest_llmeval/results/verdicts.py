"""The gate's words for a :class:`~pytest_llmeval.results.comparison.Comparison` of a suite with
its baseline entry: the table's verdict cell, the detail lines under the table (and their folded
Markdown twin in the summary), the blocking reason, and the ``verdict`` object of ``results.json``."""

from __future__ import annotations

from typing import Any, Iterator

from pytest_llmeval.escaping import html_text, markdown_fence, markdown_text, terminal
from pytest_llmeval.results.comparison import Comparison, Verdict
from pytest_llmeval.results.messages import Markup, listing, pct, plural, points, pvalue, pvalues
from pytest_llmeval.results.paired import min_detectable_drop, min_detectable_failures, too_small_to_detect

__all__ = [
    "comparison_json", "detail_lines", "detection_note", "incomparable_reason", "markdown_details", "not_comparable_change", "verdict_cell",
]  # fmt: skip


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
        return listing(list(c.differing)) + (" differ" if len(c.differing) != 1 else " differs")
    return _note(c)


def not_comparable_change(c: Comparison) -> str:
    """An INCOMPARABLE suite's change, which the gate does not judge: ``75.0% in the baseline,
    100.0% now (+25.0 pts on 4 shared cases, p=0.50)``; '' when the baseline has no rate."""
    p = c.paired
    if p is not None and p.shared:
        shared = plural(p.shared, "shared case")
        return f"{pct(p.before_rate)} in the baseline, {pct(p.after_rate)} now ({points(p.delta)} on {shared}, {pvalue(p.p_value)})"
    if c.before is None or c.after is None:
        return ""
    return f"{pct(c.before.pass_rate)} in the baseline (n={c.before.n}), {pct(c.after.pass_rate)} now (n={c.after.n})"


def _incomparable_lines(name: str, c: Comparison, *, recorded: bool) -> Iterator[tuple[str, Markup]]:
    """Why the suite is INCOMPARABLE, its change marked as not comparable, and what changed:
    the prompt's text as a diff (when both runs recorded it), the other fields' old -> new."""
    what = _note(c) or f"{incomparable_reason(c)} from the baseline"
    yield f"{name}: INCOMPARABLE: {what}", {"red": not recorded}
    change = not_comparable_change(c)
    if change:
        yield f"  not comparable: {change}", {}
    if c.prompt_diff:
        yield "  prompt, baseline -> this run:", {}
        for line in c.prompt_diff:
            yield f"    {line}", {"red": line.startswith("-"), "green": line.startswith("+")}
    for d in c.details:
        if not (c.prompt_diff and d.startswith("prompt: ")):  # the diff says it in words
            yield f"  {d}", {}


def verdict_cell(c: Comparison | None, *, recorded: bool, tolerance: float, alpha: float) -> str:
    """The table's ``baseline`` cell: ``REGRESSED -15.0 pts (p<0.001)``, ``NEW, recorded``..."""
    if c is None:
        return "-"
    text = c.verdict.value
    if c.paired is not None and c.paired.shared and c.verdict is not Verdict.INCOMPARABLE:
        note = "" if c.verdict is Verdict.REGRESSED else detection_note(c.paired.shared, tolerance, alpha)
        text += f" {points(c.paired.delta)} ({pvalues(c.paired.p_value, c.paired.adjusted_p)}{'; ' + note if note else ''})"
    elif c.differing:
        was = f"; baseline {pct(c.before_rate)}" if c.before_rate is not None else ""
        text += f" ({', '.join(c.differing)}{was})"
    if recorded:
        text += ", recorded"
    return text


def detail_lines(name: str, c: Comparison | None, *, recorded: bool) -> Iterator[tuple[str, Markup]]:
    """The lines under the table for one suite: why it is INCOMPARABLE, or its change with the
    cases newly failing and newly passing (nothing for a NEW suite or a quiet UNCHANGED one)."""
    if c is None or c.verdict is Verdict.NEW:
        return
    if c.verdict is Verdict.INCOMPARABLE:
        yield from _incomparable_lines(name, c, recorded=recorded)
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


def markdown_details(name: str, c: Comparison | None) -> list[str]:
    """The Markdown summary's folded section for one suite whose cases flipped or whose prompt
    changed: its verdict, the prompt's diff, the cases newly failing and newly passing; nothing
    for the other suites."""
    changed = c is not None and c.paired is not None and bool(c.paired.newly_failing or c.paired.newly_passing)
    if c is None or not (changed or c.prompt_diff):
        return []
    p = c.paired
    if c.verdict is Verdict.INCOMPARABLE:
        change = not_comparable_change(c)
        head = f"{c.verdict.value}: {incomparable_reason(c)}" + (f"; not comparable: {change}" if change else "")
    else:
        head = f"{c.verdict.value} ({points(p.delta)}, {pvalues(p.p_value, p.adjusted_p)})"  # type: ignore[union-attr]
    out = [f"<details><summary><code>{html_text(name)}</code>: {html_text(head)}</summary>", ""]
    if c.prompt_diff:
        fence = markdown_fence(c.prompt_diff)
        out.extend(["The prompt, baseline -> this run:", "", f"{fence}diff", *(terminal(line) for line in c.prompt_diff), fence, ""])
    if p is not None:
        if p.newly_failing:
            out.append(f"- newly failing ({len(p.newly_failing)}): " + listing(p.newly_failing, code=True))
        if p.newly_passing:
            out.append(f"- newly passing ({len(p.newly_passing)}): " + listing(p.newly_passing, code=True))
        if c.versions_changed:
            out.append(f"- versions changed since the baseline: {markdown_text(', '.join(c.versions_changed))}")
    return out + ["", "</details>", ""]


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
        "comparable": c.verdict is not Verdict.INCOMPARABLE,
        "prompt_diff": list(c.prompt_diff),
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
