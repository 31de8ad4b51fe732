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
    seen: list[tuple[list[int], list[int]]] = []

    def hook(logits: torch.Tensor, live: list[int], steps: list[int]) -> torch.Tensor:
        seen.append((list(live), list(steps)))
        out = logits.clone()
        out[[k for k, s in enumerate(steps) if s == 1], forced] = 1e9  # every row's second token
        return out

    with torch.inference_mode():
        decoded = greedy_decode(backend.model, tok, rows, max_new_tokens=3, eos=[tok.eos_token_id],
                                pad_id=tok.pad_token_id, logits_hook=hook)
    assert [set(s) for _, s in seen] == [{step} for step in range(len(seen))]
    assert sorted(seen[0][0]) == [0, 1, 2, 3]
    assert all(d.tokens[1] == forced for d in decoded if len(d.tokens) > 1)


@pytest.mark.parametrize(
    "rows, expected",
    [([[1, 2, 3], [1, 2, 4]], 2), ([[1, 2], [1, 2, 3]], 1), ([[5, 6]], 1), ([[1], [1]], 0), ([[1, 2], [3, 4]], 0)],
)
def test_common_prefix_leaves_every_row_a_token(rows: list[list[int]], expected: int) -> None:
    assert common_prefix(rows) == expected


TEMPLATED = [f"Is {a} bigger than {b}? Answer yes or no." for a, b in [(3, 4), (3, 7), (12, 5), (8, 8)]] + [
    f"Name one fact about {t}." for t in ("owls", "tea", "the moon")
]


def _rows(backend: Any, prompts: list[str]) -> list[list[int]]:
    tok = backend.tokenizer
    return [tok(backend.render(p, chat=True), add_special_tokens=False)["input_ids"] for p in prompts]


def test_prompt_tokens_shared_by_some_rows_are_computed_once(tiny_model_dir: Path) -> None:
    """Past the prefix all rows share, the prompts run as one prefix tree: a token that several
    prompts have at the same place after the same tokens is computed once."""
    import torch

    backend = _backend(tiny_model_dir, 8)
    rows = _rows(backend, TEMPLATED)
    shared = common_prefix(rows)
    nodes = {tuple(r[:i]) for r in rows for i in range(shared + 1, len(r) + 1)}
    store = PrefixCache()
    with torch.inference_mode():
        greedy_decode(backend.model, backend.tokenizer, rows, max_new_tokens=2, eos=[backend.tokenizer.eos_token_id],
                      pad_id=backend.tokenizer.pad_token_id, prefixes=store)
    assert store.computed_tokens == shared
    assert store.prompt_tokens == len(nodes) < sum(len(r) - shared for r in rows)


def test_waiting_rows_join_as_others_finish(tiny_model_dir: Path) -> None:
    """With fewer slots than rows, rows join the running ones: no forward pass has more rows than
    the slots, rows at different steps share a pass, and the outputs are those of one batch."""
    import functools

    import torch

    backend = _backend(tiny_model_dir, 10)
    tok = backend.tokenizer
    prompts = CHAT_PROMPTS + TEMPLATED
    _no_near_tie(backend, prompts, 10)
    rows = _rows(backend, prompts)
    kw: dict[str, Any] = {"max_new_tokens": 10, "eos": [tok.eos_token_id], "pad_id": tok.pad_token_id, "stop": ["o"]}
    with torch.inference_mode():
        together = greedy_decode(backend.model, tok, rows, **kw)
    passes: list[tuple[int, ...]] = []
    widths: list[int] = []
    steps_seen: list[set[int]] = []
    forward = backend.model.forward

    @functools.wraps(forward)
    def recording(*args: Any, **kwargs: Any) -> Any:
        passes.append(tuple(kwargs["input_ids"].shape))
        if kwargs["input_ids"].shape[1] == 1:  # a decoding step (a prefill's mask spans its prefix tree)
            widths.append(kwargs["attention_mask"].shape[-1])
        return forward(*args, **kwargs)

    def hook(logits: torch.Tensor, live: list[int], steps: list[int]) -> torch.Tensor:
        steps_seen.append(set(steps))
        return logits

    backend.model.forward = recording
    try:
        with torch.inference_mode():
            done: list[int] = []
            slotted = greedy_decode(backend.model, tok, rows, slots=4, logits_hook=hook, on_done=done.append, **kw)
    finally:
        del backend.model.forward
    assert [(d.tokens, d.reason) for d in slotted] == [(d.tokens, d.reason) for d in together]
    assert sorted(done) == list(range(len(rows)))
    decode_rows = [shape[0] for shape in passes if shape[1] == 1]
    assert max(decode_rows) <= 4
    assert sum(1 for shape in passes if shape[0] == 1 and shape[1] > 1) > 1  # several admissions
    assert any(len(s) > 1 for s in steps_seen)  # rows at different steps in one pass
    # columns that no running row uses any more are dropped when rows join: the cache never
    # grows past the longest prompt and its new tokens
    assert max(widths) <= max(len(r) for r in rows) + kw["max_new_tokens"]
    assert {d.reason for d in slotted} == {"stop", "length"}


