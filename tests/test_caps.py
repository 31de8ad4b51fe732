"""Caps that cannot hide: completions cut at max_new_tokens, reasoning cut before an answer, the
suggested cap and the flag above llmeval_max_cut_share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.results.caps import DEFAULT_MAX_CUT_SHARE, Ending, cap_counts, suggested_cap, suite_caps
from pytest_llmeval.results.records import CaseRecord


def test_counts_share_flag_and_message() -> None:
    endings = [Ending(12, "stop")] * 90 + [Ending(64, "length")] * 7 + [Ending(64, "length", 60, thinking_ended=False)] * 3
    c = cap_counts(endings, 64)
    assert (c.n, c.cut, c.reasoning_cut) == (100, 10, 3)
    assert c.share == 0.1 and c.flagged and not c.reasoning_flagged
    assert c.suggestion == 128
    assert c.message() == "10 of 100 answers (10%) ended at max_new_tokens=64, 3 of them still thinking (no answer); try max_new_tokens=128"
    assert c.as_dict()["flagged"] is True and DEFAULT_MAX_CUT_SHARE == 0.05


def test_exactly_the_share_is_not_flagged_and_nothing_cut_says_nothing() -> None:
    c = cap_counts([Ending(5, "stop")] * 95 + [Ending(32, "length")] * 5, 32)
    assert c.share == 0.05 and not c.flagged
    quiet = cap_counts([Ending(5, "stop")] * 3, 32)
    assert quiet.message() is None and quiet.suggestion is None
    assert cap_counts([], 32).share == 0.0
    with pytest.raises(ValueError, match="llmeval_max_cut_share"):
        cap_counts([], 32, max_share=1.5)


@given(st.integers(0, 100_000))
def test_the_suggestion_is_the_least_power_of_two_at_least_twice(longest) -> None:
    s = suggested_cap(longest)
    assert s >= 2 * longest and s & (s - 1) == 0 and (s == 1 or s // 2 < 2 * longest)


def test_every_message_of_a_workflow_case_counts() -> None:
    """A conversation's record has no finish reason of its own: each model call is a completion,
    and a message cut at the cap is counted like any other."""
    fingerprint = {"model": "m", "generation": {"do_sample": False, "max_new_tokens": 96}}

    def case(case_id: str, outcome: str, *steps: tuple[int, str]) -> CaseRecord:
        conversation = {"steps": [{"tokens_out": n, "finish_reason": why} for n, why in steps], "turns": len(steps)}
        return CaseRecord("w.py::t", case_id, outcome, completion="final", fingerprint=fingerprint, conversation=conversation)  # type: ignore[arg-type]

    records = [case("a", "fail", (96, "length"), (20, "stop")), case("b", "pass", (14, "stop")), case("c", "error")]
    c = suite_caps(records)["w.py::t"]
    assert (c.n, c.cut, c.cap, c.longest, c.suggestion) == (3, 1, 96, 96, 256)
    assert c.flagged and c.message() == "1 of 3 answers (33%) ended at max_new_tokens=96; try max_new_tokens=256"
    assert suite_caps([case("d", "pass", (14, "stop"), (30, "stop"))])["w.py::t"].cut == 0
