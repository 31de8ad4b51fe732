"""Workflow scorers: tool called (subset match, predicates), not called, order, turns."""

from __future__ import annotations

import pytest

import pytest_llmeval as le
from pytest_llmeval.scoring.failures import EvalFailure
from pytest_llmeval.workflows.conversation import Conversation, Step, ToolCall


def _conversation(*calls: ToolCall, turns: int | None = None, ending: str = "answered") -> Conversation:
    steps = [Step(index=0, content="", raw="", calls=tuple(calls))]
    steps += [Step(index=k, content="done", raw="done") for k in range(1, turns or 2)]
    return Conversation(messages=({"role": "user", "content": "q"},), steps=tuple(steps), ending=ending)  # type: ignore[arg-type]


WEATHER = ToolCall("c1", "get_weather", {"city": "Paris", "unit": "C"}, result="sunny")
BOOK = ToolCall("c2", "book", {"city": "Paris", "nights": 2}, result="booked")
BAD = ToolCall("c3", "refund", "{amount: 5", error="malformed call: the tool call is not JSON", malformed=True)


def test_the_scorers_are_public():
    assert le.assert_tool_called is not None and le.assert_turns is not None and le.mcp_tools is not None


def test_called_with_a_subset_of_the_arguments_returns_the_call():
    conversation = _conversation(WEATHER, BOOK)
    assert le.assert_tool_called(conversation, "get_weather") is WEATHER
    assert le.assert_tool_called(conversation, "get_weather", city="Paris") is WEATHER
    assert le.assert_tool_called(conversation, "book", nights=lambda n: n >= 2, city=str) is BOOK


def test_a_tool_argument_may_be_called_name():
    call = ToolCall("c", "lookup", {"name": "Ada"})
    assert le.assert_tool_called(_conversation(call), "lookup", name="Ada") is call


def test_called_misses_say_what_was_called_instead():
    conversation = _conversation(WEATHER, BOOK)
    with pytest.raises(EvalFailure) as info:
        le.assert_tool_called(conversation, "search")
    assert info.value.reason == "search was never called; it called: get_weather(city='Paris', unit='C'), book(city='Paris', nights=2)"
    with pytest.raises(EvalFailure) as info:
        le.assert_tool_called(conversation, "get_weather", city="Lyon")
    assert info.value.reason == "get_weather was called 1 time(s), never as get_weather(city='Lyon'): call 1: city='Paris' (expected 'Lyon')"
    with pytest.raises(EvalFailure, match=r"call 1: no argument 'date'"):
        le.assert_tool_called(conversation, "get_weather", date="today")
    with pytest.raises(EvalFailure, match=r"nights=2: <a predicate> raised AttributeError"):
        le.assert_tool_called(conversation, "book", nights=lambda n: n.upper())

    def is_even(n):
        return n % 2 == 0

    with pytest.raises(EvalFailure, match=r"never as book\(nights=<is_even\(...\)>\): call 1: nights=3 \(expected <is_even\(...\)>\)"):
        le.assert_tool_called(_conversation(ToolCall("c", "book", {"nights": 3})), "book", nights=is_even)
    with pytest.raises(EvalFailure, match="the model called no tool"):
        le.assert_tool_called(_conversation(), "get_weather")


def test_a_malformed_call_is_not_a_call_of_the_tool():
    with pytest.raises(EvalFailure, match=r"refund was called 1 time\(s\), never as refund\(\): call 1: malformed: malformed call: the tool call is not JSON"):
        le.assert_tool_called(_conversation(BAD), "refund")


def test_not_called():
    conversation = _conversation(WEATHER, BAD)
    assert le.assert_tool_not_called(conversation, "book") == 1.0
    assert le.assert_tool_not_called(conversation, "get_weather", city="Lyon") == 1.0
    with pytest.raises(EvalFailure, match=r"^get_weather was called 1 time\(s\) \(first at turn 1\): get_weather\(city='Paris', unit='C'\)"):
        le.assert_tool_not_called(conversation, "get_weather")
    with pytest.raises(EvalFailure, match=r"refund was called 1 time\(s\)"):
        le.assert_tool_not_called(conversation, "refund")  # the model tried, even if the call was malformed


def test_order():
    conversation = _conversation(WEATHER, ToolCall("c9", "search", {}), BOOK)
    assert le.assert_tool_order(conversation, ["get_weather", "book"]) == 1.0
    assert le.assert_tool_order(conversation, ["get_weather", "search", "book"], exact=True) == 1.0
    with pytest.raises(EvalFailure) as info:
        le.assert_tool_order(conversation, ["book", "get_weather"])
    assert info.value.score == 0.5
    assert "'get_weather' was not called after ['book']" in info.value.reason
    with pytest.raises(EvalFailure, match=r"not exactly \['get_weather', 'book'\]") as info:
        le.assert_tool_order(conversation, ["get_weather", "book"], exact=True)
    assert info.value.score == 0.5
    with pytest.raises(EvalFailure, match="'pay' was never called"):
        le.assert_tool_order(conversation, ["pay"])
    with pytest.raises(TypeError, match="non-empty list of tool names"):
        le.assert_tool_order(conversation, "get_weather")


def test_turns():
    conversation = _conversation(turns=3, ending="max_turns")
    assert le.assert_turns(conversation, max=3) == 1.0
    assert le.assert_turns(conversation, min=2, max=5) == 1.0
    with pytest.raises(EvalFailure) as info:
        le.assert_turns(conversation, max=2)
    assert info.value.reason == "the conversation took 3 turns, more than 2 (it was stopped at max_turns)"
    with pytest.raises(EvalFailure, match="fewer than 4"):
        le.assert_turns(conversation, min=4)
    with pytest.raises(ValueError, match="needs max= or min="):
        le.assert_turns(conversation)
    with pytest.raises(ValueError, match="max= must be a whole number"):
        le.assert_turns(conversation, max=-1)


@pytest.mark.parametrize("scorer", [le.assert_tool_called, le.assert_tool_not_called])
def test_a_test_authors_mistake_is_a_type_error(scorer):
    with pytest.raises(TypeError, match="needs the conversation fixture, got str"):
        scorer("the final text", "get_weather")
    with pytest.raises(TypeError, match="needs the tool's name"):
        scorer(_conversation(), "")
