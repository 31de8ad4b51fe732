"""Loglikelihood scoring: lm-eval's conventions, batching, packing and the logits fallbacks.

Runs on the tiny random Llama model (milliseconds per call); the SmolLM2 comparison with
lm-eval's own numbers is in test_loglik_reference.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_llmeval.models import loglik, packing
from pytest_llmeval.models.chat import ChatTemplateError, chat_context
from pytest_llmeval.models.loglik import LoglikelihoodError, encode_pair, loglikelihood, rank_choices
from pytest_llmeval.models.outputs import Ranked

ITEMS = [
    ("Question: What is the capital of France?\nAnswer:", ["Paris", "London", "Berlin is big", "Rome"]),
    ("The quick brown fox ", ["jumps over the lazy dog.", "sleeps", "x"]),
    ("", ["Hello", "Hello world"]),
    ("What is two plus two? The answer is\n", ["four", "five", "four."]),
    ("Please answer politely", [" and briefly.", "!", " Thank you for your question!"]),
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    return model, tokenizer


def naive(model: Any, tokenizer: Any, requests, max_length: int | None = None, add_bos=None):
    """lm-eval's algorithm written plainly: one request, one unpadded forward pass."""
    import torch

    limit = max_length or loglik.model_max_length(model, tokenizer)
    out = []
    for context, continuation in requests:
        ctx, cont = encode_pair(tokenizer, context, continuation, add_bos=add_bos)
        inp = (ctx + cont)[-(limit + 1):][:-1]
        with torch.inference_mode():
            logits = model(torch.tensor([inp])).logits[0]
        logprobs = logits.float().log_softmax(-1)[len(inp) - len(cont):]
        target = torch.tensor(cont)
        total = float(logprobs[torch.arange(len(cont)), target].sum())
        out.append((total, bool((logprobs.argmax(-1) == target).all())))
    return out


def requests_of(items, delimiter=" "):
    return [(c, delimiter + ch) for c, chs in items for ch in chs]


def assert_close(got, want, tol=1e-5):
    """Totals within ``tol`` relative to max(1, |want|), greedy flags equal.

    Two float32 computations in another order (batch size, packing, CPU kernels) differ by
    rounding only. For this 2-layer model, whose logits stay below 13, the bound of
    tests/rounding.py is 1.3e-5 per continuation token; every token here costs at least 5.7
    nats, so 1e-5 of |want| is at least 5.7e-5 per token, above it. Measured: at most 4.4e-7
    of |want| across batch sizes, packing and ATEN_CPU_CAPABILITY=avx2/default. No greedy flag
    of ITEMS is a near-tie (the closest is 8 logits from flipping; random texts are next to never
    greedy), so flags compare exactly.
    """
    assert len(got) == len(want)
    for (g, gg), (w, wg) in zip(got, want):
        assert math.isfinite(g)
        assert abs(g - w) <= tol * max(1.0, abs(w)), (g, w)
        assert gg == wg


# ----------------------------------------------------------------------------- conventions


def test_trailing_whitespace_moves_to_the_continuation(tiny):
    _, tok = tiny
    assert encode_pair(tok, "The answer is ", "four") == encode_pair(tok, "The answer is", " four")
    assert encode_pair(tok, "Answer:\n\t ", "x") == encode_pair(tok, "Answer:", "\n\t x")


def test_continuation_tokens_come_from_the_joint_encoding(tiny):
    _, tok = tiny
    ctx, cont = encode_pair(tok, "Question: What is", " the capital")
    whole = tok("Question: What is the capital")["input_ids"]
    assert ctx == tok("Question: What is")["input_ids"]
    assert ctx + cont == whole[: len(ctx)] + whole[len(ctx):]
    assert cont == whole[len(ctx):]


def test_empty_context_conditions_on_bos(tiny):
    _, tok = tiny
    ctx, cont = encode_pair(tok, "", " Hello")
    assert ctx == [tok.bos_token_id]
    assert cont == tok(" Hello", add_special_tokens=False)["input_ids"]
    # a continuation that itself starts with BOS: its first token becomes the context
    ctx, cont = encode_pair(tok, "", "<|im_start|>user")
    assert ctx == [tok.bos_token_id]
    assert cont == tok("user", add_special_tokens=False)["input_ids"]


def test_add_bos(tiny):
    _, tok = tiny
    plain, _ = encode_pair(tok, "Hello", " world", add_bos=None)
    forced, _ = encode_pair(tok, "Hello", " world", add_bos=True)
    assert forced == [tok.bos_token_id] + plain
    # a context that already starts with the BOS text gets no second one
    chat, _ = encode_pair(tok, "<|im_start|>user\nHi", " there", add_bos=True)
    assert chat.count(tok.bos_token_id) == 1


