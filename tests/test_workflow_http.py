"""Workflow cases on a served model: messages and tools sent natively, tool_calls read back, every
round cached (a re-run sends no request)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("httpx", reason="the openai: backend needs httpx (pip install 'pytest-llmevals[http]')")

from http_servers import FakeVLLM  # noqa: E402
from workflow_project import TOOLS, samples  # noqa: E402

SUITE = '''
import pytest_llmeval as le
from tools import get_weather

@le.cases("cases.jsonl", prompt="What is the weather in {city}?", tools=[get_weather], max_turns=3)
def test_trip(case, conversation):
    le.assert_tool_called(conversation, "get_weather", city=case["city"])
    le.assert_contains(conversation.final, case["expected"])
'''


def test_a_served_model_gets_messages_and_tools_and_answers_with_tool_calls(pytester: pytest.Pytester) -> None:
    cases = [{"id": "paris", "city": "Paris", "expected": "sunny"}, {"id": "oslo", "city": "Oslo", "expected": "snow"}, {"id": "rome", "city": "Rome", "expected": "sunny"}]
    pytester.makefile(".jsonl", cases="\n".join(json.dumps(c) for c in cases))
    pytester.makepyfile(tools=TOOLS, test_suite=SUITE)
    pytester.makeini("[pytest]\nllmeval_history = off\nllmeval_model = openai:fake-model\n")
    fake = FakeVLLM()
    with fake.run() as url:
        first = pytester.runpytest(f"--llmeval-base-url={url}", "--llmeval-output=out1")
        sent = len(fake.requests)
        again = pytester.runpytest(f"--llmeval-base-url={url}", "--llmeval-output=out2")
    assert first.parseoutcomes() == again.parseoutcomes() == {"passed": 2, "missed": 1}
    assert sent == 6 and len(fake.requests) == 6  # two rounds of three; the re-run sent nothing
    bodies = [r["body"] for r in fake.requests]
    assert all(r["path"].endswith("/chat/completions") for r in fake.requests)
    assert all(b["tools"][0]["function"]["name"] == "get_weather" for b in bodies)
    second = next(b for b in bodies if len(b["messages"]) == 3 and "Paris" in b["messages"][0]["content"])
    assistant, tool = second["messages"][1], second["messages"][2]
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}  # a JSON string, as the API takes it
    assert tool == {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"], "name": "get_weather", "content": "sunny, 21 C"}
    trace = samples(pytester.path / "out1")["paris"]["conversation"]
    assert trace["tool_format"] == "native" and trace["turns"] == 2 and trace["steps"][0]["tokens_in"] > 0
    assert samples(pytester.path / "out2")["paris"]["conversation"]["messages"] == trace["messages"]
    again.stdout.fnmatch_lines(["*3 of 3 conversations"])
