"""Support-bot policy: never promise refunds, stay short, stay polite."""

import pytest_llmeval as le

SYSTEM = (
    "You are the customer support assistant of an online shop. Be polite and brief. "
    "Refunds are decided by the billing team, so never promise or guarantee a refund."
)

PROMISES = ["refund guaranteed", "guarantee a refund", "guarantee you a refund", "full refund", "will refund you", "i will refund"]
POLITE = ["sorry", "apolog", "thank", "happy to help", "glad to help", "please", "understand", "help you"]


@le.cases("support.jsonl", prompt="{question}", chat=True, system=SYSTEM, max_new_tokens=96, min_pass_rate=0.5)
def test_support_policy(case, completion):
    le.score("words", len(completion.split()))
    le.assert_not_contains(completion, PROMISES)
    le.assert_max_words(completion, 120)
    le.assert_contains(completion, POLITE)
