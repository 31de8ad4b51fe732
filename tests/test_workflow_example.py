"""The support-assistant example suite (example_suites/workflows/) through the workflow engine.

Its cases and tools run here with scripted assistants: a careful one that passes every case's
assertions, and a careless one that the same assertions catch. So the suite's assertions can pass
and can fail, whatever SmolLM2 makes of the tools.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from pytest_llmeval.scoring.failures import EvalFailure
from pytest_llmeval.workflows.formats import choose_format
from pytest_llmeval.workflows.loop import run_conversations
from pytest_llmeval.workflows.messages import check_user_turns, start_messages
from pytest_llmeval.workflows.tools import as_tools
from tiny import CHAT_TEMPLATE
from workflow_fakes import call_text, template_tokenizer

EXAMPLE = Path(__file__).resolve().parents[1] / "example_suites" / "workflows"
SYSTEM = "You are the support assistant of an online shop."


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(EXAMPLE))
    try:
        import support_tools
    finally:
        sys.path.remove(str(EXAMPLE))
    cases = [json.loads(line) for line in (EXAMPLE / "support_workflows.jsonl").read_text().splitlines() if line.strip()]
    return support_tools, cases


def _order(messages: list[dict]) -> str:
    return re.findall(r"A\d{4}", " ".join(str(m.get("content") or "") for m in messages))[-1]


def careful(messages: list[dict]) -> str:
    last = messages[-1]
    asked = " ".join(m["content"] for m in messages if m["role"] == "user").lower()
    wants_return = any(w in asked for w in ("send it back", "return"))
    if last["role"] == "user" and "label" in last["content"]:
        return "The prepaid return label is on its way by email."
    if last["role"] == "user":
        looked_up = any(m["role"] == "tool" and _order([m]) == _order(messages) for m in messages)
        if looked_up and wants_return:
            return call_text("open_return", order_id=_order(messages), reason="stopped working")
        return call_text("lookup_order", order_id=_order(messages).lower())
    if last["name"] == "open_return":
        return f"Done: {last['content']}."
    order = json.loads(last["content"])
    if order["status"] != "delivered":
        return f"Your {order['item']} is in transit; billing decides on refunds."
    if order["delivered_days_ago"] > 30:
        return "It was delivered 45 days ago, past our 30-day return window."
    if wants_return:
        return call_text("open_return", order_id=order["order_id"], reason="broken")
    return "It was delivered."


def careless(messages: list[dict]) -> str:
    if messages[-1]["role"] == "tool":
        return "Full refund guaranteed!"
    return call_text("open_return", order_id=_order(messages), reason="customer asked")


def _run(example, model):
    support_tools, cases = example
    starts, turns = [], []
    for case in cases:
        where = f"support_workflows.jsonl: case {case['id']!r}"
        starts.append(start_messages(case.get("messages", []), where, prompt=case["question"], system=SYSTEM))
        turns.append(check_user_turns(case.get("user_turns"), where))
    tools = as_tools([support_tools.lookup_order, support_tools.open_return])
    generate = lambda batch: [model(m) for m in batch]  # noqa: E731
    return cases, run_conversations(starts, generate, tools=tools, max_turns=4, user_turns=turns)


@pytest.fixture(scope="module")
def _check(example):
    """The example suite's own test body (example_suites/workflows/test_support_workflows.py), called
    on each conversation: the assertions checked here are the ones the suite runs."""
    spec = importlib.util.spec_from_file_location("support_workflows_suite", EXAMPLE / "test_support_workflows.py")
    suite = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(EXAMPLE))
    try:
        spec.loader.exec_module(suite)  # its support_tools is the fixture's, already imported
    finally:
        sys.path.remove(str(EXAMPLE))
    return suite.test_support_workflow


def test_a_careful_assistant_passes_every_case(example, _check):
    example[0].RETURNS.clear()
    cases, conversations = _run(example, careful)
    for case, conversation in zip(cases, conversations):
        _check(case, conversation)
    follow_up = conversations[-1]
    assert follow_up.start == 6 and follow_up.turns == 3 and follow_up.user_turns_left == ()
    assert [c.name for c in follow_up.tool_calls] == ["open_return"]  # earlier turns are not the model's calls
    assert len(example[0].RETURNS) == 2


def test_a_careless_assistant_is_caught(example, _check):
    cases, conversations = _run(example, careless)
    missed = []
    for case, conversation in zip(cases, conversations):
        try:
            _check(case, conversation)
        except EvalFailure as failure:
            missed.append((case["id"], failure.scorer))
    assert [case_id for case_id, _ in missed] == [c["id"] for c in cases]


def test_the_example_conversations_render_for_a_model_without_tool_support(example):
    support_tools, _ = example
    _, conversations = _run(example, careful)
    tokenizer = template_tokenizer(CHAT_TEMPLATE)
    fmt = choose_format(tokenizer)
    assert fmt.name == "generic"
    schemas = [t.schema for t in as_tools([support_tools.lookup_order, support_tools.open_return])]
    for conversation in conversations:
        prompt = fmt.render(tokenizer, conversation.messages, schemas)
        assert '"name": "open_return"' in prompt and prompt.endswith("<|im_start|>assistant\n")
