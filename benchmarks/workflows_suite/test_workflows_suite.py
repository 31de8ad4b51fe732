"""64 workflow cases on SmolLM2 for benchmarks/bench_workflows.py (the batched side)."""

import pytest_llmeval as le
from trips import CASES, MAX_TURNS, SYSTEM, TOOLS


@le.cases(CASES, prompt="{question}", system=SYSTEM, tools=TOOLS, max_turns=MAX_TURNS)
def test_trip(case, conversation):
    assert conversation.turns >= 3
