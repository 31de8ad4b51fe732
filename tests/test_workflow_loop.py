"""The round loop: one batched model call per round, tools between rounds, every way a conversation
can end, transcripts that do not depend on the batch, and caching by the conversation so far."""

from __future__ import annotations

import json
import random
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.models.outputs import Completion
from pytest_llmeval.workflows.conversation import Conversation
from pytest_llmeval.workflows.loop import RoundInfo, run_conversations
from pytest_llmeval.workflows.parsers import CallRequest, Reply
from pytest_llmeval.workflows.runner import ToolRunner
from pytest_llmeval.workflows.tools import Tool, tool_from_function
from workflow_fakes import ScriptedModel, call_text, convert, get_weather, weather_agent

TOOLS = (tool_from_function(get_weather), tool_from_function(convert))


def _start(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_a_tool_call_then_an_answer():
    model = ScriptedModel(weather_agent)
    (conversation,) = run_conversations([_start("Weather in Paris?")], model, tools=TOOLS, max_turns=4)
    assert conversation.ending == "answered" and conversation.error is None
    assert conversation.turns == 2
    (call,) = conversation.tool_calls
    assert (call.name, call.arguments, call.result, call.error, call.step) == ("get_weather", {"city": "Paris"}, "sunny, 21 C", None, 0)
    assert conversation.final == "The weather: sunny, 21 C."
    assert [m["role"] for m in conversation.messages] == ["user", "assistant", "tool", "assistant"]
    assert conversation.messages[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert "tool_calls" not in conversation.messages[3]  # a plain answer has no tool_calls key
    assert conversation.messages[2] == {"role": "tool", "tool_call_id": call.id, "name": "get_weather", "content": "sunny, 21 C"}
    assert conversation.start == 1
    assert model.batches == [1, 1]


def test_every_round_is_one_batched_call_of_the_unfinished_conversations():
    model = ScriptedModel(weather_agent)
    rounds: list[RoundInfo] = []
    starts = [_start("Weather in Paris?"), _start("Weather in Oslo?"), _start("Weather in Lyon?")]
    turns = [["Thanks!"], [], ["And Lyon?", "Bye"]]
    out = run_conversations(starts, model, tools=TOOLS, max_turns=10, user_turns=turns, on_round=rounds.append)
    assert [c.turns for c in out] == [4, 2, 6]  # each user turn names a "city": one call, one answer
    assert model.batches == [3, 3, 2, 2, 1, 1]  # each conversation drops out when it is done
    assert [(r.index, r.generated) for r in rounds] == [(0, 3), (1, 3), (2, 2), (3, 2), (4, 1), (5, 1)]
    assert [r.tool_calls for r in rounds] == [3, 0, 2, 0, 1, 0]
    lyon = out[2]
    assert [m["content"] for m in lyon.messages if m["role"] == "user"] == ["Weather in Lyon?", "And Lyon?", "Bye"]
    assert lyon.ending == "answered" and lyon.user_turns_left == ()


def test_a_loop_that_never_ends_stops_at_max_turns_and_still_runs_the_last_calls():
    model = ScriptedModel(lambda messages: call_text("get_weather", city="Paris"))
    (conversation,) = run_conversations([_start("go")], model, tools=TOOLS, max_turns=3)
    assert conversation.ending == "max_turns" and conversation.turns == 3
    assert [c.result for c in conversation.tool_calls] == ["sunny, 21 C"] * 3
    assert conversation.messages[-1]["role"] == "tool"
    assert conversation.final == ""


def test_max_turns_also_stops_scripted_user_turns():
    model = ScriptedModel(lambda messages: "ok")
    (conversation,) = run_conversations([_start("a")], model, max_turns=2, user_turns=[["b", "c", "d"]])
    assert conversation.ending == "max_turns" and conversation.turns == 2
    assert conversation.user_turns_left == ("c", "d")


@pytest.mark.parametrize(
    "output, name, error",
    [
        (call_text("book_flight", to="Oslo"), "book_flight", "malformed call: unknown tool 'book_flight'; the tools are: get_weather, convert"),
        ('<tool_call>{"name": "get_weather", "arguments": {city: Paris}}</tool_call>', "get_weather", "malformed call: the tool call is not JSON"),
        (call_text("get_weather"), "get_weather", "malformed call: missing required argument(s) 'city' of get_weather"),
        (call_text("convert", amount="lots"), "convert", "malformed call: argument 'amount': 'lots' is not of type 'number'"),
        ('<tool_call>{"arguments": {}}</tool_call>', "", "malformed call: the tool call has no name"),
    ],
)
def test_a_malformed_call_is_recorded_never_run_and_shown_to_the_model(output, name, error):
    ran = []
    tools = [
        Tool(t.name, t.description, t.parameters, lambda _f=t.function, **kw: ran.append(kw) or _f(**kw)) for t in TOOLS
    ]
    model = ScriptedModel(lambda messages: output if len(messages) == 1 else "Sorry.")
    (conversation,) = run_conversations([_start("x")], model, tools=tools, max_turns=4)
    (call,) = conversation.tool_calls
    assert call.malformed and call.name == name and call.error.startswith(error) and call.result is None
    assert ran == []
    assert conversation.messages[2]["content"] == f"error: {call.error}"
    assert conversation.ending == "answered" and conversation.final == "Sorry."


def test_tool_failures_reach_the_model_and_the_conversation_goes_on():
    release = threading.Event()

    def flaky(order_id: int) -> str:
        """Look up an order.

        Args:
            order_id: the order's number
        """
        if order_id == 1:
            raise KeyError("order 1")
        release.wait(20)
        return "late"

    tools = [tool_from_function(flaky)]
    model = ScriptedModel(lambda m: call_text("flaky", order_id=int(m[0]["content"])) if len(m) == 1 else f"seen: {m[-1]['content']}")
    try:
        out = run_conversations([_start("1"), _start("2")], model, tools=tools, runner=ToolRunner(tools, timeout=0.3))
    finally:
        release.set()
    assert [c.final for c in out] == ["seen: error: KeyError: 'order 1'", "seen: error: timed out after 0.3 s"]
    assert all(c.ending == "answered" for c in out)


def test_a_failed_generation_ends_only_its_conversations_with_an_error():
    def model(batch):
        return [RuntimeError("out of memory\nat layer 3") if "boom" in m[0]["content"] else "fine" for m in batch]

    out = run_conversations([_start("ok"), _start("boom")], model)
    assert [(c.ending, c.error) for c in out] == [("answered", None), ("error", "generation failed: RuntimeError: out of memory")]

    def broken(batch):
        raise ConnectionError("server went away")

    out = run_conversations([_start("a"), _start("b")], broken)
    assert {c.error for c in out} == {"generation failed: ConnectionError: server went away"}
    (nothing,) = run_conversations([_start("a")], lambda batch: [None])
    assert nothing.error == "generation failed: no output"
    short = run_conversations([_start("a"), _start("b")], lambda batch: ["only one"])
    assert short[0].error == "generation failed: RuntimeError: generate_batch returned 1 outputs for 2 conversations"


def test_a_parser_failure_ends_only_that_conversation():
    def parse(text: str) -> Reply:
        if text == "bad":
            raise ValueError("cannot read")
        return Reply(text)

    out = run_conversations([_start("a"), _start("b")], lambda b: ["bad" if m[0]["content"] == "a" else "good" for m in b], parse=parse)
    assert [(c.ending, c.error) for c in out] == [("error", "the reply could not be read: ValueError: cannot read"), ("answered", None)]


def test_served_model_replies_and_completion_usage_are_kept():
    def served(batch):
        if len(batch[0]) == 1:
            return [Reply("", calls=(CallRequest("get_weather", {"city": "Oslo"}),), tokens_in=12, tokens_out=7, latency_s=0.5)]
        return [Completion("Snowy.", tokens_in=30, tokens_out=3, latency_s=0.25, finish_reason="length")]

    (conversation,) = run_conversations([_start("Oslo?")], served, tools=TOOLS)
    assert conversation.tool_calls[0].result == "snow, -3 C"
    assert [(s.tokens_in, s.tokens_out, s.latency_s, s.finish_reason) for s in conversation.steps] == [
        (12, 7, 0.5, "stop"),
        (30, 3, 0.25, "length"),
    ]
    assert conversation.steps[1].raw == "Snowy."


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="max_turns must be a whole number of at least 1"):
        run_conversations([_start("a")], lambda b: ["x"], max_turns=0)
    with pytest.raises(ValueError, match="user_turns has 1 entries for 2 conversations"):
        run_conversations([_start("a"), _start("b")], lambda b: ["x"] * len(b), user_turns=[[]])


# ----------------------------------------------------------------------------- batch independence

ACTIONS = st.sampled_from(["weather", "convert", "unknown", "not_json", "missing", "answer"])
CITIES = st.sampled_from(["Paris", "Lyon", "Oslo", "Rome"])


def _scripted(scripts: dict[str, list[tuple[str, str]]]):
    """A model whose k-th reply in conversation ``cid`` is ``scripts[cid][k]``: a function of the
    conversation so far only."""

    def respond(messages: list[dict]) -> str:
        cid = messages[0]["content"]
        k = sum(1 for m in messages if m["role"] == "assistant")
        action, city = scripts[cid][k % len(scripts[cid])]
        last = messages[-1]["content"]
        return {
            "weather": call_text("get_weather", city=city),
            "convert": "Converting. " + call_text("convert", amount=len(last), currency="GBP"),
            "unknown": call_text("teleport", to=city),
            "not_json": "<tool_call>{name: oops}</tool_call>",
            "missing": call_text("convert"),
            "answer": f"Answer {k} after {len(messages)} messages: {last[:40]}",
        }[action]

    return respond


def _chunked(respond, rng: random.Random):
    """A generate_batch that computes the batch in random chunks, like a backend with a batch size."""

    def generate(batch):
        out, i = [], 0
        while i < len(batch):
            size = rng.randint(1, 4)
            out.extend(respond(m) for m in batch[i : i + size])
            i += size
        return out

    return generate


def _transcript(conversation: Conversation) -> dict:
    """Everything but timings."""
    record = conversation.to_record()
    for step in record["steps"]:
        step.pop("latency_s")
        for call in step["calls"]:
            call.pop("duration_s")
    return record


@given(
    scripts=st.lists(st.lists(st.tuples(ACTIONS, CITIES), min_size=1, max_size=4), min_size=1, max_size=6),
    turns=st.lists(st.lists(st.text(alphabet="abc ?", min_size=1, max_size=5).filter(str.strip), max_size=2), min_size=6, max_size=6),
    max_turns=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_a_transcript_does_not_depend_on_the_batch(scripts, turns, max_turns, seed):
    rng = random.Random(seed)
    ids = [f"case-{k}" for k in range(len(scripts))]
    respond = _scripted(dict(zip(ids, scripts)))
    starts = [_start(cid) for cid in ids]
    user_turns = turns[: len(ids)]
    kwargs = dict(tools=TOOLS, max_turns=max_turns)

    together = run_conversations(starts, _chunked(respond, rng), user_turns=user_turns, **kwargs)
    alone = [run_conversations([s], respond_batch(respond), user_turns=[u], **kwargs)[0] for s, u in zip(starts, user_turns)]
    order = list(range(len(ids)))
    rng.shuffle(order)
    cut = rng.randint(0, len(order))
    split = {}
    for group in (order[:cut], order[cut:]):
        if group:
            results = run_conversations([starts[i] for i in group], _chunked(respond, rng), user_turns=[user_turns[i] for i in group], **kwargs)
            split.update(zip(group, results))
    for k in range(len(ids)):
        assert _transcript(together[k]) == _transcript(alone[k]) == _transcript(split[k])
        assert together[k].turns <= max_turns


def respond_batch(respond):
    return lambda batch: [respond(m) for m in batch]


def test_records_of_a_run_are_json():
    (conversation,) = run_conversations([_start("Weather in Paris?")], ScriptedModel(weather_agent), tools=TOOLS)
    assert Conversation.from_record(json.loads(json.dumps(conversation.to_record()))) == conversation


def test_with_keys_each_round_says_which_conversations_it_asks_for():
    asked: list[list[tuple[str, int]]] = []

    def generate(batch, which):
        asked.append(list(which))
        return [weather_agent(messages) for messages in batch]

    starts = [_start("Weather in Paris?"), _start("Hello")]
    run_conversations(starts, generate, tools=TOOLS, keys=["paris", "hello"])
    # "Hello" asks for the weather of "Hello" (an unknown city): both take two rounds
    assert asked == [[("paris", 0), ("hello", 0)], [("paris", 1), ("hello", 1)]]
    with pytest.raises(ValueError, match="one key per conversation"):
        run_conversations(starts, generate, keys=["only one"])