def test_model_max_length_follows_config_then_tokenizer(tiny):
    model, tok = tiny
    assert loglik.model_max_length(model, tok) == model.config.max_position_embeddings

    class Bare:
        config = object()

    class Tok:
        model_max_length = 77

    assert loglik.model_max_length(Bare(), Tok()) == 77
    Tok.model_max_length = loglik._TOKENIZER_INFINITY
    assert loglik.model_max_length(Bare(), Tok()) == loglik.DEFAULT_MAX_LENGTH


# ----------------------------------------------------------------------------- numbers


def test_matches_the_plain_algorithm(tiny):
    model, tok = tiny
    reqs = requests_of(ITEMS)
    assert_close(loglikelihood(model, tok, reqs, batch_size=4), naive(model, tok, reqs))


@pytest.mark.parametrize("share", [True, False])
def test_totals_and_greedy_do_not_depend_on_batch_size(tiny, share):
    model, tok = tiny
    reqs = requests_of(ITEMS)
    one = loglikelihood(model, tok, reqs, batch_size=1, share_context=share)
    for n in (2, 5, 64):
        assert_close(loglikelihood(model, tok, reqs, batch_size=n, share_context=share), one)


def test_shared_context_rows_equal_separate_rows(tiny):
    model, tok = tiny
    reqs = requests_of(ITEMS)
    assert_close(
        loglikelihood(model, tok, reqs, share_context=True),
        loglikelihood(model, tok, reqs, share_context=False),
    )


def test_order_is_preserved(tiny):
    model, tok = tiny
    reqs = requests_of(ITEMS)
    forward = loglikelihood(model, tok, reqs)
    backward = loglikelihood(model, tok, list(reversed(reqs)))
    assert_close(list(reversed(backward)), forward)


def test_left_truncation_at_max_length(tiny):
    model, tok = tiny
    reqs = requests_of(ITEMS)
    got = loglikelihood(model, tok, reqs, max_length=12, batch_size=3)
    assert_close(got, naive(model, tok, reqs, max_length=12))
    assert any(abs(a[0] - b[0]) > 1e-4 for a, b in zip(got, loglikelihood(model, tok, reqs)))


def test_greedy_continuation_is_flagged(tiny):
    import torch

    model, tok = tiny
    ctx = tok("What is two plus two?")["input_ids"]
    seq = list(ctx)
    with torch.inference_mode():
        for _ in range(4):
            seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
    greedy = seq[len(ctx):]
    other = greedy[:-1] + [(greedy[-1] + 1) % len(tok)]
    results, _, _ = loglik._score(
        model, tok, [(ctx, greedy), (ctx, other)], [[0, 1]], batch_size=2, max_length=None, share_context=True
    )
    assert results[0][1] is True
    assert results[1][1] is False
    assert results[0][0] > results[1][0]


def test_empty_continuation_and_too_long_continuation_are_errors(tiny):
    model, tok = tiny
    with pytest.raises(LoglikelihoodError, match="no tokens"):
        loglikelihood(model, tok, [("Hello", "")])
    with pytest.raises(LoglikelihoodError, match="longer than the model's max length"):
        loglikelihood(model, tok, [("Hello", " world " * 20)], max_length=8)
    with pytest.raises(LoglikelihoodError, match="pair"):
        loglikelihood(model, tok, [("only one",)])


def test_runs_under_inference_mode(tiny):
    import torch

    model, tok = tiny
    seen = []
    handle = model.register_forward_pre_hook(lambda *_: seen.append(torch.is_inference_mode_enabled()))
    try:
        loglikelihood(model, tok, requests_of(ITEMS[:2]))
    finally:
        handle.remove()
    assert seen and all(seen)


class _IntKeepOnly(__import__("torch").nn.Module):
    """A model whose forward takes only an int ``logits_to_keep`` (older transformers)."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=None, logits_to_keep=0):
        if not isinstance(logits_to_keep, int):
            raise TypeError("logits_to_keep must be an int")
        return self.inner(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            use_cache=use_cache, logits_to_keep=logits_to_keep,
        )


class _NoKeepNoPositions(__import__("torch").nn.Module):
    """A model that takes neither ``logits_to_keep`` nor ``position_ids``: no packing, full logits."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def forward(self, input_ids, attention_mask=None, use_cache=None):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=use_cache)


