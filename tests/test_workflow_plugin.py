"""Workflow suites through the plugin: le.cases(tools=, max_turns=), the conversation fixture, the
trace in samples.jsonl, errors that are errors, on the scripted tool-calling model."""

from __future__ import annotations

import json
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


# ----------------------------------------------------------------------------- the cache


@pytest.fixture
def generated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many requests each backend call of this test's in-process runs computed."""
    from pytest_llmeval.models.hf import HFBackend

    seen: list[int] = []
    original = HFBackend.run_generate

    def counting(self, requests, progress=None):  # type: ignore[no-untyped-def]
        seen.append(len(requests))
        return original(self, requests, progress)

    monkeypatch.setattr(HFBackend, "run_generate", counting)
    return seen


def _transcripts(out: Path) -> dict[str, list]:
    return {k: v["conversation"]["messages"] for k, v in samples(out).items()}


def test_a_rerun_takes_every_round_from_the_cache_and_a_new_tool_result_computes_from_there(
    project: pytest.Pytester, generated: list[int]
) -> None:
    first = project.runpytest("--llmeval-output=out1")
    assert sum(generated) == 7  # 4 conversations: 4 + 4 + 1 rounds; lyon-wrong's two repeat paris's word for word, computed once
    generated.clear()
    again = project.runpytest("--llmeval-output=out2")
    assert generated == [] and "llmeval: loaded" not in again.stdout.str()
    again.stdout.fnmatch_lines(["*from the completion cache (on, .llmeval/cache.sqlite): 4 of 4 conversations"])
    assert _transcripts(project.path / "out1") == _transcripts(project.path / "out2")
    assert all(s["cached"] for s in samples(project.path / "out2").values())
    assert first.parseoutcomes() == again.parseoutcomes()
    tools = project.path / "tools.py"
    tools.write_text(tools.read_text().replace('"Oslo": "snow, -3 C"', '"Oslo": "rain, 4 C"'))
    changed = project.runpytest("--llmeval-output=out3")
    # the first rounds are cached; oslo and two-tools see a new result and compute their next round
    # (two-tools' third round follows a new message too)
    assert sum(generated) == 3
    assert samples(project.path / "out3")["oslo"]["completion"] == "It is rain, 4 C."
    assert changed.parseoutcomes() == {"passed": 2, "missed": 2}


# ----------------------------------------------------------------------------- the prompt version


def test_changing_a_tools_docstring_makes_the_baseline_incomparable_and_names_the_tool(project: pytest.Pytester) -> None:
    project.runpytest("--llmeval-baseline=baseline.json", "--llmeval-update-baseline").stdout.fnmatch_lines(["*recorded*"])
    stored = json.loads((project.path / "baseline.json").read_text())["suites"]["test_suite.py::test_trip"]["fingerprint"]["tools"]
    assert set(stored["tools"]) == {"get_weather", "convert"} and stored["format"] == "tagged" and stored["max_turns"] == 4
    assert project.runpytest("--llmeval-baseline=baseline.json").ret == 0
    tools = project.path / "tools.py"
    tools.write_text(tools.read_text().replace("city: the city's name", "city: the name of the city"))
    result = project.runpytest("--llmeval-baseline=baseline.json")
    result.stdout.fnmatch_lines(
        ["*test_trip*INCOMPARABLE (tools; baseline*", "*INCOMPARABLE: tools differs from the baseline", "  tools: get_weather (changed)", "1 suite ran with a different set of tools than*"]
    )
    assert result.ret != 0


@pytest.mark.parametrize(
    ("argument", "value"),
    [("perturb", "typos"), ("search", 4), ("permute", "cyclic"), ("min_worst_case", 0.5)],
)
def test_a_workflow_suite_refuses_perturbations_and_searches(argument, value):
    from pytest_llmeval.datasets.suite import CaseError, CaseSpec
    from pytest_llmeval.datasets.workflow_cases import check_workflow_spec
    from workflow_fakes import get_weather

    import pytest_llmeval as le

    value = (le.perturb.typos(),) if value == "typos" else value
    spec = CaseSpec(source=CASES, prompt="{question}", tools=(get_weather,), **{argument: value})
    with pytest.raises(CaseError, match=f"{argument}= in a workflow suite"):
        check_workflow_spec(spec)