def test_a_cache_layer_with_room_grows_like_concatenation() -> None:
    import torch

    from pytest_llmeval.models.kv_cache import new_buffer, roomy_layer

    gen = torch.Generator().manual_seed(0)
    k, v = torch.randn(2, 3, 5, 4, generator=gen), torch.randn(2, 3, 5, 4, generator=gen)
    layer = roomy_layer(new_buffer(k, 5, 6), new_buffer(v, 5, 6), 5, room=1)
    for n in (1, 2, 1):  # the second update outgrows the room
        k_new, v_new = torch.randn(2, 3, n, 4, generator=gen), torch.randn(2, 3, n, 4, generator=gen)
        keys, values = layer.update(k_new, v_new)
        k, v = torch.cat([k, k_new], dim=2), torch.cat([v, v_new], dim=2)
        assert torch.equal(keys, k) and torch.equal(values, v)
    assert layer.get_seq_length() == 9
    layer.batch_select_indices(torch.tensor([1]))
    assert torch.equal(layer.keys, k[1:]) and torch.equal(layer.values, v[1:])


@pytest.mark.parametrize("limit", [1, 30, 10_000])
def test_prefill_passes_hold_at_most_tree_tokens(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    """Admitted prompts are prefilled in groups of at most TREE_TOKENS distinct tokens (a longer
    prompt alone), with the outputs of one pass."""
    import functools

    import torch

    from pytest_llmeval.models import decode

    backend = _backend(tiny_model_dir, 10)
    tok = backend.tokenizer
    rows = _rows(backend, CHAT_PROMPTS + TEMPLATED)
    _no_near_tie(backend, CHAT_PROMPTS + TEMPLATED, 6)
    kw: dict[str, Any] = {"max_new_tokens": 6, "eos": [tok.eos_token_id], "pad_id": tok.pad_token_id}
    with torch.inference_mode():
        want = greedy_decode(backend.model, tok, rows, **kw)
    monkeypatch.setattr(decode, "TREE_TOKENS", limit)
    prefills: list[int] = []
    forward = backend.model.forward

    @functools.wraps(forward)
    def recording(*args: Any, **kwargs: Any) -> Any:
        if kwargs["input_ids"].shape[1] > 1 and kwargs["attention_mask"].shape[-1] > 0:
            prefills.append(kwargs["input_ids"].shape[1])
        return forward(*args, **kwargs)

    backend.model.forward = recording
    try:
        with torch.inference_mode():
            got = greedy_decode(backend.model, tok, rows, **kw)
    finally:
        del backend.model.forward
    assert [(d.tokens, d.reason) for d in got] == [(d.tokens, d.reason) for d in want]
    tree_passes = prefills[1:] if limit > 1 else prefills  # the first pass computes the shared prefix
    if limit == 10_000:
        assert len(tree_passes) == 1
    else:
        assert len(tree_passes) > 2
        assert all(n <= max(limit, max(len(r) for r in rows)) for n in tree_passes)


def test_tree_groups_count_distinct_tokens() -> None:
    from pytest_llmeval.models.prefill import tree_groups

    rows = [[1, 2, 3], [1, 2, 4], [1, 5], [6, 7, 8, 9]]  # a tree of 3 + 1 + 1 + 4 nodes
    assert tree_groups(rows, 9) == [[0, 1, 2, 3]]
    assert tree_groups(rows, 5) == [[0, 1, 2], [3]]
    assert tree_groups(rows, 5, share=False) == [[0], [1, 2], [3]]  # 3, 3 + 2, 4 tokens
    assert tree_groups(rows, 4) == [[0, 1], [2], [3]]  # 3 + 1, then 2 (a new group starts whole)
