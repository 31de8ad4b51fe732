"""The run's wrong answers for the terminal: each missed case with its one-line reason, listed
above the suite table of the end-of-session report."""

from __future__ import annotations

from typing import Iterator, Sequence

from pytest_llmeval.results.messages import Markup
from pytest_llmeval.results.records import CaseRecord, Outcome

__all__ = ["missed_lines"]


def missed_lines(records: Sequence[CaseRecord], per_suite: int | None = 3) -> Iterator[tuple[str, Markup]]:
    """The wrong answers of the run, with their one-line reasons (``per_suite`` each; None: all)."""
    by_suite: dict[str, list[CaseRecord]] = {}
    for record in records:
        if record.outcome is Outcome.MISS:
            by_suite.setdefault(record.suite, []).append(record)
    if not by_suite:
        return
    limit = "" if per_suite is None else f" (first {per_suite} per suite; -v lists all)"
    yield f"missed cases{limit}:", {"bold": True}
    for suite in sorted(by_suite):
        misses = by_suite[suite]
        shown = misses if per_suite is None else misses[:per_suite]
        for record in shown:
            reason = " ".join(record.reason.split())
            sample = f":r{record.repeat}" if record.repeats > 1 else ""
            yield f"  {suite}[{record.case_id}{sample}]: {reason[:160]}", {"yellow": True}
        if len(shown) < len(misses):
            yield f"  ... and {len(misses) - len(shown)} more in {suite}", {}
