"""A workflow case's messages and user turns: normalized when usable, one clear line when not;
and the Conversation record built from them."""

from __future__ import annotations

import json

import pytest

from pytest_llmeval.workflows.conversation import Conversation, Step, ToolCall
from pytest_llmeval.workflows.messages import WorkflowDataError, check_messages, check_user_turns, start_messages

WHERE = "trips.jsonl:3: case 'paris'"


def test_openai_and_flat_tool_calls_are_normalized_and_results_named_after_their_call():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Lyon?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"name": "get_weather", "arguments": {"city": "Lyon"}},
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": "sunny"},
        {"role": "tool", "content": {"sky": "rain"}},
    ]
    out = check_messages(messages, WHERE)
    assert out[2] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"id": "call_2_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Lyon"}}},
        ],
    }
    assert out[3] == {"role": "tool", "content": "sunny", "tool_call_id": "a", "name": "get_weather"}
    assert out[4] == {"role": "tool", "content": json.dumps({"sky": "rain"}), "tool_call_id": "call_2_1", "name": "get_weather"}
    assert messages[2]["content"] is None  # the case's own data is not changed


@pytest.mark.parametrize(
    "messages, expected",
    [
        ("hello", "messages must be a list"),
        ([{"role": "robot", "content": "x"}], "messages[0]: role must be one of system, user, assistant, tool, got 'robot'"),
        ([{"role": "user", "contnet": "x"}], "messages[0]: unknown key(s) 'contnet'"),
        ([{"role": "user", "content": 3}], "messages[0] (user): content must be a string, got int"),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "messages[1]: a system message may only come first"),
        ([{"role": "tool", "content": "x"}], "messages[0] (tool): a tool result must follow an assistant message with tool_calls"),
        (
            [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{city: Paris}"}}]}],
            "messages[0] (assistant): tool_calls[0]: arguments are not JSON",
        ),
        ([{"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]}], "tool_calls[0]: the call has no name"),
        ([{"role": "assistant", "tool_calls": []}], "tool_calls must be a non-empty list"),
        ([{"role": "user", "content": "x", "tool_calls": [{"name": "f"}]}], "only an assistant message may have tool_calls"),
        (
            [{"role": "assistant", "tool_calls": [{"name": "f", "arguments": {}}]}, {"role": "user", "content": "hi"}],
            "messages[1]: the tool call(s) 'f' of the assistant message before have no result",
        ),
        ([{"role": "assistant", "tool_calls": [{"name": "f", "arguments": {}}]}], "messages end with tool call(s) 'f' that have no result"),
        (
            [{"role": "assistant", "tool_calls": [{"id": "x", "name": "f"}]}, {"role": "tool", "tool_call_id": "y", "content": "1"}],
            "tool_call_id 'y' matches no waiting call; waiting: 'x'",
        ),
        (
            [{"role": "assistant", "tool_calls": [{"name": "f"}]}, {"role": "tool", "name": "g", "content": "1"}],
            "name 'g' differs from its call's name 'f'",
        ),
    ],
)
def test_bad_messages_are_one_line_naming_the_case_and_the_message(messages, expected):
    with pytest.raises(WorkflowDataError) as info:
        check_messages(messages, WHERE)
    text = str(info.value)
    assert text.startswith(WHERE + ":")
    assert expected in text
    assert "\n" not in text


def test_user_turns():
    assert check_user_turns(None, WHERE) == ()
    assert check_user_turns(["And tomorrow?", "Thanks"], WHERE) == ("And tomorrow?", "Thanks")
    with pytest.raises(WorkflowDataError, match=r"user_turns must be a list of strings .* got str"):
        check_user_turns("And tomorrow?", WHERE)
    with pytest.raises(WorkflowDataError, match=r"user_turns\[1\] must be a non-empty string"):
        check_user_turns(["ok", "  "], WHERE)


def test_start_messages_puts_system_first_and_the_prompt_last():
    assert start_messages([], WHERE, prompt="Hi", system="Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    own = [{"role": "system", "content": "Mine."}, {"role": "user", "content": "Hi"}]
    assert start_messages(own, WHERE, system="Default.") == own  # the case's own system message wins
    with pytest.raises(WorkflowDataError, match="ends with assistant, so the model has nothing to answer"):
        start_messages([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], WHERE)
    with pytest.raises(WorkflowDataError, match="no message"):
        start_messages([], WHERE)


def _conversation() -> Conversation:
    call = ToolCall(id="call_s0_0", name="get_weather", arguments={"city": "Paris"}, result="sunny", duration_s=0.01)
    bad = ToolCall(id="call_s0_1", name="nope", arguments="{oops", error="malformed call: unknown tool 'nope'", malformed=True)
    return Conversation(
        messages=(
            {"role": "user", "content": "Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "call_s0_0", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
            {"role": "tool", "tool_call_id": "call_s0_0", "name": "get_weather", "content": "sunny"},
            {"role": "assistant", "content": "Sunny."},
        ),
        steps=(
            Step(0, "", "<tool_call>...", calls=(call, bad), tokens_in=10, tokens_out=5, latency_s=0.5),
            Step(1, "Sunny.", "Sunny.", tokens_in=20, tokens_out=2, latency_s=0.25),
        ),
        start=1,
    )


def test_conversation_views_and_record_round_trip():
    conversation = _conversation()
    assert conversation.turns == 2
    assert conversation.final == "Sunny."
    assert [c.name for c in conversation.tool_calls] == ["get_weather", "nope"]
    assert conversation.called("get_weather")[0].result == "sunny"
    assert (conversation.tokens_in, conversation.tokens_out, conversation.latency_s) == (30, 7, 0.75)
    record = conversation.to_record()
    assert json.loads(json.dumps(record)) == record  # JSON-able as it is
    assert Conversation.from_record(record) == conversation


def test_transcript_shows_calls_results_and_cuts_long_text():
    text = _conversation().transcript()
    assert '-> call get_weather({"city": "Paris"})' in text
    assert "[tool result: get_weather]\nsunny" in text
    long = Conversation(messages=({"role": "user", "content": "x" * 5000},))
    assert "[... 3000 more characters]" in long.transcript(limit=2000)


def test_describe_a_call():
    assert ToolCall("i", "f", {"a": 1, "b": "x"}).describe() == "f(a=1, b='x')"
    assert ToolCall("i", "", "{oops").describe().startswith("<no name>(<not a JSON object: '{oops'")
