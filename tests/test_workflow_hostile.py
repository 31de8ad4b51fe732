"""Hostile workflow cases end as a pass, a miss or an error: never a traceback, never a hang.

Tools that raise, hang, return 10 MB or return something that is not text; a model that calls an
unknown tool, writes arguments that are not JSON or miss a required field, or never stops calling;
a chat template that refuses a conversation; case data that is malformed (a collection error
naming the case); tools= without the conversation fixture."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from workflow_project import call, samples, write_project

HOSTILE_TOOLS = '''

def explode(reason: str) -> str:
    """Fails.

    Args:
        reason: why
    """
    raise KeyError(reason)


def hang(seconds: float) -> str:
    """Sleeps.

    Args:
        seconds: how long
    """
    time.sleep(seconds)
    return "woke up"


def flood(size: int) -> str:
    """Returns a lot.

    Args:
        size: how many characters
    """
    return "x" * size


def raw_bytes(n: int) -> bytes:
    """Returns bytes.

    Args:
        n: how many
    """
    return b"\\x00" * n
'''

SUITE = '''
import pytest_llmeval as le
from tools import get_weather, explode, hang, flood, raw_bytes

@le.cases("cases.jsonl", prompt="{question}", tools=[get_weather, explode, hang, flood, raw_bytes], max_turns=3)
def test_hostile(case, conversation):
    call = conversation.tool_calls[0]
    le.assert_contains(call.error or call.result or "", case["expected"])
    assert conversation.ending == case["ending"], conversation.ending
'''

CASES = [
    {"id": "raises", "question": call("explode", reason="no order 7") + " ; say sorry", "expected": "KeyError: 'no order 7'", "ending": "answered"},
    {"id": "hangs", "question": call("hang", seconds=60) + " ; say waited", "expected": "timed out after 1 s", "ending": "answered"},
    {"id": "floods", "question": call("flood", size=10_000_000) + " ; say {result}", "expected": "cut: the result has 10000000 characters", "ending": "answered"},
    {"id": "bytes", "question": call("raw_bytes", n=3) + " ; say ok", "expected": "returned a bytes, not text", "ending": "answered"},
    {"id": "unknown-tool", "question": call("get_wether", city="Paris") + " ; say ok", "expected": "unknown tool 'get_wether'", "ending": "answered"},
    {"id": "not-json", "question": "raw {\"name\": \"get_weather\", \"arguments\": {city: Paris}} ; say ok", "expected": "not JSON", "ending": "answered"},
    {"id": "missing-field", "question": call("get_weather") + " ; say ok", "expected": "missing required argument(s) 'city'", "ending": "answered"},
    {"id": "loop", "question": "loop get_weather {\"city\": \"Paris\"}", "expected": "sunny", "ending": "max_turns"},
]


def literal(pattern: str) -> str:
    """``pattern`` with its square brackets matched as themselves by fnmatch (its ``*`` kept)."""
    return pattern.replace("[", "\0").replace("]", "[]]").replace("\0", "[[]")


@pytest.fixture
def project(pytester: pytest.Pytester, scripted_model_dir: Path) -> pytest.Pytester:
    write_project(pytester, scripted_model_dir, CASES, SUITE, ini="llmeval_tool_timeout = 1\n")
    (pytester.path / "tools.py").write_text((pytester.path / "tools.py").read_text() + HOSTILE_TOOLS)
    return pytester


def test_hostile_tools_and_calls_are_recorded_and_the_run_ends(project: pytest.Pytester) -> None:
    started = time.perf_counter()
    result = project.runpytest("--llmeval-output=out")
    assert time.perf_counter() - started < 240  # the hanging tool is abandoned after 1 s, not waited for
    assert result.parseoutcomes() == {"passed": len(CASES)}, result.stdout.str()
    assert "Traceback" not in result.stdout.str()
    found = samples(project.path / "out")
    flood = found["floods"]["conversation"]["steps"][0]["calls"][0]
    assert flood["truncated"] and len(flood["result"]) < 21_000
    loop = found["loop"]["conversation"]
    assert loop["turns"] == 3 and len([c for s in loop["steps"] for c in s["calls"]]) == 3
    malformed = found["not-json"]["conversation"]["steps"][0]["calls"][0]
    assert malformed["malformed"] and malformed["result"] is None
    # the model is shown each failure as the call's result, and the conversation goes on
    tool_message = found["raises"]["conversation"]["messages"][2]
    assert tool_message["role"] == "tool" and tool_message["content"].startswith("error: KeyError")


def test_a_conversation_the_chat_template_refuses_is_an_error_not_a_miss(pytester: pytest.Pytester, tmp_path: Path) -> None:
    from tiny_tools import GENERIC_TEMPLATE, build_scripted_model

    refusing = "{% for m in messages %}{% if 'REFUSE' in m['content'] %}{{ raise_exception('no refusals here') }}{% endif %}{% endfor %}"
    model = build_scripted_model(tmp_path / "refusing", template=refusing + GENERIC_TEMPLATE)
    cases = [
        {"id": "fine", "question": call("get_weather", city="Paris") + " ; say {result}", "city": "Paris", "expected": "sunny"},
        {"id": "refused", "question": "REFUSE " + call("get_weather", city="Paris"), "city": "Paris", "expected": "sunny"},
    ]
    suite = '''
import pytest_llmeval as le
from tools import get_weather

@le.cases("cases.jsonl", prompt="{question}", tools=[get_weather])
def test_trip(case, conversation):
    le.assert_contains(conversation.final, case["expected"])
'''
    write_project(pytester, model, cases, suite)
    result = pytester.runpytest("--llmeval-output=out")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the conversation of case 'refused' failed: generation failed: OutputError: the chat template refused the conversation: no refusals here*"])
    assert "Traceback" not in result.stdout.str()
    found = samples(pytester.path / "out")
    assert found["refused"]["outcome"] == "error" and found["refused"]["conversation"]["ending"] == "error"
    assert found["fine"]["conversation"]["tool_format"] == "generic"  # a template without tools: the generic format


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"id": "bad-role", "question": "hi", "messages": [{"role": "robot", "content": "beep"}]}, "cases.jsonl:1: case 'bad-role': messages[0]: role must be one of system, user, assistant, tool*"),
        (
            {"id": "no-result", "question": "hi", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": "{not json"}}]}]},
            "cases.jsonl:1: case 'no-result': messages[1] (assistant): tool_calls[0]: arguments are not JSON*",
        ),
        ({"id": "turns", "question": "hi", "user_turns": "thanks"}, "cases.jsonl:1: case 'turns': user_turns must be a list of strings*"),
    ],
)
def test_malformed_case_data_is_a_collection_error_naming_the_case(pytester: pytest.Pytester, scripted_model_dir: Path, case: dict, expected: str) -> None:
    suite = '''
import pytest_llmeval as le
from tools import get_weather

@le.cases("cases.jsonl", prompt="{question}", tools=[get_weather])
def test_trip(case, conversation):
    pass
'''
    write_project(pytester, scripted_model_dir, [case], suite)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*llmeval: {literal(expected)}"])
    assert "Traceback" not in result.stdout.str() and "loaded" not in result.stdout.str()


@pytest.mark.parametrize(
    ("arguments", "test", "expected"),
    [
        ("tools=[get_weather]", "def test_x(case, completion)", "le.cases of test_x: tools=/max_turns= make each case a conversation; ask for the 'conversation' fixture*"),
        ("tools=[get_weather], chat=False", "def test_x(case, conversation)", "le.cases of test_x: chat=False in a workflow suite*"),
        ("tools=[undocumented]", "def test_x(case, conversation)", "le.cases of test_x: tools=: tool undocumented: *docstring*"),
        ("tools=get_weather", "def test_x(case, conversation)", "le.cases of test_x: tools=: tools= must be a list of functions*"),
        ("max_turns=0", "def test_x(case, conversation)", "le.cases of test_x: max_turns= must be a whole number of at least 1, got 0"),
        ("tools=[get_weather]", "def test_x(case, conversation, completion)", "le.cases of test_x: the test asks for 'conversation' and 'completion'; use conversation.final*"),
    ],
)
def test_workflow_arguments_that_cannot_work_are_one_collection_error(
    pytester: pytest.Pytester, scripted_model_dir: Path, arguments: str, test: str, expected: str
) -> None:
    suite = f'''
import pytest_llmeval as le
from tools import get_weather

def undocumented(city):
    return city

@le.cases("cases.jsonl", prompt="{{question}}", {arguments})
{test}:
    pass
'''
    write_project(pytester, scripted_model_dir, [{"id": "a", "question": "hi"}], suite)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*llmeval: {literal(expected)}"])
    assert "Traceback" not in result.stdout.str()
