"""The local reasoning budget: once a row has thought max_reasoning_tokens tokens, its next token is
the end-of-thinking token; rows not thinking are untouched."""

from __future__ import annotations

import pytest
import torch

from pytest_llmeval.models.reasoning_budget import ReasoningBudget, force_end_of_thinking, forced_rows, thinking_tokens

START, END, V = 5, 6, 10


def test_thinking_tokens_per_row() -> None:
    assert thinking_tokens([START, 1, 2], start_id=START, end_id=END, started_inside=False) == 2
    assert thinking_tokens([START, 1, END, 3], start_id=START, end_id=END, started_inside=False) is None
    assert thinking_tokens([1, 2], start_id=START, end_id=END, started_inside=False) is None
    assert thinking_tokens([1, 2], start_id=START, end_id=END, started_inside=True) == 2
    assert thinking_tokens([], start_id=START, end_id=END, started_inside=True) == 0


def test_rows_over_budget_are_forced_to_end_thinking() -> None:
    torch.manual_seed(0)
    scores = torch.randn(4, V)
    before = scores.clone()
    generated = [
        [START, 1, 2, 3],  # thinking, 3 tokens: at the budget -> forced
        [START, 1, 2],  # thinking, 2 tokens: under it
        [START, 1, END, 2, 3, 4],  # thinking ended: answer tokens are free
        [7, 8, 9],  # no thinking at all
    ]
    out = force_end_of_thinking(scores, generated, end_id=END, max_reasoning_tokens=3, start_id=START)
    assert out is scores
    assert int(out[0].argmax()) == END and torch.isinf(out[0]).sum() == V - 1
    assert torch.equal(out[1:], before[1:])
    assert torch.softmax(out[0], dim=-1)[END] == 1.0


def test_prompt_opened_thinking_counts_from_the_first_token_and_a_zero_budget_thinks_not_at_all() -> None:
    assert forced_rows([[1, 2], [1]], end_id=END, max_reasoning_tokens=2, start_id=START, started_inside=[True, True]) == [0]
    assert forced_rows([[]], end_id=END, max_reasoning_tokens=0, start_id=START, started_inside=True) == [0]
    with pytest.raises(ValueError, match="started_inside has 1 rows for 2"):
        forced_rows([[1], [2]], end_id=END, max_reasoning_tokens=1, started_inside=[True])
    with pytest.raises(ValueError, match="at least 0"):
        forced_rows([[1]], end_id=END, max_reasoning_tokens=-1)


def test_the_logits_processor_reads_the_generated_part_of_input_ids() -> None:
    prompt = [[0, 0, 3, 4], [0, 3, 4, 4]]  # left padded, width 4
    input_ids = torch.tensor([p + g for p, g in zip(prompt, [[START, 1, 2], [START, 1, END]])])
    scores = torch.zeros(2, V)
    budget = ReasoningBudget(prompt_length=4, end_id=END, max_reasoning_tokens=2, start_id=START)
    out = budget(input_ids, scores)
    assert int(out[0].argmax()) == END and torch.isinf(out[0]).any()
    assert not torch.isinf(out[1]).any()


def test_a_batch_gives_each_row_what_it_gets_alone() -> None:
    rows = [[START, 1, 2, 3], [START, 1], [4, 4], [START, 2, 2, 2, 2]]
    torch.manual_seed(1)
    scores = torch.randn(len(rows), V)
    together = force_end_of_thinking(scores.clone(), rows, end_id=END, max_reasoning_tokens=3, start_id=START)
    for r, row in enumerate(rows):
        alone = force_end_of_thinking(scores[r:r + 1].clone(), [row], end_id=END, max_reasoning_tokens=3, start_id=START)
        assert torch.equal(alone[0], together[r])