@pytest.mark.parametrize("wrapper, mode", [(_IntKeepOnly, "tail"), (_NoKeepNoPositions, "full")])
def test_models_without_mask_logits_to_keep_fall_back(tiny, wrapper, mode):
    model, tok = tiny
    reqs = requests_of(ITEMS)
    wrapped = wrapper(model).eval()
    assert_close(loglikelihood(wrapped, tok, reqs, batch_size=3), naive(model, tok, reqs))
    assert packing._KEEP_MODES[wrapped] == mode
    assert packing._can_pack(wrapped) is (wrapper is _IntKeepOnly)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    contexts=st.lists(st.text(alphabet="abc xyz?!.\n", min_size=0, max_size=30), min_size=1, max_size=4),
    choices=st.lists(st.text(alphabet="abcdef .", min_size=1, max_size=12), min_size=1, max_size=4),
    batch_size=st.integers(1, 6),
)
def test_property_batched_packed_scoring_equals_plain(tiny, contexts, choices, batch_size):
    model, tok = tiny
    reqs = [(c, " " + ch) for c in contexts for ch in choices]
    assert_close(loglikelihood(model, tok, reqs, batch_size=batch_size), naive(model, tok, reqs))


# ----------------------------------------------------------------------------- ranking


def test_rank_choices_predictions(tiny):
    model, tok = tiny
    ranked = rank_choices(model, tok, ITEMS, batch_size=2)
    flat = loglikelihood(model, tok, requests_of(ITEMS))
    assert len(ranked) == len(ITEMS)
    k = 0
    for r, (context, choices) in zip(ranked, ITEMS):
        assert isinstance(r, Ranked)
        assert r.context == context and r.choices == tuple(choices)
        assert_close(list(zip(r.loglikelihoods, r.is_greedy)), flat[k : k + len(choices)])
        k += len(choices)
        assert r.norm_lengths == tuple(len(c) for c in choices)
        assert r.pred == max(range(len(choices)), key=lambda i: (r.loglikelihoods[i], -i))
        per_char = [ll / n for ll, n in zip(r.loglikelihoods, r.norm_lengths)]
        assert r.pred_norm == max(range(len(choices)), key=lambda i: (per_char[i], -i))
        assert r.tokens_in > 0 and r.latency_s >= 0


def test_ties_go_to_the_first_choice(tiny):
    model, tok = tiny
    (r,) = rank_choices(model, tok, [("Pick one:", ["same", "other", "same"])])
    assert r.loglikelihoods[0] == r.loglikelihoods[2]  # identical requests are scored once
    assert r.pred in (0, 1) and r.pred_norm in (0, 1)
    (r,) = rank_choices(model, tok, [("Pick one:", ["same", "same"])])
    assert r.pred == 0 and r.pred_norm == 0


def test_target_delimiter(tiny):
    model, tok = tiny
    (spaced,) = rank_choices(model, tok, [("Answer:", ["yes", "no"])])
    (bare,) = rank_choices(model, tok, [("Answer:", [" yes", " no"])], target_delimiter="")
    assert_close(list(zip(bare.loglikelihoods, bare.is_greedy)), list(zip(spaced.loglikelihoods, spaced.is_greedy)))


def test_partial_scoring_varies_the_context(tiny):
    model, tok = tiny
    context, options, rest = "The fox jumps over the ", ["dog", "fox"], "because it is quick."
    (r,) = rank_choices(model, tok, [(context, options, rest)])
    want = loglikelihood(model, tok, [(context + o, " " + rest) for o in options])
    assert_close(list(zip(r.loglikelihoods, r.is_greedy)), want)
    assert r.choices == tuple(options)
    assert r.norm_lengths == tuple(len(context + o) for o in options)


def test_progress_counts_items(tiny):
    model, tok = tiny
    calls: list[int] = []
    rank_choices(model, tok, ITEMS, batch_size=2, progress=calls.append)
    assert sum(calls) == len(ITEMS) and all(c > 0 for c in calls)


@pytest.mark.parametrize(
    "item, message",
    [
        (("ctx", []), "non-empty list"),
        (("ctx", "abc"), "non-empty list"),
        (("ctx", ["a", 3]), "must be a string"),
        ((3, ["a"]), "context must be a string"),
        (("ctx",), r"\(context, choices\)"),
        (("ctx", ["a"], 5), "continuation must be a string"),
    ],
)
def test_bad_items_are_clear_errors(tiny, item, message):
    model, tok = tiny
    with pytest.raises(LoglikelihoodError, match=message):
        rank_choices(model, tok, [("fine", ["ok"]), item])


# ----------------------------------------------------------------------------- chat


