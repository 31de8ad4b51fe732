"""The eval suite of the tiny arithmetic model: 500 held-out two-digit additions.

    pytest example_suites/arithmetic_tiny --llmeval-model runs/arithmetic_tiny/final

or inline, on the live model during training (see train.py):

    le.evaluate(model, tokenizer, "example_suites/arithmetic_tiny")
"""

import pytest_llmeval as le


@le.cases("cases.jsonl", prompt="{a}+{b}=", id="id", max_new_tokens=4)
def test_addition(case, completion):
    expected = str(case["answer"])
    got = completion.strip()
    # partial credit, reported as a graded metric: the share of answer digits in place
    le.score("digits", sum(x == y for x, y in zip(got.rjust(3), expected.rjust(3))) / 3)
    le.assert_number(completion, case["answer"])
