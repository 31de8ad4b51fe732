"""Run B against run A, as ``python -m pytest_llmeval compare A B`` says it.

A and B are ``results.json`` files written by ``--llmeval-output``. Each suite both share is
compared by :func:`~pytest_llmeval.results.comparison.compare_suites` (on the case ids both ran,
Holm-corrected across suites); the overall verdict is

- KEEP: some suite significantly better, none significantly worse;
- UNCHANGED: no significant change;
- DISCARD: some suite significantly worse, none better;
- MIXED: some better, some worse;

and INCOMPARABLE suites are those whose must-match fingerprint fields differ (``force``
compares them anyway). The command line (:mod:`pytest_llmeval.cli.compare`) maps these to exit
statuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from pytest_llmeval.jsonfiles import json_document
from pytest_llmeval.results.comparison import Comparison, compare_suites
from pytest_llmeval.results.messages import listing, pct, points, pvalue
from pytest_llmeval.results.shapes import check_results
from pytest_llmeval.results.stats import SuiteResult
from pytest_llmeval.results.verdicts import incomparable_reason

__all__ = ["ResultsError", "RunComparison", "compare_runs", "load_results", "load_run", "render"]


class ResultsError(Exception):
    """A results file that cannot be compared; the message names the file and the fix."""


@dataclass(frozen=True)
class RunComparison:
    """The suites of run B against run A in ``compare``'s words: the overall ``verdict``, the
    suites compared (``deltas``), those that cannot be (``incomparable``), those only one run
    has, and warnings."""

    verdict: str
    deltas: tuple[Comparison, ...]
    only_before: tuple[str, ...] = ()
    only_after: tuple[str, ...] = ()
    incomparable: tuple[Comparison, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def better(self) -> list[str]:
        return [d.suite for d in self.deltas if d.direction > 0]

    @property
    def worse(self) -> list[str]:
        return [d.suite for d in self.deltas if d.direction < 0]


def load_results(path: Path) -> dict[str, SuiteResult]:
    """The suites of a results.json file, checked."""
    return load_run(path)[0]


def load_run(path: Path) -> tuple[dict[str, SuiteResult], bool]:
    """The suites of a results.json file, and whether that run was interrupted."""
    path = Path(path)
    hint = "pass a results.json written by pytest --llmeval-output=DIR"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file; {hint}") from None
    except IsADirectoryError:
        if (path / "results.json").is_file():
            return load_run(path / "results.json")
        raise ResultsError(f"{path}: is a folder without results.json; {hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot be read ({exc}); {hint}") from None
    data = json_document(text, str(path), ResultsError, hint)
    if not isinstance(data, dict) or "suites" not in data:
        raise ResultsError(f'{path}: no "suites" object, so not a pytest-llmeval results file; {hint}')
    suites = check_results(data, str(path), ResultsError)["suites"]
    out: dict[str, SuiteResult] = {}
    for name, raw in suites.items():
        try:
            out[name] = SuiteResult.from_json(name, raw)
        except ValueError as exc:
            raise ResultsError(f"{path}: suite {name!r} {exc}; re-run with a current pytest-llmeval, {hint}") from None
    return out, bool(data.get("interrupted"))


def compare_runs(
    before: Mapping[str, SuiteResult],
    after: Mapping[str, SuiteResult],
    *,
    tolerance: float = 0.02,
    alpha: float = 0.05,
    force: bool = False,
    interrupted: tuple[bool, bool] = (False, False),
) -> RunComparison:
    """Each suite both runs share, on the case ids both ran; ``interrupted``: whether run A
    and run B were interrupted (a warning: their suites may lack cases)."""
    shared = [after[name] for name in sorted(set(before) & set(after))]
    found = compare_suites(before, shared, tolerance=tolerance, alpha=alpha, force=force, pair_incomparable=True)
    warnings = [
        f"{label} was interrupted: its suites may lack cases; suites are compared on the cases both ran"
        for label, flag in zip("AB", interrupted)
        if flag
    ]
    deltas, incomparable = [], []
    for c in found.values():
        if c.before is None:  # a perturbation only run B has
            continue
        if c.differing and not force:
            incomparable.append(c)
        elif not c.tested:
            warnings.append(f"{c.suite}: no case ids in common, nothing to compare")
        else:
            deltas.append(c)
            warnings += _limited_warning(c)
    better = any(d.direction > 0 for d in deltas)
    worse = any(d.direction < 0 for d in deltas)
    verdict = "MIXED" if better and worse else "DISCARD" if worse else "KEEP" if better else "UNCHANGED"
    return RunComparison(
        verdict=verdict,
        deltas=tuple(deltas),
        only_before=tuple(sorted(set(before) - set(after))),
        only_after=tuple(sorted(set(after) - set(before))),
        incomparable=tuple(incomparable),
        warnings=tuple(warnings),
    )


def _limited_warning(c: Comparison) -> list[str]:
    a, b = c.before, c.after
    if a is None or b is None or c.paired is None or not (a.limited or b.limited):
        return []
    which = " and ".join(x for x, s in (("A", a), ("B", b)) if s.limited)
    return [f"{c.suite}: {which} came from an --llmeval-limit run; compared on {c.paired.shared} shared cases only"]


def render(result: RunComparison, a_label: str, b_label: str) -> list[str]:
    lines = [f"A = {a_label}", f"B = {b_label}", ""]
    holm_shown = any(d.paired.adjusted_p is not None for d in result.deltas)
    rows = [["suite", "A", "B", "delta", "p", *(["Holm p"] if holm_shown else []), "shared", ""]]
    for d in result.deltas:
        rows.append(
            [
                d.suite,
                _rate(d.before),
                _rate(d.after),
                points(d.paired.delta),
                pvalue(d.paired.p_value),
                *([pvalue(d.paired.gate_p)] if holm_shown else []),
                str(d.paired.shared),
                {1: "better", -1: "WORSE", 0: ""}[d.direction],
            ]
        )
    if result.deltas:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            lines.append("  ".join(c.rjust(w) if 0 < i < len(row) - 1 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        for d in result.deltas:
            if d.paired.newly_failing or d.paired.newly_passing:
                lines.append(f"{d.suite}:")
                if d.paired.newly_failing:
                    lines.append(f"  newly failing in B ({len(d.paired.newly_failing)}): {listing(d.paired.newly_failing)}")
                if d.paired.newly_passing:
                    lines.append(f"  newly passing in B ({len(d.paired.newly_passing)}): {listing(d.paired.newly_passing)}")
    for d in result.incomparable:
        lines.extend(_incomparable(d))
    if result.only_before:
        lines.append(f"only in A ({len(result.only_before)}): {listing(result.only_before)}")
    if result.only_after:
        lines.append(f"only in B ({len(result.only_after)}): {listing(result.only_after)}")
    for w in result.warnings:
        lines.append(f"warning: {w}")
    lines.append("")
    if result.incomparable:
        lines.append(
            f"INCOMPARABLE: {len(result.incomparable)} suite(s) ran with different prompts, generation settings, "
            "few-shot counts or datasets; compare runs of the same eval, or pass --force to compare anyway"
        )
    elif not result.deltas:
        lines.append("nothing to compare: the files share no suite with common cases; compare results of the same evals")
    else:
        why = {
            "KEEP": f"better: {', '.join(result.better)}; nothing significantly worse",
            "DISCARD": f"significantly worse: {', '.join(result.worse)}",
            "MIXED": f"better: {', '.join(result.better)}; worse: {', '.join(result.worse)}",
            "UNCHANGED": "no significant difference",
        }[result.verdict]
        lines.append(f"{result.verdict}: {why}")
    return lines


def _incomparable(c: Comparison) -> list[str]:
    """An INCOMPARABLE suite: what differs, its change (not comparable) and the prompt's diff."""
    details = [d for d in c.details if not (c.prompt_diff and d.startswith("prompt: "))]
    lines = [f"{c.suite}: INCOMPARABLE: {incomparable_reason(c)}" + (f" ({'; '.join(details)})" if details else "")]
    p = c.paired
    if p is not None and p.shared:
        lines.append(f"  not comparable: A {pct(p.before_rate)}, B {pct(p.after_rate)} ({points(p.delta)} on {p.shared} shared cases)")
    if c.prompt_diff:
        lines.append("  prompt, A -> B:")
        lines.extend(f"    {line}" for line in c.prompt_diff)
    return lines


def _rate(s: SuiteResult) -> str:
    low, high = s.interval()
    k = max((n for _, n in s.case_passes.values()), default=1)
    return f"{pct(s.pass_rate)} [{low * 100:.1f}, {high * 100:.1f}] n={s.n}" + (f" k={k}" if k > 1 else "")


