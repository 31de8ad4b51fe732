"""What collection adds to pytest's: eval suites on unittest classes refused in one collection
error line, eval items whose parameters another hook folded in refused in one usage error line,
and the cases found in ``--llmeval-train-data`` marked and warned about."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llmeval.datasets.casefiles import CaseError
from pytest_llmeval.escaping import terminal
from pytest_llmeval.own_warnings import errors_as_default, warn
from pytest_llmeval.plugin import planning
from pytest_llmeval.plugin.identity import eval_item, folded_params
from pytest_llmeval.plugin.state import get_state

__all__ = ["OVERLAP_MARKER", "LLMEvalOverlapWarning", "check_collected", "mark_overlaps", "overlap_warning", "refused_unittest"]

OVERLAP_MARKER = "llmeval_train_overlap"


class LLMEvalOverlapWarning(UserWarning):
    """Eval cases that appear in the training data (``--llmeval-train-data``)."""


class _Refused(pytest.Collector):
    """A class pytest cannot run as eval suites: one collection error line saying why."""

    problem = ""

    def collect(self) -> Any:
        raise self.CollectError(self.problem)


def refused_unittest(collector: pytest.Collector, name: str, methods: list[str]) -> pytest.Collector:
    """The collector that stands for the unittest class ``name``, whose eval suites ``methods``
    pytest would never parametrize: one collection error line."""
    refused = _Refused.from_parent(collector, name=name)
    listed = ", ".join(f"{name}.{m}" for m in methods)
    refused.problem = (
        f"llmeval: le.cases does not work on a unittest.TestCase method ({listed}): pytest does not parametrize "
        "unittest tests, so its cases would never reach it; make it a plain test function, or a method of a class "
        "that does not derive from unittest.TestCase"
    )
    return refused


def overlap_warning(suite: str, n: int, overlaps: dict[str, str]) -> LLMEvalOverlapWarning:
    listing = "; ".join(f"{cid}: {why}" for cid, why in list(overlaps.items())[:5])
    more = f" (and {len(overlaps) - 5} more)" if len(overlaps) > 5 else ""
    return LLMEvalOverlapWarning(
        f"{len(overlaps)} of {n} cases of {suite} appear in the training data, "
        f"so they do not measure held-out skill: {listing}{more}. Remove them from the eval or the training set; "
        f"they are marked {OVERLAP_MARKER} (deselect with -m 'not {OVERLAP_MARKER}')"
    )


def mark_overlaps(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark (and warn about) the eval cases found in ``--llmeval-train-data``: the data streams
    past the cases of every collected suite once."""
    state = get_state(config)
    try:
        with errors_as_default():
            found = planning.overlaps(state, items)
    except CaseError as exc:
        problem = str(exc)
    else:
        problem = None
    if problem is not None:
        raise pytest.UsageError(f"llmeval: {terminal(problem)}")
    by_suite: dict[str, dict[str, str]] = {}
    for item in items:
        suite_case = eval_item(item)
        why = found.get((suite_case[0], suite_case[1].id)) if suite_case else None
        if why is not None:
            item.add_marker(getattr(pytest.mark, OVERLAP_MARKER))
            by_suite.setdefault(suite_case[0], {})[suite_case[1].id] = why
    for suite, overlaps in by_suite.items():
        warn(overlap_warning(suite, len(state.plans[suite].cases), overlaps), stacklevel=1)


def check_collected(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse eval items that a ``pytest_generate_tests`` hook gave more parameters: one usage error line."""
    folded = next(((item, params) for item in items for params in (folded_params(item),) if params), None)
    if folded is not None:  # parameters added by a pytest_generate_tests hook, after le.cases's check
        raise pytest.UsageError(
            f"llmeval: {terminal(folded[0].nodeid)}: le.cases cannot be combined with the parameters "
            f"{', '.join(folded[1])} (set by a pytest_generate_tests hook): each case would run once per value and "
            "its runs would count as one case; leave eval tests out of that hook, or write one test function per variant"
        )
