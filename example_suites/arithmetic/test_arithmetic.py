"""Arithmetic: 200 two-operand problems, answered in a chat turn."""

import pytest_llmeval as le


@le.cases("arithmetic.jsonl", prompt="{question} Answer with a number.", chat=True, max_new_tokens=24)
def test_arithmetic(case, completion):
    le.assert_number(completion, case["answer"])
