"""Tools from a real MCP server over stdio (tests/data/workflows/mcp_weather.py, started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mcp")

from pytest_llmeval.workflows.fingerprint import tool_hashes  # noqa: E402
from pytest_llmeval.workflows.loop import run_conversations  # noqa: E402
from pytest_llmeval.workflows.mcp_client import McpError, mcp_tools  # noqa: E402
from pytest_llmeval.workflows.runner import ToolRunner  # noqa: E402
from pytest_llmeval.workflows.tools import as_tools  # noqa: E402
from workflow_fakes import ScriptedModel, call_text, get_weather, weather_agent  # noqa: E402

SERVER_DIR = Path(__file__).parent / "data" / "workflows"


@pytest.fixture(scope="module")
def server():
    tools = mcp_tools("python -m mcp_weather", cwd=str(SERVER_DIR), timeout=20)
    yield tools
    tools.close()


def test_lists_the_tools_with_their_schemas(server):
    assert [t.name for t in server] == ["get_weather", "fail", "wait"]
    weather = server[0]
    assert weather.origin == "mcp:python -m mcp_weather"
    assert weather.schema["function"]["description"] == "Today's weather in a city."
    assert weather.parameters["required"] == ["city"]
    assert weather.parameters["properties"]["city"]["type"] == "string"
    assert tool_hashes(server)["get_weather"].startswith("sha256:")  # part of the prompt version like any tool


def test_a_conversation_calls_the_server(server):
    model = ScriptedModel(weather_agent)
    (conversation,) = run_conversations([[{"role": "user", "content": "Weather in Paris?"}]], model, tools=list(server))
    (call,) = conversation.tool_calls
    assert (call.name, call.result, call.error) == ("get_weather", "sunny, 21 C", None)
    assert conversation.final == "The weather: sunny, 21 C."


def test_errors_time_outs_and_bad_arguments(server):
    runner = ToolRunner(list(server), timeout=5)
    runner.run([("get_weather", {"city": "Paris"})])  # the first call of a session is slower; the limit is for the others
    reported, slow, fast = runner.run([("fail", {"reason": "no"}), ("wait", {"seconds": 120}), ("wait", {"seconds": 0})])
    assert reported.result is None and reported.error and "fail" in reported.error
    assert slow.error == "timed out after 5 s"
    assert fast.result in ("waited 0.0", "waited 0")  # a hung call does not hold the others up
    model = ScriptedModel(lambda m: call_text("get_weather", town="Paris") if len(m) == 1 else "ok")
    (conversation,) = run_conversations([[{"role": "user", "content": "x"}]], model, tools=list(server))
    assert conversation.tool_calls[0].error == "malformed call: missing required argument(s) 'city' of get_weather"


def test_calls_in_parallel_share_the_session(server):
    runner = ToolRunner(list(server), timeout=20, max_workers=4)
    outcomes = runner.run([("get_weather", {"city": c}) for c in ("Paris", "Lyon", "Oslo", "Paris")])
    assert [o.result for o in outcomes] == ["sunny, 21 C", "rain, 14 C", "unknown city", "sunny, 21 C"]


def test_mixed_with_python_tools_names_must_differ(server):
    from pytest_llmeval.workflows.tools import ToolDefinitionError

    with pytest.raises(ToolDefinitionError, match=r"two tools are named 'get_weather' \(python and mcp:python -m mcp_weather\)"):
        as_tools([get_weather, server])


@pytest.mark.parametrize(
    "command, problem",
    [
        ("no-such-command-llmeval", "the command was not found"),
        ("python -c 'import sys; print(\"broken server\", file=sys.stderr); sys.exit(3)'", "broken server"),
        ("", "needs a command"),
    ],
)
def test_a_server_that_cannot_start_is_one_clear_error(command, problem):
    tools = mcp_tools(command) if command else None
    with pytest.raises(McpError) as info:
        if tools is None:
            mcp_tools(command)
        else:
            list(tools)
    assert problem in str(info.value)
    assert "\n" not in str(info.value)
    if tools is not None:
        tools.close()


def test_after_close_a_call_is_an_error_not_a_hang():
    tools = mcp_tools("python -m mcp_weather", cwd=str(SERVER_DIR))
    assert len(tools) == 3
    tools.close()
    (outcome,) = ToolRunner(list(tools), timeout=5).run([("get_weather", {"city": "Paris"})])
    assert outcome.error.startswith("McpError: mcp_tools('python -m mcp_weather'): the server is not running")