def test_chat_context_matches_the_template(tiny):
    _, tok = tiny
    got = chat_context(tok, "What is 2+2?", system="Be brief.")
    assert got == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    turns = chat_context(tok, "Q3", examples=[("Q1", "A1"), ("Q2", "A2")])
    assert turns == (
        "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
        "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\nA2<|im_end|>\n"
        "<|im_start|>user\nQ3<|im_end|>\n<|im_start|>assistant\n"
    )


def test_chat_context_drops_a_rejected_system_message(tiny):
    _, tok = tiny

    class NoSystem:
        chat_template = "x"

        def apply_chat_template(self, messages, **kwargs):
            import jinja2

            if any(m["role"] == "system" for m in messages):
                raise jinja2.exceptions.TemplateError("System role not supported")
            return "|".join(m["content"] for m in messages)

    assert chat_context(NoSystem(), "hi", system="sys") == "hi"


def test_chat_context_without_template_is_a_clear_error():
    class Plain:
        chat_template = None

    with pytest.raises(ChatTemplateError, match="no chat template"):
        chat_context(Plain(), "hi")


# ----------------------------------------------------------------------------- prefixes shared across items

CHAT_ITEMS = [
    ("What is the capital of France?", ["Paris", "London", "Rome"]),
    ("What is two plus two?", ["four", "five"]),
    ("The quick brown fox?", ["jumps", "sleeps", "x", "y"]),
    ("Please answer politely", ["Thank you", "!"]),
]


@pytest.mark.parametrize("batch_size", [1, 2, 64])
def test_a_prefix_shared_across_items_is_computed_once_and_changes_no_score(tiny, monkeypatch, batch_size):
    """Chat contexts share the template's header: its key/values are computed once at batch 1
    and reused by every row; totals stay within rounding of the plain algorithm (assert_close)."""
    from pytest_llmeval.models import prefill

    model, tok = tiny
    items = [(chat_context(tok, f"{q} ({i})"), choices) for i in range(3) for q, choices in CHAT_ITEMS]
    computed: list[int] = []
    real = prefill.prefix_kv

    def spy(model, prefix, store):
        before = store.computed_tokens
        out = real(model, prefix, store)
        computed.append(store.computed_tokens - before)
        return out

    monkeypatch.setattr(prefill, "prefix_kv", spy)
    ranked = rank_choices(model, tok, items, batch_size=batch_size, target_delimiter="")
    reqs = [(c, ch) for c, choices in items for ch in choices]
    got = [(ll, g) for r in ranked for ll, g in zip(r.loglikelihoods, r.is_greedy)]
    assert_close(got, naive(model, tok, reqs))
    contexts = [tok(c, add_special_tokens=False)["input_ids"] for c, _ in items]
    header = prefill.common_prefix(contexts)  # the template's opening, shared by every context
    assert header >= 3
    if batch_size == 1:
        assert computed == []  # a row alone has nobody to share with
    else:  # the header is computed by the first batch only; later batches reuse or extend it
        assert computed[0] >= header
        assert len(computed) == len(range(0, len(items), batch_size)) and sum(computed[1:]) < max(1, len(computed) - 1) * header


def test_a_pass_holds_at_most_batch_tokens(tiny, monkeypatch):
    """Long rows make smaller batches (fewer rows than the batch size), with the same results."""
    model, tok = tiny
    reqs = requests_of(ITEMS)
    want = loglikelihood(model, tok, reqs, batch_size=64)
    passes: list[tuple[int, int]] = []
    run = loglik._run_batch

    def recording(model, rows, *args, **kwargs):
        passes.append((len(rows), max(len(r) for r in rows)))
        return run(model, rows, *args, **kwargs)

    monkeypatch.setattr(loglik, "_run_batch", recording)
    monkeypatch.setattr(loglik, "BATCH_TOKENS", 40)
    assert_close(loglikelihood(model, tok, reqs, batch_size=64), want)
    assert len(passes) > 2 and any(n > 1 for n, _ in passes)
    assert all(n == 1 or n * width <= 40 for n, width in passes)


def test_log_probabilities_a_few_rows_at_a_time_equal_all_at_once(tiny, monkeypatch):
    """The log-softmax runs over chunks of logit rows (less memory); each row's values are the
    same as over all rows at once, so totals and greedy flags are exactly equal."""
    model, tok = tiny
    reqs = requests_of(ITEMS)
    want = loglikelihood(model, tok, reqs, batch_size=64)
    monkeypatch.setattr(packing, "LOG_SOFTMAX_ROWS", 3)
    assert loglikelihood(model, tok, reqs, batch_size=64) == want
