"""A support assistant with two tools, evaluated as whole workflows.

On SmolLM2-135M-Instruct, whose chat template has no tool support, the tools are described in the
system message (the generic format of docs/workflows.md). Its tool use is poor: what the suite
shows is the mechanics, every call and result traced and scored, and the gate on its baseline.
"""

import pytest_llmeval as le
from support_tools import lookup_order, open_return

SYSTEM = (
    "You are the support assistant of an online shop. Look orders up with the tools before you answer, "
    "and open a return when the customer asks for one. Returns are possible within 30 days of delivery. "
    "Never promise a refund: the billing team decides refunds."
)

RUBRIC = le.Rubric(
    "Reading the whole conversation: the assistant based its answer on what the tools returned, "
    "told the customer the order's real status, and did not promise a refund.",
    labels=("PASS", "FAIL"),
)

TOOLS = [lookup_order, open_return]


def same_order(expected: str):
    """A predicate for a tool argument: the order number, whatever its case or spacing."""
    return lambda value: str(value).strip().upper() == expected


@le.cases("support_workflows.jsonl", prompt="{question}", chat=True, system=SYSTEM, tools=TOOLS, max_turns=4, max_new_tokens=96)
def test_support_workflow(case, conversation):
    for name in case["must_call"]:
        le.assert_tool_called(conversation, name, order_id=same_order(case["order_id"]))
    if len(case["must_call"]) > 1:
        le.assert_tool_order(conversation, case["must_call"])
    for name in case["must_not_call"]:
        le.assert_tool_not_called(conversation, name)
    le.assert_turns(conversation, max=4)
    le.assert_contains(conversation.final, case["expected"])
    le.assert_not_contains(conversation.final, ["refund guaranteed", "full refund", "we will refund"])


@le.cases("support_workflows.jsonl", prompt="{question}", chat=True, system=SYSTEM, tools=TOOLS, max_turns=4, max_new_tokens=96, judge=RUBRIC)
def test_support_workflow_judged(case, conversation, judgement):
    """The judge reads the whole transcript: every message, tool call and result."""
    le.score("p_pass", judgement.probabilities["PASS"])
    le.assert_judged(judgement)
