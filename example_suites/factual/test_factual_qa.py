"""Short factual questions; any accepted answer counts."""

import pytest_llmeval as le


@le.cases("factual.jsonl", prompt="{question} Answer in a few words.", chat=True, max_new_tokens=24)
def test_factual_qa(case, completion):
    le.assert_contains(completion, case["answers"])
