"""pytest-llmeval: LLM evaluations as pytest tests.

    import pytest_llmeval as le

    @le.cases("math.jsonl", prompt="{question} Answer with a number.", chat=True)
    def test_addition(case, completion):
        le.assert_number(completion, case["answer"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._api import cases
from .cases import Case, CaseError
from .current import score
from .failures import EvalFailure
from .outputs import Completion, Ranked
from .settings import GenerationSettings, LLMSettings

__version__ = "0.1.0"

_LAZY = {
    # scorers
    "normalize": "scorers",
    "extract_number": "scorers",
    "assert_exact": "scorers",
    "assert_contains": "scorers",
    "assert_not_contains": "scorers",
    "assert_regex": "scorers",
    "assert_number": "scorers",
    "assert_one_of": "scorers",
    "assert_max_words": "scorers",
    "assert_max_chars": "scorers",
    "assert_json": "scorers",
    "assert_choice": "scorers",
    "assert_similar": "scorers",
    # benchmark file loaders
    "formats": None,
    # training-time evaluation
    "evaluate": "inline",
    "LLMEvalCallback": "callbacks",
    "EvalEvery": "callbacks",
}

__all__ = [
    "Case",
    "CaseError",
    "Completion",
    "EvalFailure",
    "GenerationSettings",
    "LLMSettings",
    "Ranked",
    "cases",
    "score",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'pytest_llmeval' has no attribute {name!r}")
    import importlib

    module_name = _LAZY[name]
    if module_name is None:
        value = importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from . import formats
    from .callbacks import EvalEvery, LLMEvalCallback
    from .inline import evaluate
    from .scorers import (
        assert_choice,
        assert_contains,
        assert_exact,
        assert_json,
        assert_max_chars,
        assert_max_words,
        assert_not_contains,
        assert_number,
        assert_one_of,
        assert_regex,
        assert_similar,
        extract_number,
        normalize,
    )
