"""assert_choice: acc and acc_norm predictions from per-choice loglikelihoods."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pytest_llmeval as le
from pytest_llmeval.models.outputs import Ranked


def ranked(lls: list[float], choices: list[str] | None = None) -> Ranked:
    choices = choices or [f"choice {i}" for i in range(len(lls))]
    return Ranked(context="Q:", choices=tuple(choices), loglikelihoods=tuple(lls), is_greedy=(False,) * len(lls),
                  norm_lengths=tuple(len(c) for c in choices))


def test_acc_picks_highest_total_and_acc_norm_divides_by_characters() -> None:
    r = ranked([-4.0, -6.0], [" a", " much longer answer"])
    assert le.assert_choice(r, 0) == 1.0
    assert le.assert_choice(r, " much longer answer", norm=True) == 1.0  # -6/19 beats -4/2
    with pytest.raises(le.EvalFailure, match="model chose 0"):
        le.assert_choice(r, 1)


def test_answer_by_text_ignores_surrounding_spaces_and_unknown_text_is_an_error() -> None:
    r = ranked([-1.0, -2.0], ["Paris", "Lyon"])
    assert le.assert_choice(r, " Paris ") == 1.0
    with pytest.raises(ValueError, match="not one of the choices"):
        le.assert_choice(r, "Rome")
    with pytest.raises((IndexError, ValueError)):
        le.assert_choice(r, 5)


@given(st.lists(st.floats(min_value=-50, max_value=0, allow_nan=False), min_size=2, max_size=6))
def test_prediction_is_the_first_maximum(lls: list[float]) -> None:
    r = ranked(lls)
    best = lls.index(max(lls))  # ties go to the first choice, as in lm-evaluation-harness
    assert r.pred == best
    le.assert_choice(r, best)


def test_answer_as_a_numpy_integer() -> None:
    import numpy as np

    r = ranked([-2.0, -1.0])
    assert le.assert_choice(r, np.int64(1)) == 1.0
    with pytest.raises(le.EvalFailure, match="model chose 1"):
        le.assert_choice(r, np.int32(0))


@pytest.mark.parametrize("answer", ["\u00b2", "9" * 5000, "-1", "\u0663"])
def test_an_answer_that_is_no_choice_is_a_value_error_naming_it(answer: str) -> None:
    with pytest.raises(ValueError, match="is not one of the choices"):
        le.assert_choice(ranked([-1.0, -2.0, -3.0]), answer)


def test_a_digit_string_in_another_script_is_an_index() -> None:
    assert le.assert_choice(ranked([-3.0, -2.0, -1.0]), "\u0662") == 1.0  # Arabic-Indic two
