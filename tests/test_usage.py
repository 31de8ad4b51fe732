"""Usage of a served model in the report: totals, means and cost per suite, from the records."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.usage import usage_json, usage_lines


def record(suite: str, case: str, tokens_in: int | None, tokens_out: int | None, latency: float | None, outcome: str = "pass") -> CaseRecord:
    return CaseRecord(suite=suite, case_id=case, outcome=outcome, tokens_in=tokens_in, tokens_out=tokens_out, latency_s=latency)  # type: ignore[arg-type]


def test_a_local_backend_without_counters_has_no_usage_section():
    assert usage_json([record("s", "a", 3, 4, 0.1)], {}) == {}
    assert list(usage_lines({})) == []


def test_totals_means_and_cost_per_suite_count_only_answered_cases():
    records = [record("s", "a", 10, 2, 0.5), record("s", "b", 30, 6, 1.5), record("s", "c", None, None, None, "error"), record("t", "d", 4, 0, 0.25)]
    usage = usage_json(records, {"requests": 5, "retries": 1, "price_in": 2.0, "price_out": 10.0})
    s = usage["suites"]["s"]
    assert (s["cases"], s["tokens_in"], s["tokens_out"], s["mean_tokens_in"], s["mean_tokens_out"]) == (2, 40, 8, 20.0, 4.0)
    assert s["mean_latency_s"] == pytest.approx(1.0) and s["cost_usd"] == pytest.approx((40 * 2 + 8 * 10) / 1e6)
    assert usage["total"]["cases"] == 3 and usage["total"]["tokens_in"] == 44
    lines = [text for text, _ in usage_lines(usage)]
    assert lines[1].split()[:2] == ["usage", "answered"] and "cost" in lines[1]
    assert lines[-1] == "requests: 5 requests sent, 1 retry"


def test_the_request_line_says_what_went_wrong():
    usage = usage_json([], {"requests": 3, "retries": 4, "faults": {"HTTP 429": 5}, "failed": 1, "not_sent": 2,
                            "price_in": 1.0, "price_out": 1.0, "cost_usd": 0.5, "max_cost": 0.5, "stopped": "not sent: budget"})  # fmt: skip
    lines = list(usage_lines(usage))
    assert lines[-2] == ("requests: 3 requests sent, 4 retries, 1 failed, 2 not sent, cost $0.5000 of $0.5 (faults: HTTP 429: 5)", {"yellow": True})
    assert lines[-1] == ("  not sent: budget", {"red": True})


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=30))
def test_suite_totals_add_up_to_the_total(tokens):
    records = [record(f"s{i % 3}", str(i), a, b, 0.1) for i, (a, b) in enumerate(tokens) if a or b]
    usage = usage_json(records, {"price_in": 1.0, "price_out": 3.0})
    suites = usage["suites"].values()
    assert sum(s["tokens_in"] for s in suites) == usage["total"]["tokens_in"] == sum(a for a, b in tokens if a or b)
    # each cost is rounded to 1e-6 USD: at most 3 suites and the total, 4 roundings of at most 5e-7
    assert sum(s["cost_usd"] for s in suites) == pytest.approx(usage["total"]["cost_usd"], abs=4 * 5e-7)
