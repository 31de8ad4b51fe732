"""The engine comparison's work as eval suites (run by benchmarks/bench_engines.py): the 64 chat
prompts of prompts64.py, and the first 64 arithmetic cases, scored."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest_llmeval as le  # noqa: E402
from engine_work import MAX_NEW_TOKENS, arithmetic64, prompts64  # noqa: E402


@le.cases(prompts64(), prompt="{prompt}", chat=True, max_new_tokens=MAX_NEW_TOKENS)
def test_prompt(case, completion):
    assert completion.tokens_out <= MAX_NEW_TOKENS


@le.cases(arithmetic64(), prompt="{prompt}", chat=True, max_new_tokens=MAX_NEW_TOKENS)
def test_arithmetic(case, completion):
    le.assert_number(completion, case["answer"])
