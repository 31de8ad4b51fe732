"""The run history as ``python -m pytest_llmeval history`` prints it: each suite's pass-rate
trend across runs (a table, or the last N points per suite as JSON), and the list of runs."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from pytest_llmeval.results.history import RunSummary, TrendPoint

__all__ = ["format_runs", "format_trend", "last_per_suite", "prompt_changed"]


def last_per_suite(points: Sequence[TrendPoint], last: int) -> list[TrendPoint]:
    """The last ``last`` points of each suite, in their order."""
    by_suite: dict[str, list[TrendPoint]] = {}
    for p in points:
        by_suite.setdefault(p.suite, []).append(p)
    keep = {id(p) for rows in by_suite.values() for p in rows[-last:]}
    return [p for p in points if id(p) in keep]


def prompt_changed(previous: TrendPoint | None, point: TrendPoint) -> bool:
    """Whether ``point`` ran a different prompt version than the run before it (both recorded one)."""
    if previous is None:
        return False
    before, after = previous.fingerprint.get("prompt"), point.fingerprint.get("prompt")
    return before is not None and after is not None and before != after


def format_trend(points: Sequence[TrendPoint], path: str | Path, last: int = 20) -> Iterator[str]:
    """The ``history`` table: one block per suite, one row per run, with the change since the
    previous run and a mark where the model or the prompt changed or the run was narrowed."""
    by_suite: dict[str, list[TrendPoint]] = {}
    for p in points:
        by_suite.setdefault(p.suite, []).append(p)
    if not by_suite:
        yield f"history {path}: no runs recorded yet; run the evals (every run appends here)"
        return
    runs = len({p.run_id for p in points})
    yield f"history {path}: {len(by_suite)} suite(s), {runs} run(s)"
    for suite, rows in by_suite.items():
        shown = rows[-last:] if last > 0 else rows
        yield ""
        yield suite + (f"  (last {len(shown)} of {len(rows)} runs)" if len(shown) < len(rows) else "")
        yield f"  {'when (UTC)':<19}  {'run':<23}  {'label':<16}  {'commit':<9}  {'n':>5}  {'pass':>6}  {'95% CI':<13}  {'change':>7}  trend"
        previous: TrendPoint | None = rows[len(rows) - len(shown) - 1] if len(shown) < len(rows) else None
        for p in shown:
            change = ""
            if previous is not None:
                change = f"{(p.pass_rate - previous.pass_rate) * 100:+.1f}"
                if previous.fingerprint.get("model") != p.fingerprint.get("model"):
                    change += "*"
            label = p.label or ""
            if p.step is not None and label != f"step-{p.step}":
                label = f"{label} @{p.step}" if label else f"step {p.step}"
            flags = " (prompt changed)" if prompt_changed(previous, p) else ""
            flags += " (interrupted)" if p.interrupted else ""
            flags += " (limited)" if p.limited else ""
            flags += f" errors={p.errors}" if p.errors else ""
            flags += f" skipped={p.skipped + p.xfailed}" if p.skipped or p.xfailed else ""
            yield (
                f"  {p.created_at[:19].replace('T', ' '):<19}  {p.run_id:<23}  {label[:16]:<16}  {(p.git_commit or '-')[:9]:<9}"
                f"  {p.n:>5}  {p.pass_rate * 100:5.1f}%  [{p.ci_low * 100:4.1f}, {p.ci_high * 100:5.1f}]  {change:>7}  "
                f"{_bar(p.pass_rate)}{flags}"
            )
            previous = p
    yield ""
    yield (
        "change is in points of pass rate since the run above; * marks a different model (a new checkpoint); "
        "(prompt changed): a new prompt version since the run above"
    )


def format_runs(runs: Sequence[RunSummary], path: str | Path) -> Iterator[str]:
    if not runs:
        yield f"history {path}: no runs recorded yet; run the evals (every run appends here)"
        return
    yield f"history {path}: {len(runs)} run(s)"
    yield f"  {'when (UTC)':<19}  {'run':<23}  {'label':<16}  {'step':>6}  {'commit':<9}  {'suites':>6}  {'cases':>6}  status"
    for r in runs:
        step = "" if r.step is None else str(r.step)
        yield (
            f"  {r.created_at[:19].replace('T', ' '):<19}  {r.run_id:<23}  {(r.label or '')[:16]:<16}  {step:>6}"
            f"  {(r.git_commit or '-')[:9]:<9}  {r.suites:>6}  {r.cases:>6}  {'interrupted' if r.interrupted else 'complete'}"
        )


def _bar(rate: float, width: int = 20) -> str:
    filled = int(round(max(0.0, min(1.0, rate)) * width))
    return "#" * filled + "." * (width - filled)
