"""Transcripts do not depend on the batch size or on the other cases, with greedy decoding and
with seeded sampling: on the scripted tool-calling model (tool calls in every round) and on a
random tiny Llama (numbers that a batching mistake would change), at batch 1 and batch N."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_project import call, samples, write_project

SUITE = '''
import pytest_llmeval as le
from tools import get_weather, convert

@le.cases("cases.jsonl", prompt="{question}", tools=[get_weather, convert], max_turns=5, max_new_tokens={MAX})
def test_flow(case, conversation):
    assert conversation.turns >= 1
'''

SCRIPTED = [
    {"id": "paris", "question": call("get_weather", city="Paris") + " ; say It is {result}."},
    {"id": "two", "question": call("get_weather", city="Oslo") + " ; " + call("convert", amount=3, currency="GBP") + " ; say {result}"},
    {"id": "chat", "question": "say hello", "user_turns": ["say again", call("get_weather", city="Oslo") + " ; say {result}"]},
    {"id": "bad", "question": "raw {oops} ; say sorry"},
    {"id": "long", "question": "loop get_weather {\"city\": \"Paris\"}"},
]


def transcripts(out: Path) -> dict[str, tuple]:
    """Per item: every message, and each step's text and token counts (not its latency)."""
    return {
        k: (v["conversation"]["messages"], [(s["raw"], s["tokens_in"], s["tokens_out"]) for s in v["conversation"]["steps"]])
        for k, v in samples(out).items()
    }


def runs(pytester: pytest.Pytester, *variants: tuple[str, ...]) -> list[dict[str, tuple]]:
    found = []
    for i, args in enumerate(variants):
        result = pytester.runpytest("--llmeval-cache=off", f"--llmeval-output=out{i}", *args)
        assert "passed" in result.parseoutcomes(), result.stdout.str()
        found.append(transcripts(pytester.path / f"out{i}"))
    return found


def test_scripted_tool_calls_are_the_same_at_batch_one_and_n_and_alone(pytester: pytest.Pytester, scripted_model_dir: Path) -> None:
    write_project(pytester, scripted_model_dir, SCRIPTED, SUITE.replace("{MAX}", "120"))
    full, single, alone = runs(pytester, ("--llmeval-batch-size=8",), ("--llmeval-batch-size=1",), ("-k", "two"))
    assert full == single and alone["two"] == full["two"]
    assert len(full["two"][1]) == 3 and len(full["long"][1]) == 5  # tool calls happened, rounds ran


@pytest.mark.parametrize("sampling", [(), ("--llmeval-do-sample", "--llmeval-temperature=1.0")], ids=["greedy", "seeded-sampling"])
def test_random_model_transcripts_are_the_same_at_batch_one_and_n_and_alone(pytester: pytest.Pytester, tmp_path: Path, sampling: tuple[str, ...]) -> None:
    from tiny import build_tiny_model
    from tiny_tools import TOOLS_TEMPLATE

    model = build_tiny_model(tmp_path / "tiny", positions=2048, template=TOOLS_TEMPLATE)
    cases = [
        {"id": f"c{i}", "question": f"What is the capital of France? {'Answer politely. ' * i}", "user_turns": ["Thank you!", "The quick brown fox?"][: 1 + i % 2]}
        for i in range(6)
    ]
    write_project(pytester, model, cases, SUITE.replace("{MAX}", "6"), ini="llmeval_seed = 7\n")
    full, single, alone = runs(pytester, ("--llmeval-batch-size=8", *sampling), ("--llmeval-batch-size=1", *sampling), ("-k", "c3", *sampling))
    assert full == single and alone["c3"] == full["c3"]
    assert all(len(steps) >= 2 for _, steps in full.values())  # the scripted user turns made further rounds
    assert len({str(messages[2:]) for messages, _ in full.values()}) > 1  # the model wrote something, and not all alike
