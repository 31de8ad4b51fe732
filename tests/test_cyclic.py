"""Cyclic permutation of multiple-choice options (CircularEval) and per-position choice counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.datasets.cyclic import circular_pass, position_counts, rotation_id, rotations


def test_rotations_of_four_options() -> None:
    rs = rotations(["A1", "B2", "C3", "D4"], answer=2)
    assert [r.choices for r in rs] == [
        ("A1", "B2", "C3", "D4"), ("B2", "C3", "D4", "A1"), ("C3", "D4", "A1", "B2"), ("D4", "A1", "B2", "C3"),
    ]
    assert [r.answer for r in rs] == [2, 1, 0, 3]
    assert rs[1].original_index(0) == 1 and rotation_id("q1", 3) == "q1~rot3"


@given(st.lists(st.text(max_size=3), min_size=1, max_size=8).flatmap(lambda cs: st.tuples(st.just(cs), st.integers(0, len(cs) - 1))))
def test_every_rotation_keeps_the_answer_and_each_position_holds_it_once(case) -> None:
    choices, answer = case
    rs = rotations(choices, answer)
    assert len(rs) == len(choices) and rs[0].choices == tuple(choices)
    for r in rs:
        assert r.choices[r.answer] == choices[answer]
        assert sorted(r.order) == list(range(len(choices)))
    assert sorted(r.answer for r in rs) == list(range(len(choices)))


def test_circular_pass_needs_every_rotation() -> None:
    assert circular_pass([True, True, True]) and not circular_pass([True, False, True]) and not circular_pass([])


def test_position_counts_show_a_preference_for_a() -> None:
    counts = position_counts({"q1": [0, 0, 0, 0], "q2": [0, 1, 2, 3], "q3": [0, 0, 1]}, {"q1": 4, "q2": 4, "q3": 3})
    assert counts.counts == (7, 2, 1, 1) and counts.total == 11
    assert counts.expected == pytest.approx((3.0, 3.0, 3.0, 2.0))
    assert counts.as_dict()["positions"] == ["A", "B", "C", "D"]
    with pytest.raises(ValueError, match="out of range"):
        position_counts({"q": [5]}, {"q": 4})
    with pytest.raises(ValueError, match="out of range"):
        rotations(["a", "b"], answer=2)
