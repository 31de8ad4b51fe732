"""Multiple choice: the model's highest-loglikelihood choice must be the answer."""

from __future__ import annotations

import numbers

from pytest_llmeval.models.outputs import Ranked
from pytest_llmeval.scoring.failures import EvalFailure, hide_misses

__tracebackhide__ = hide_misses  # a miss shows the test's line and its reason, not this module's code

__all__ = ["assert_choice"]

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _answer_index(ranked: Ranked, answer: object, scorer: str) -> int:
    """``answer`` as a choice index: an index, a choice's text, or when it is neither a choice's
    text, a digit string ("2") or a letter ("C", MMLU style)."""
    if isinstance(answer, bool) or not isinstance(answer, (numbers.Integral, str)):
        raise TypeError(
            f"{scorer}() answer must be a choice index (int) or a choice's text (str), got {type(answer).__name__}"
        )
    if isinstance(answer, numbers.Integral):  # int, numpy integers
        answer = int(answer)
        if not 0 <= answer < len(ranked.choices):
            raise ValueError(
                f"{scorer}() answer index {answer} is out of range for {len(ranked.choices)} choices; "
                "indices start at 0"
            )
        return answer
    wanted = answer.strip()
    for i, choice in enumerate(ranked.choices):
        if choice.strip() == wanted:
            return i
    if wanted.isdecimal() and len(wanted) <= 6 and int(wanted) < len(ranked.choices):
        return int(wanted)
    if len(wanted) == 1 and wanted.upper() in _LETTERS[: len(ranked.choices)]:
        return _LETTERS.index(wanted.upper())
    raise ValueError(
        f"{scorer}() answer {answer!r} is not one of the choices {list(ranked.choices)!r}; "
        "pass the choice text, its index or its letter"
    )


def assert_choice(ranked: Ranked, answer: int | str, *, norm: bool = False) -> float:
    """Pass when the model ranks ``answer`` first: ``ranked.pred`` (highest total loglikelihood),
    or with ``norm=True`` ``ranked.pred_norm`` (loglikelihood per character).

    ``answer`` is a choice index, a choice's text, or a letter ("A" is the first choice).
    """
    scorer = "assert_choice"
    if not isinstance(ranked, Ranked):
        raise TypeError(
            f"{scorer}() needs the `ranked` fixture (a Ranked), got {type(ranked).__name__}; "
            "give the case choices=... in le.cases() and take `ranked` as an argument"
        )
    if not ranked.choices:
        raise ValueError(f"{scorer}() got a case with no choices; check the case's choices field")
    want = _answer_index(ranked, answer, scorer)
    got = ranked.pred_norm if norm else ranked.pred
    if got == want:
        return 1.0
    lls = ranked.loglikelihoods

    def describe(i: int) -> str:
        text = f"{i} {ranked.choices[i].strip()!r} (loglik {lls[i]:.3f}"
        if norm:
            lengths = ranked.norm_lengths or tuple(len(c) for c in ranked.choices)
            text += f", per char {lls[i] / max(lengths[i], 1):.4f}"
        return text + ")"

    raise EvalFailure(
        f"model chose {describe(got)} over the expected {describe(want)}",
        expected=ranked.choices[want],
        actual=ranked.choices[got],
        scorer=scorer,
    )
