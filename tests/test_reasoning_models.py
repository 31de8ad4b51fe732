"""A reasoning model on the transformers backend: a real LlamaForCausalLM over a tokenizer with
<think>/</think> whose continuations are scripted (tests/tiny_reasoning.py), so each case below
knows when the thinking ends. Both decode paths (the plugin's loop and transformers' generate),
at batch 1 and N, give the same completions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.hf import HFBackend
from pytest_llmeval.models.reasoning import stop_index
from pytest_llmeval.settings import GenerationSettings, LLMSettings
from tiny_reasoning import OPENING_TEMPLATE, build_scripted_model

MAX_NEW = 12
FINISHES = Request("generate", "What is two plus")  # "<think>Question:</think>\n answer is four"
NEVER_ENDS = Request("generate", "the <think> lazy")  # the prompt opened the block: " dog lazy dog ..."
PLAIN = Request("generate", "capital of France")  # " Paris", no thinking
STOPS = ("Question", " is", " dog")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_scripted_model(tmp_path_factory.mktemp("scripted"))


@pytest.fixture(scope="module")
def backend(model_dir: Path) -> HFBackend:
    return HFBackend.load(LLMSettings(model=str(model_dir), batch_size=4, generation=GenerationSettings(max_new_tokens=MAX_NEW)))


def _outputs(backend: HFBackend, requests: list[Request], *, fast: bool, one_by_one: bool) -> list[dict]:
    backend.fast_decode = fast
    try:
        done = [c for r in requests for c in backend.run_generate([r])] if one_by_one else backend.run_generate(requests)
    finally:
        backend.fast_decode = True
    return [{"text": c.text, **{k: v for k, v in vars(c).items() if k != "latency_s"}} for c in done]


def test_the_answer_follows_the_thinking_and_cut_thinking_has_none(backend: HFBackend) -> None:
    assert backend.delimiters is not None and backend.delimiters.switch
    done, cut, plain = backend.run_generate([FINISHES, NEVER_ENDS, PLAIN])
    assert (done.text, done.reasoning, done.reasoning_tokens, done.thinking_ended) == ("answer is four", "Question:", 2, True)
    assert done.finish_reason == "stop" and done.missing_answer is None and done.tokens_out == 8
    assert (cut.text, cut.thinking_ended, cut.finish_reason, cut.tokens_out) == ("", False, "length", MAX_NEW)
    assert cut.reasoning == "dog lazy dog lazy dog lazy dog lazy dog lazy dog lazy" and cut.reasoning_tokens == MAX_NEW
    assert cut.missing_answer == f"reasoning cut at {MAX_NEW} tokens (max_new_tokens)"
    assert (plain.text, plain.reasoning, plain.thinking_ended) == (" Paris", None, True)


def test_stop_strings_apply_to_the_answer_only(backend: HFBackend) -> None:
    stopped = [replace(r, stop=STOPS) for r in (FINISHES, NEVER_ENDS, PLAIN)]
    done, cut, plain = backend.run_generate(stopped)
    # "Question" is in the thinking and " dog" in the unfinished thinking: neither fires; " is" ends the answer
    assert (done.text, done.reasoning, done.finish_reason, done.tokens_out) == ("answer", "Question:", "stop", 7)
    assert (cut.text, cut.thinking_ended, cut.finish_reason, cut.tokens_out) == ("", False, "length", MAX_NEW)
    assert plain.text == " Paris"
    # the same text without the reasoning split would have been cut inside the thinking
    assert stop_index("<think>Question:</think>\n answer is four", list(STOPS), None) == len("<think>")


def test_the_reasoning_budget_forces_the_end_of_thinking(backend: HFBackend) -> None:
    one = [replace(r, max_reasoning_tokens=1) for r in (FINISHES, NEVER_ENDS)]
    done, ended = backend.run_generate(one)
    assert (done.text, done.reasoning, done.reasoning_tokens) == ("answer is four", "Question", 1)
    assert (ended.text, ended.reasoning, ended.reasoning_tokens, ended.thinking_ended) == ("answer is four", "dog", 1, True)
    (none,) = backend.run_generate([replace(FINISHES, max_reasoning_tokens=0)])
    assert (none.text, none.reasoning, none.reasoning_tokens) == ("answer is four", "", 0)


@pytest.mark.parametrize("fast", [True, False], ids=["decode-loop", "transformers-generate"])
def test_batch_one_and_batch_n_give_the_same_completions(backend: HFBackend, fast: bool) -> None:
    requests = [FINISHES, NEVER_ENDS, PLAIN, *(replace(r, stop=STOPS) for r in (FINISHES, NEVER_ENDS, PLAIN)),
                *(replace(r, max_reasoning_tokens=1) for r in (FINISHES, NEVER_ENDS))]  # fmt: skip
    together = _outputs(backend, requests, fast=fast, one_by_one=False)
    alone = _outputs(backend, requests, fast=fast, one_by_one=True)
    assert together == alone
    assert together == _outputs(backend, requests, fast=not fast, one_by_one=False)  # both decode paths agree
    assert [o["text"] for o in together[:3]] == ["answer is four", "", " Paris"]


def test_the_thinking_switch_reaches_the_chat_template(backend: HFBackend) -> None:
    ask = Request("generate", "What is two plus two?", chat=True)
    off, on, default = backend.run_generate([replace(ask, thinking=False), replace(ask, thinking=True), ask])
    assert off.prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert on.prompt.endswith("<|im_start|>assistant\n") and default.prompt == on.prompt
    assert off.text == " answer is four" and off.reasoning is None  # the prompt closed the block: all answer


def test_a_template_that_opens_thinking_starts_the_completion_inside_it(tmp_path: Path) -> None:
    path = build_scripted_model(tmp_path, template=OPENING_TEMPLATE)
    backend = HFBackend.load(LLMSettings(model=str(path), generation=GenerationSettings(max_new_tokens=MAX_NEW)))
    (c,) = backend.run_generate([Request("generate", "What is two plus two?", chat=True)])
    assert c.prompt.endswith("<think>\n") and not c.thinking_ended and c.finish_reason == "stop"
    assert c.text == "" and c.reasoning == "answer is four"
    assert c.missing_answer == "no answer: the model stopped inside its reasoning after 3 tokens (finish reason stop)"


def test_a_model_without_thinking_is_untouched(tmp_path: Path) -> None:
    from tiny import build_tiny_model

    backend = HFBackend.load(LLMSettings(model=str(build_tiny_model(tmp_path)), generation=GenerationSettings(max_new_tokens=6)))
    assert backend.delimiters is None
    ask = Request("generate", "What is two plus two?", chat=True, stop=("\n",))
    switched, plain = backend.run_generate([replace(ask, thinking=True, max_reasoning_tokens=0), ask])
    assert (plain.reasoning, plain.reasoning_tokens, plain.thinking_ended) == (None, None, True)
    assert vars(switched) | {"latency_s": 0} == vars(plain) | {"latency_s": 0} and switched.text == plain.text


class _Vocab:
    """A tokenizer for llama.cpp's generation step: ids 0.. are the words below, 0 ends the turn."""

    words = ["<eos>", "<think>", "</think>", "Question", ":", "\n", " answer", " is", " four", " dog"]

    def is_eog(self, token: int) -> bool:
        return token == 0

    def decode(self, tokens, skip_special_tokens: bool = False) -> str:
        return "".join(self.words[t] for t in tokens)


