"""SmolLM2-135M-Instruct: the greedy loop with the chat header's prefix shared gives transformers' outputs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

QUESTIONS = [
    "What is 2 + 2?",
    "What is the capital of France?",
    "Which planet is known as the Red Planet?",
    "How many days are in a week?",
    "Who wrote Hamlet?",
    "What is the chemical formula of water?",
    "Name one fact about honey bees.",
    "Is 17 bigger than 31? Answer yes or no.",
]
MAX_NEW = 12


@pytest.mark.slow
def test_shared_prefix_decoding_equals_transformers_generate(smollm2_gguf: Path) -> None:
    from rounding import assert_no_greedy_near_tie

    from pytest_llmeval.models.decode import common_prefix
    from pytest_llmeval.models.hf import HFBackend
    from pytest_llmeval.settings import LLMSettings

    backend = HFBackend.load(LLMSettings(model=str(smollm2_gguf), batch_size=8))
    tok = backend.tokenizer
    ids = [tok(backend.render(q, chat=True), add_special_tokens=False)["input_ids"] for q in QUESTIONS]
    assert common_prefix(ids) >= 20  # the default system prompt and the user header
    assert_no_greedy_near_tie(backend.model, ids, MAX_NEW, tok.pad_token_id)

    def outputs(fast: bool, batch_size: int, stop: list[str] | None) -> list[tuple[str, int, str]]:
        backend.fast_decode = fast
        backend.settings = dataclasses.replace(backend.settings, batch_size=batch_size)
        kw = {"stop": stop} if stop else {}
        return [(str(c), c.tokens_out, c.finish_reason) for c in backend.generate(QUESTIONS, chat=True, max_new_tokens=MAX_NEW, **kw)]

    for stop in (None, ["\n", "."]):
        reference = outputs(False, 8, stop)
        assert outputs(True, 8, stop) == reference
        assert outputs(True, 1, stop) == reference
        assert outputs(True, 3, stop) == reference
    assert {r for _, _, r in reference} == {"stop", "length"} or len({n for _, n, _ in reference}) > 1
