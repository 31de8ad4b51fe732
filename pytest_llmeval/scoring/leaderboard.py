"""lm-evaluation-harness's own metrics for two Open LLM Leaderboard tasks: TruthfulQA MC2 and GSM8K.

MC2 (``truthfulqa_mc2``) is graded: the probability the model gives the true answers, as a share
of the probability it gives all the answers. GSM8K (``gsm8k``) reads the final number out of a
generated solution in two ways, lm-eval's two filters, and compares it with the reference as its
``exact_match`` metric does. Both follow lm-eval 0.4's task configs and are checked against what
lm-eval itself logs (tests/test_leaderboard_reference.py).
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Literal, Sequence

from pytest_llmeval.models.outputs import Ranked
from pytest_llmeval.scoring.failures import EvalFailure, hide_misses
from pytest_llmeval.scoring.recording import score
from pytest_llmeval.scoring.text import check_text

__tracebackhide__ = hide_misses  # a miss shows the test's line and its reason, not this module's code

__all__ = ["assert_gsm8k", "assert_mc2", "gsm8k_answer", "gsm8k_exact_match", "mc2_score"]

GSM8K_MODES = ("strict", "flexible")
Mode = Literal["strict", "flexible"]

# lm-eval's gsm8k filters: "strict-match" takes the first "#### <number>", "flexible-extract"
# the last number-like run in the text (two characters of digits, "$", "." or ",", or digits).
_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_TRAILING_PERIOD = re.compile(r"\.$")  # as in lm-eval: also a period just before a final newline


# ----------------------------------------------------------------------------- MC2


def mc2_score(ranked: Ranked | Sequence[float], labels: Sequence[int | bool]) -> float:
    """lm-eval's ``truthfulqa_mc2`` value: with ``p_i = exp(loglikelihood_i)``,
    ``sum(p_i, true i) / sum(p_i, all i)``, from 0 (all mass on false answers) to 1.

    ``ranked`` is the ``ranked`` fixture (or the per-choice loglikelihoods); ``labels`` marks
    each choice 1 (true) or 0 (false), as ``formats.truthfulqa_mc2`` rows carry them. Computed
    in float64 with the largest loglikelihood factored out, so choices far below ``exp``'s range
    (a total loglikelihood under -745) still give the exact ratio where lm-eval's plain ``exp``
    would give 0/0.
    """
    scorer = "mc2_score"
    values = _loglikelihoods(ranked, scorer)
    flags = _labels(labels, len(values), scorer)
    top = max(values)
    if top == -math.inf:
        raise ValueError(f"{scorer}() every choice has loglikelihood -inf; there is no probability to share out")
    weights = [math.exp(v - top) for v in values]
    true = math.fsum(w for w, f in zip(weights, flags) if f)
    return true / math.fsum(weights)


def assert_mc2(ranked: Ranked, labels: Sequence[int | bool], *, min_score: float = 0.5) -> float:
    """Record the case's MC2 value as the ``mc2`` score (its suite mean is lm-eval's
    ``truthfulqa_mc2``) and pass when it reaches ``min_score``.

    The default 0.5 passes a case when the model puts more probability on the true answers than
    on the false ones; choose the rule that fits (0 records the score and never misses).
    """
    scorer = "assert_mc2"
    if not isinstance(ranked, Ranked):
        raise TypeError(
            f"{scorer}() needs the `ranked` fixture (a Ranked), got {type(ranked).__name__}; "
            "give the case choices=... in le.cases() and take `ranked` as an argument"
        )
    if isinstance(min_score, bool) or not isinstance(min_score, (int, float)):
        raise TypeError(f"{scorer}() min_score must be a number, got {type(min_score).__name__}; pass e.g. 0.5")
    if not 0.0 <= min_score <= 1.0:  # also refuses NaN
        raise ValueError(f"{scorer}() min_score must be between 0 and 1, got {min_score!r}; pass e.g. 0.5")
    value = score("mc2", mc2_score(ranked, labels))
    if value >= min_score:
        return value
    flags = _labels(labels, len(ranked.choices), scorer)
    top = ranked.pred
    raise EvalFailure(
        f"mc2 {value:.3f} is below min_score {min_score:.3f}; the most likely answer "
        f"{ranked.choices[top].strip()!r} is {'true' if flags[top] else 'false'}",
        score=value,
        expected=[c for c, f in zip(ranked.choices, flags) if f],
        actual=ranked.choices[top],
        scorer=scorer,
    )


def _loglikelihoods(ranked: object, scorer: str) -> tuple[float, ...]:
    raw = ranked.loglikelihoods if isinstance(ranked, Ranked) else ranked
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise TypeError(
            f"{scorer}() needs the `ranked` fixture or a list of loglikelihoods, got {type(ranked).__name__}"
        )
    values = []
    for v in raw:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{scorer}() loglikelihoods must be numbers, got {type(v).__name__}")
        number = float(v)
        if math.isnan(number) or number == math.inf:
            raise ValueError(f"{scorer}() got the loglikelihood {number}; a loglikelihood is a number <= 0 or -inf")
        values.append(number)
    if not values:
        raise ValueError(f"{scorer}() got no choices; check the case's choices field")
    return tuple(values)


def _labels(labels: object, n: int, scorer: str) -> tuple[bool, ...]:
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError(
            f"{scorer}() labels must be a list of 1 (true) and 0 (false), one per choice, "
            f"got {type(labels).__name__}; pass case['labels'] from formats.truthfulqa_mc2"
        )
    if len(labels) != n:
        raise ValueError(f"{scorer}() got {len(labels)} labels for {n} choices; pass one label per choice")
    if not all(isinstance(x, numbers.Integral) and int(x) in (0, 1) for x in labels):
        raise ValueError(f"{scorer}() labels must be 1 (true) or 0 (false), got {list(labels)!r:.80}")
    flags = tuple(bool(x) for x in labels)
    if all(flags) or not any(flags):
        raise ValueError(
            f"{scorer}() labels must mark at least one true and one false answer, got {list(labels)!r:.80}; "
            "otherwise the score is the same whatever the model does"
        )
    return flags


# ----------------------------------------------------------------------------- GSM8K


def gsm8k_answer(text: str, mode: Mode = "strict") -> str | None:
    """The final answer lm-eval's ``gsm8k`` filters read from a generated solution, or ``None``
    where lm-eval writes ``"[invalid]"``.

    ``"strict"`` (lm-eval's ``strict-match``): the number after the first ``"#### "``, as written
    (``-`` digits ``.`` ``,``); ``"flexible"`` (``flexible-extract``): the last run of two or more
    of ``-$0-9.,``, or of digits, anywhere in the text (``"$1,250."`` stays as it is).
    """
    name = "gsm8k_answer"
    text = check_text(text, name)
    if mode == "strict":
        found = _STRICT.search(text)
        return found.group(1).strip() if found else None
    if mode == "flexible":
        last = None
        for last in _FLEXIBLE.finditer(text):
            pass
        return (last.group(1) or last.group(2)).strip() if last else None
    raise ValueError(f"{name}() mode must be 'strict' or 'flexible', got {mode!r}")


def gsm8k_exact_match(text: str, answer: str | int, mode: Mode = "strict") -> float:
    """lm-eval's ``gsm8k`` ``exact_match`` for one completion: 1.0 when the answer ``mode``
    extracts equals ``answer`` after both drop commas, ``$`` signs, everything up to the last
    ``"#### "`` and a final period, compared case-insensitively; else 0.0.

    ``answer`` is a ``formats.gsm8k`` row's ``answer`` (the number) or ``target`` (the worked
    solution ending in ``#### <number>``): both compare the same.
    """
    got = gsm8k_answer(text, mode)
    want = _reference(answer, "gsm8k_exact_match")
    return float(got is not None and _gsm8k_normal(got) == _gsm8k_normal(want))


def assert_gsm8k(text: str, answer: str | int, *, mode: Mode = "strict") -> float:
    """Record lm-eval's two GSM8K figures for the case as the scores ``strict_match`` and
    ``flexible_extract`` (1.0 or 0.0; their suite means are lm-eval's ``exact_match`` under each
    filter), and pass when the ``mode`` one matches ``answer``."""
    scorer = "assert_gsm8k"
    text = check_text(text, scorer)
    want = _reference(answer, scorer)
    if mode not in GSM8K_MODES:
        raise ValueError(f"{scorer}() mode must be 'strict' or 'flexible', got {mode!r}")
    results = {m: gsm8k_exact_match(text, want, m) for m in GSM8K_MODES}
    score("strict_match", results["strict"])
    score("flexible_extract", results["flexible"])
    if results[mode]:
        return 1.0
    got = gsm8k_answer(text, mode)
    expected = _gsm8k_normal(want)
    if got is None:
        what = "no '#### <number>' line" if mode == "strict" else "no number"
        reason = f"{mode} extraction found {what}; expected {expected}"
    else:
        reason = f"{mode} extraction found {got}, expected {expected}"
    raise EvalFailure(reason, expected=expected, actual=got if got is not None else text, scorer=scorer)


def _reference(answer: object, scorer: str) -> str:
    if isinstance(answer, bool) or not isinstance(answer, (str, int)):
        raise TypeError(
            f"{scorer}() answer must be the reference as a str (or an int), got {type(answer).__name__}; "
            "pass case['answer'] from formats.gsm8k"
        )
    return str(answer)


def _gsm8k_normal(text: str) -> str:
    """lm-eval's gsm8k ``regexes_to_ignore`` (``","``, ``"\\$"``, ``"(?s).*#### "``, ``"\\.$"``,
    applied in that order) and ``ignore_case``."""
    text = text.replace(",", "").replace("$", "")
    cut = text.rfind("#### ")  # "(?s).*#### " removes up to the last "#### ", without its quadratic scan
    if cut >= 0:
        text = text[cut + len("#### ") :]
    return _TRAILING_PERIOD.sub("", text).lower()
