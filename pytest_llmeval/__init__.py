"""pytest-llmeval: LLM evaluations as pytest tests.

    import pytest_llmeval as le

    @le.cases("math.jsonl", prompt="{question} Answer with a number.", chat=True)
    def test_addition(case, completion):
        le.assert_number(completion, case["answer"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_llmeval.decorator import cases
from pytest_llmeval.datasets.suite import Case, CaseError
from pytest_llmeval.scoring.recording import score
from pytest_llmeval.scoring.failures import EvalFailure
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.settings import GenerationSettings, LLMSettings
from pytest_llmeval.version import __version__

_LAZY = {
    # scorers
    "normalize": "scoring",
    "extract_number": "scoring",
    "assert_exact": "scoring",
    "assert_contains": "scoring",
    "assert_not_contains": "scoring",
    "assert_regex": "scoring",
    "assert_number": "scoring",
    "assert_one_of": "scoring",
    "assert_max_words": "scoring",
    "assert_max_chars": "scoring",
    "assert_json": "scoring",
    "assert_choice": "scoring",
    "assert_similar": "scoring",
    "assert_mc2": "scoring",
    "mc2_score": "scoring",
    "assert_gsm8k": "scoring",
    "gsm8k_answer": "scoring",
    "gsm8k_exact_match": "scoring",
    # code with tests
    "assert_code": "scoring.code",
    "extract_code": "scoring.code",
    # workflows: tool-call scorers and MCP tools
    "assert_tool_called": "scoring.workflow",
    "assert_tool_not_called": "scoring.workflow",
    "assert_tool_order": "scoring.workflow",
    "assert_turns": "scoring.workflow",
    "mcp_tools": "workflows.mcp_client",
    "ToolFailure": "workflows.tools",
    # model-graded scoring
    "Rubric": "scoring.judges",
    "Pairwise": "scoring.judges",
    "Judgement": "scoring.judges",
    "JudgeError": "scoring.judges",
    "assert_judged": "scoring.judges",
    # models
    "HFBackend": "models.hf",
    # cases drawn from a strategy
    "generated": "datasets.generated",
    # training-time evaluation
    "evaluate": "training.inline",
    "LLMEvalCallback": "training.callbacks",
    "EvalEvery": "training.callbacks",
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
    "formats",
    "perturb",
    *_LAZY,
]

_LAZY_MODULES = {"formats": "datasets.formats", "perturb": "perturb"}  # benchmark file loaders; perturbations


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY_MODULES:
        value: Any = importlib.import_module(f".{_LAZY_MODULES[name]}", __name__)
    elif name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    else:
        raise AttributeError(f"module 'pytest_llmeval' has no attribute {name!r}")
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from pytest_llmeval import perturb
    from pytest_llmeval.datasets import formats
    from pytest_llmeval.datasets.generated import generated
    from pytest_llmeval.models.hf import HFBackend
    from pytest_llmeval.training.callbacks import EvalEvery, LLMEvalCallback
    from pytest_llmeval.training.inline import evaluate
    from pytest_llmeval.scoring.judges import Judgement, JudgeError, Pairwise, Rubric, assert_judged
    from pytest_llmeval.scoring.code import assert_code, extract_code
    from pytest_llmeval.scoring import (
        assert_choice,
        assert_contains,
        assert_exact,
        assert_gsm8k,
        assert_json,
        assert_max_chars,
        assert_max_words,
        assert_mc2,
        assert_not_contains,
        assert_number,
        assert_one_of,
        assert_regex,
        assert_similar,
        extract_number,
        gsm8k_answer,
        gsm8k_exact_match,
        mc2_score,
        normalize,
    )
