"""Scorers: assertion functions (``le.assert_*``) that raise ``EvalFailure`` when the model misses.

Each returns a float score on success (1.0, or the graded value such as a similarity);
``assert_json`` returns the parsed value instead. A bad argument from the test author
(a wrong type, a negative limit, an invalid regex or schema) raises ``TypeError`` or
``ValueError``, and a regular expression that runs past its time limit raises ``TimeoutError``:
that is a broken test, not a model miss. Whatever the model wrote is judged: a wrong, empty,
huge or deeply nested answer is an ``EvalFailure``, never a crash.
"""

from __future__ import annotations

from pytest_llmeval.scoring.leaderboard import assert_gsm8k, assert_mc2, gsm8k_answer, gsm8k_exact_match, mc2_score
from pytest_llmeval.scoring.choice import assert_choice
from pytest_llmeval.scoring.normalize import normalize
from pytest_llmeval.scoring.numbers import NumberMention, assert_number, extract_number, find_numbers
from pytest_llmeval.scoring.similarity import assert_similar, similarity
from pytest_llmeval.scoring.structured import assert_json
from pytest_llmeval.scoring.text import (
    assert_contains,
    assert_exact,
    assert_max_chars,
    assert_max_words,
    assert_not_contains,
    assert_one_of,
    assert_regex,
)

__all__ = [
    "NumberMention",
    "assert_choice",
    "assert_contains",
    "assert_exact",
    "assert_gsm8k",
    "assert_json",
    "assert_max_chars",
    "assert_max_words",
    "assert_mc2",
    "assert_not_contains",
    "assert_number",
    "assert_one_of",
    "assert_regex",
    "assert_similar",
    "extract_number",
    "find_numbers",
    "gsm8k_answer",
    "gsm8k_exact_match",
    "mc2_score",
    "normalize",
    "similarity",
]
