"""Tools: schemas from functions the way transformers builds them, argument checks, and the runner
that turns every kind of tool failure into a result the model sees."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_llmeval.workflows.runner import MAX_RESULT_CHARS, ToolRunner, result_text, run_parallel
from pytest_llmeval.workflows.tools import Tool, ToolDefinitionError, argument_problem, as_tools, tool_from_function
from workflow_fakes import convert, get_weather


def test_schema_is_the_one_transformers_builds():
    from transformers.utils import get_json_schema

    tool = tool_from_function(get_weather)
    assert tool.schema == get_json_schema(get_weather)
    assert tool.name == "get_weather" and tool.description == "Today's weather in a city."
    assert tool.parameters["required"] == ["city"]
    enum = tool_from_function(convert).parameters["properties"]["currency"]
    assert enum["enum"] == ["EUR", "GBP"]


def test_a_function_that_cannot_be_described_is_one_line_with_the_fix():
    def undocumented(x: int) -> int:
        return x

    def untyped(x):
        """Doubles.

        Args:
            x: a number
        """
        return x

    with pytest.raises(ToolDefinitionError, match=r"^tool undocumented: .*no docstring.* Give it a docstring"):
        tool_from_function(undocumented)
    with pytest.raises(ToolDefinitionError, match=r"^tool untyped: .*type hint"):
        tool_from_function(untyped)


def test_as_tools_flattens_tool_sets_and_refuses_duplicates():
    weather = tool_from_function(get_weather)
    tools = as_tools([get_weather, [tool_from_function(convert)]])
    assert [t.name for t in tools] == ["get_weather", "convert"]
    with pytest.raises(ToolDefinitionError, match="two tools are named 'get_weather'"):
        as_tools([get_weather, weather])
    with pytest.raises(ToolDefinitionError, match="tools= must be a list of functions"):
        as_tools(get_weather)
    with pytest.raises(ToolDefinitionError, match="is not a function or a tool"):
        as_tools([42])


@pytest.mark.parametrize(
    "arguments, problem",
    [
        ({"amount": 3}, None),
        ({"amount": 3, "currency": "GBP"}, None),
        ({}, "missing required argument(s) 'amount' of convert"),
        ({"amount": 3, "rate": 2}, "unknown argument(s) 'rate'; convert takes 'amount', 'currency'"),
        ({"amount": "three"}, "argument 'amount': 'three' is not of type 'number'"),
        ({"amount": 3, "currency": "JPY"}, "argument 'currency': 'JPY' is not one of ['EUR', 'GBP']"),
        ("amount=3", "arguments must be a JSON object, got a string"),
    ],
)
def test_argument_problems(arguments, problem):
    assert argument_problem(tool_from_function(convert), arguments) == problem


def test_optional_arguments_may_be_null():
    def search(query: str, limit: int | None = None) -> str:
        """Search.

        Args:
            query: what to look for
            limit: at most this many
        """
        return query

    tool = tool_from_function(search)
    assert argument_problem(tool, {"query": "x", "limit": None}) is None
    assert argument_problem(tool, {"query": "x", "limit": "many"}) is not None


def test_result_text():
    assert result_text("sunny") == ("sunny", False)
    assert result_text(None) == ("", False)
    assert result_text({"a": [1, 2.5, True]}) == ('{"a": [1, 2.5, true]}', False)
    text, cut = result_text("x" * (MAX_RESULT_CHARS + 5))
    assert cut and text.startswith("x" * MAX_RESULT_CHARS)
    assert text.endswith(f"[... cut: the result has {MAX_RESULT_CHARS + 5} characters, the first {MAX_RESULT_CHARS} are shown]")


def _tool(function, name=None) -> Tool:
    return Tool(name=name or function.__name__, description="", parameters={"type": "object", "properties": {}}, function=function)


def test_every_kind_of_tool_failure_is_an_error_result():
    release = threading.Event()

    def raises():
        raise ValueError("no such order\nsecond line")

    def hangs():
        release.wait(30)
        return "late"

    def huge():
        return "y" * 10_000_000

    def bytes_result():
        return b"\x00\x01"

    def an_object():
        return object()

    def nan():
        return {"x": float("nan")}

    def exits():
        raise SystemExit(3)

    async def async_tool():
        return "awaited"

    tools = [_tool(f) for f in (raises, hangs, huge, bytes_result, an_object, nan, exits, async_tool)]
    runner = ToolRunner(tools, timeout=0.5)
    try:
        outcomes = runner.run([(t.name, {}) for t in tools])
    finally:
        release.set()
    by_name = dict(zip((t.name for t in tools), outcomes))
    assert by_name["raises"].error == "ValueError: no such order"
    assert by_name["hangs"].error == "timed out after 0.5 s" and by_name["hangs"].result is None
    assert by_name["huge"].truncated and len(by_name["huge"].result) < MAX_RESULT_CHARS + 200 and by_name["huge"].error is None
    assert by_name["bytes_result"].error == "returned a bytes, not text; return a str (or JSON data: a dict, a list, a number)"
    assert by_name["an_object"].error.startswith("returned a object, not text")
    assert by_name["nan"].error.startswith("returned a dict that is not JSON data")
    assert by_name["exits"].error == "SystemExit: 3"
    assert by_name["async_tool"].result == "awaited"


def test_runner_checks_its_time_limit_and_names_a_tool_it_lacks():
    with pytest.raises(ValueError, match="positive number of seconds"):
        ToolRunner([], timeout=0)
    (outcome,) = ToolRunner([]).run([("lookup", {})])
    assert outcome.error == "this runner has no tool 'lookup'"


def test_calls_run_in_parallel_up_to_max_workers():
    """Four calls that each wait for all four to have started finish only if they run at once."""
    barrier = threading.Barrier(4, timeout=20)

    def meet() -> str:
        barrier.wait()
        return "met"

    runner = ToolRunner([_tool(meet)], max_workers=4, timeout=30)
    assert [o.result for o in runner.run([("meet", {})] * 4)] == ["met"] * 4


def test_at_most_max_workers_run_at_once_and_a_hung_call_frees_its_slot():
    running, peak, lock = [0], [0], threading.Lock()
    stop = threading.Event()

    def work(i: int):
        if i == 0:
            stop.wait(30)  # hangs past its limit
            return "late"
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return i

    try:
        out = run_parallel([lambda i=i: work(i) for i in range(7)], max_workers=2, timeout=1.0)
    finally:
        stop.set()
    assert out[0][0] is False  # timed out
    assert [value for _, value, _ in out[1:]] == [1, 2, 3, 4, 5, 6]
    assert peak[0] <= 2
