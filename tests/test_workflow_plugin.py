"""Workflow suites through the plugin: le.cases(tools=, max_turns=), the conversation fixture, the
trace in samples.jsonl, errors that are errors, on the scripted tool-calling model."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_project import call, samples, write_project

SUITE = '''
import pytest_llmeval as le
from tools import get_weather, convert

@le.cases("cases.jsonl", prompt="{question}", tools=[get_weather, convert], max_turns=4)
def test_trip(case, conversation):
    le.assert_tool_called(conversation, "get_weather", city=case["city"])
    le.assert_contains(conversation.final, case["expected"])
'''

CASES = [
    {"id": "paris", "question": call("get_weather", city="Paris") + " ; say It is {result}.", "city": "Paris", "expected": "sunny"},
    {"id": "oslo", "question": call("get_weather", city="Oslo") + " ; say It is {result}.", "city": "Oslo", "expected": "snow"},
    {"id": "lyon-wrong", "question": call("get_weather", city="Paris") + " ; say It is {result}.", "city": "Lyon", "expected": "rain"},
    {"id": "two-tools", "question": call("get_weather", city="Oslo") + " ; " + call("convert", amount=10, currency="EUR") + " ; say Got {result}", "city": "Oslo", "expected": "EUR"},
]


@pytest.fixture
def project(pytester: pytest.Pytester, scripted_model_dir: Path) -> pytest.Pytester:
    write_project(pytester, scripted_model_dir, CASES, SUITE)
    return pytester


def test_a_workflow_suite_runs_its_conversations_and_traces_every_step(project: pytest.Pytester) -> None:
    result = project.runpytest("--llmeval-output=out", "-v")
    assert result.parseoutcomes() == {"passed": 3, "missed": 1}
    result.stdout.fnmatch_lines(["*test_trip?lyon-wrong? MISSED*", "*3 passed, 1 missed*"])
    assert "chat template, but" not in result.stdout.str()  # a conversation always goes through the template
    found = samples(project.path / "out")
    trace = found["two-tools"]["conversation"]
    assert trace["turns"] == 3 and trace["ending"] == "answered" and trace["tool_format"] == "tagged"
    calls = [c for step in trace["steps"] for c in step["calls"]]
    assert [(c["name"], c["arguments"], c["result"]) for c in calls] == [
        ("get_weather", {"city": "Oslo"}, "snow, -3 C"),
        ("convert", {"amount": 10, "currency": "EUR"}, '{"amount": 5.0, "currency": "EUR"}'),
    ]
    assert [m["role"] for m in trace["messages"]] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert all(step["tokens_out"] > 0 and step["latency_s"] >= 0 for step in trace["steps"])
    assert found["two-tools"]["completion"] == 'Got {"amount": 5.0, "currency": "EUR"}'
