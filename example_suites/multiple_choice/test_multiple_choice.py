"""Multiple choice scored by loglikelihood, as lm-evaluation-harness scores ARC or MMLU."""

import pytest_llmeval as le


@le.cases("capitals_and_facts.jsonl", prompt="Question: {question}\nAnswer:", choices="choices")
def test_facts_mc(case, ranked):
    le.score("acc_norm", float(ranked.pred_norm == case["answer"]))
    le.assert_choice(ranked, case["answer"])
