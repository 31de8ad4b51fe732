"""Caps that cannot hide: completions cut at max_new_tokens, reasoning cut before an answer, the
suggested cap and the flag above llmeval_max_cut_share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.results.caps import DEFAULT_MAX_CUT_SHARE, Ending, cap_counts, suggested_cap


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
