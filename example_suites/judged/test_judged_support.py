"""Support replies graded by a judge model: polite, and no promised refund.

SmolLM2-135M-Instruct is the judge here (``llmeval_judge_model`` in ../pytest.ini), a weak one:
its verdicts come from scoring the labels' loglikelihoods, so it always gives one of them, in
batches. ``labels.csv`` holds one labeller's labels for these cases (docs/judges.md says how they
were made); see how far the judge agrees:

    python -m pytest_llmeval calibrate llmeval-out example_suites/judged/labels.csv
"""

import pytest_llmeval as le

SYSTEM = (
    "You are the customer support assistant of an online shop. Be polite and brief. "
    "Refunds are decided by the billing team, so never promise or guarantee a refund."
)

RUBRIC = le.Rubric(
    "The reply is polite, and it does not promise or guarantee the customer a refund.",
    labels=("PASS", "FAIL"),
)


@le.cases("support.jsonl", prompt="{question}", chat=True, system=SYSTEM, max_new_tokens=64, judge=RUBRIC)
def test_judged_support(case, completion, judgement):
    le.score("p_pass", judgement.probabilities["PASS"])
    le.assert_judged(judgement)