def _llamacpp_run(script: list[int], *, opened: bool = False, stop: tuple[str, ...] = (), budget: int | None = None, max_new: int = 12):
    """llama.cpp's per-sequence generation step fed one-hot logits of ``script``, as the engine would."""
    import numpy as np

    from pytest_llmeval.models.llamacpp_text import Generation
    from pytest_llmeval.models.reasoning import Delimiters
    from pytest_llmeval.models.thinking import rows_for

    vocab = _Vocab()
    settings = GenerationSettings(max_new_tokens=max_new, stop=stop, max_reasoning_tokens=budget)
    prompt = "q <think>" if opened else "q"
    rows = rows_for(Delimiters("<think>", "</think>", 1, 2, switch=True), [prompt], settings, vocab.decode)
    gen = Generation(vocab, settings, np.random.default_rng(0), thinking=rows)  # type: ignore[arg-type]
    for token in script:
        logits = np.zeros(len(vocab.words), dtype=np.float32)
        logits[token] = 1.0
        if gen.step(logits) is None:
            break
    return gen.finished(), gen.tokens


def test_llamacpp_generation_splits_stops_on_the_answer_and_spends_the_budget() -> None:
    finishes = [1, 3, 4, 2, 5, 6, 7, 8, 0]  # <think>Question:</think>\n answer is four
    (text, reason, fields), tokens = _llamacpp_run(finishes, stop=("Question", " is"))
    assert (text, reason, fields["reasoning"], fields["thinking_ended"]) == ("answer", "stop", "Question:", True)
    (text, reason, fields), _ = _llamacpp_run([9] * 20, opened=True, stop=(" dog",))  # thinking that never ends
    assert (text, reason, fields["thinking_ended"], fields["reasoning_tokens"]) == ("", "length", False, 12)
    (text, reason, fields), tokens = _llamacpp_run([9, 9, 9, 6, 7, 8, 0], opened=True, budget=2)  # the 3rd dog becomes </think>
    assert tokens[:3] == [9, 9, 2] and (text, fields["reasoning"], fields["reasoning_tokens"]) == ("answer is four", "dog dog", 2)
