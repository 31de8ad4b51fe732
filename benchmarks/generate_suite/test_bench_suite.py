"""The 64-prompt generation benchmark as an eval suite (run by benchmarks/bench_generate.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest_llmeval as le  # noqa: E402
from prompts64 import MAX_NEW_TOKENS, prompts  # noqa: E402


@le.cases(prompts(), prompt="{prompt}", chat=True, max_new_tokens=MAX_NEW_TOKENS)
def test_prompt(case, completion):
    assert completion.tokens_out <= MAX_NEW_TOKENS
