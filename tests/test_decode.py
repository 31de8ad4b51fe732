"""The greedy loop with a shared prefix and finished rows dropped gives transformers' greedy outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.models.decode import PrefixCache, common_prefix, greedy_decode

CHAT_PROMPTS = ["What is " + "two plus " * (i % 4) + "two?" for i in range(6)] + [
    "Please answer politely.",
    "The quick brown fox?",
    "Capital of France?",
    "0 1 2 3 4 5 6 7 8 9",
]


def _backend(model_dir: Path, batch_size: int, **generation: Any) -> Any:
    from pytest_llmeval.models.hf import HFBackend
    from pytest_llmeval.settings import GenerationSettings, LLMSettings

    settings = LLMSettings(model=str(model_dir), batch_size=batch_size, generation=GenerationSettings(**generation))
    return HFBackend.load(settings)


def _no_near_tie(backend: Any, prompts: list[str], max_new_tokens: int) -> None:
    from rounding import assert_no_greedy_near_tie

    tok = backend.tokenizer
    ids = [tok(backend.render(p, chat=True), add_special_tokens=False)["input_ids"] for p in prompts]
    assert_no_greedy_near_tie(backend.model, ids, max_new_tokens, tok.pad_token_id)


def _outputs(backend: Any, prompts: list[str], fast: bool, share: bool = True, **kw: Any) -> list[tuple[str, str]]:
    backend.fast_decode, backend.share_prefix = fast, share
    return [(str(c), c.finish_reason) for c in backend.generate(prompts, chat=True, **kw)]


@pytest.mark.parametrize("batch_size", [1, 4, 10])
@pytest.mark.parametrize("stop", [None, ["o"], ["two", "\n"]])
def test_shared_prefix_greedy_equals_transformers_generate(tiny_model_dir: Path, batch_size: int, stop: Any) -> None:
    backend = _backend(tiny_model_dir, batch_size)
    _no_near_tie(backend, CHAT_PROMPTS, 10)
    kw: dict[str, Any] = {"max_new_tokens": 10}
    if stop:
        kw["stop"] = stop
    reference = _outputs(backend, CHAT_PROMPTS, fast=False, **kw)
    assert _outputs(backend, CHAT_PROMPTS, fast=True, share=True, **kw) == reference
    assert _outputs(backend, CHAT_PROMPTS, fast=True, share=False, **kw) == reference
    assert len({text for text, _ in reference}) > 1  # the prompts really give different texts


def test_stop_strings_and_lengths_stop_rows_at_their_own_step(tiny_model_dir: Path) -> None:
    """Rows finish at different steps (some by stop string, some by length) and tokens_out counts
    each row's own tokens, whatever its batch."""
    backend = _backend(tiny_model_dir, 10)
    _no_near_tie(backend, CHAT_PROMPTS, 10)
    backend.fast_decode = True
    together = backend.generate(CHAT_PROMPTS, chat=True, max_new_tokens=10, stop=["o"])
    alone = [backend.generate(p, chat=True, max_new_tokens=10, stop=["o"]) for p in CHAT_PROMPTS]
    assert [(str(c), c.tokens_out, c.finish_reason) for c in together] == [
        (str(c), c.tokens_out, c.finish_reason) for c in alone
    ]
    assert {c.finish_reason for c in together} == {"stop", "length"}
    assert len({c.tokens_out for c in together}) > 1


def test_the_prefix_is_computed_once_for_all_batches(tiny_model_dir: Path) -> None:
    import torch

    backend = _backend(tiny_model_dir, 4)
    tok = backend.tokenizer
    rows = [tok(backend.render(p, chat=True), add_special_tokens=False)["input_ids"] for p in CHAT_PROMPTS]
    assert common_prefix(rows) >= 3  # "<|im_start|>user\n"
    batches = [rows[start : start + 4] for start in range(0, len(rows), 4)] * 2
    prefixes = [tuple(b[0][: common_prefix(b)]) for b in batches]
    store = PrefixCache()
    with torch.inference_mode():
        for batch in batches:
            greedy_decode(backend.model, tok, batch, max_new_tokens=3, eos=[tok.eos_token_id],
                          pad_id=tok.pad_token_id, prefixes=store)
    # each token of the batches' prefixes is run once: as many as the nodes of their prefix tree
    nodes = {p[:i] for p in prefixes for i in range(1, len(p) + 1)}
    assert store.computed_tokens == len(nodes) < sum(len(p) for p in prefixes)


def test_the_logits_hook_sees_live_rows_and_steps(tiny_model_dir: Path) -> None:
    """A hook gets each live row's index and the step, and its logits decide the token."""
    import torch

    backend = _backend(tiny_model_dir, 4)
    tok = backend.tokenizer
    rows = [tok(backend.render(p, chat=True), add_special_tokens=False)["input_ids"] for p in CHAT_PROMPTS[:4]]
    forced = tok.convert_tokens_to_ids(tok.tokenize("two"))[0]
    seen: list[tuple[list[int], int]] = []

    def hook(logits: torch.Tensor, live: list[int], step: int) -> torch.Tensor:
        seen.append((list(live), step))
        out = logits.clone()
        if step == 1:
            out[:, forced] = 1e9  # every row's second token
        return out

    with torch.inference_mode():
        decoded = greedy_decode(backend.model, tok, rows, max_new_tokens=3, eos=[tok.eos_token_id],
                                pad_id=tok.pad_token_id, logits_hook=hook)
    assert [s for _, s in seen] == list(range(len(seen)))
    assert seen[0][0] == [0, 1, 2, 3]
    assert all(d.tokens[1] == forced for d in decoded if len(d.tokens) > 1)


@pytest.mark.parametrize(
    "rows, expected",
    [([[1, 2, 3], [1, 2, 4]], 2), ([[1, 2], [1, 2, 3]], 1), ([[5, 6]], 1), ([[1], [1]], 0), ([[1, 2], [3, 4]], 0)],
)
def test_common_prefix_leaves_every_row_a_token(rows: list[list[int]], expected: int) -> None:
    assert common_prefix(rows) == expected
