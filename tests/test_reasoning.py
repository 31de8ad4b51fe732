"""Reasoning models: delimiters from a template and tokenizer, the split of a completion into
reasoning and answer (local and served), stop strings that never fire inside thinking, and the
miss reason of thinking cut by the cap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.models.reasoning import (
    DEFAULT_DELIMITERS,
    Delimiters,
    cut_reason,
    prompt_opens_thinking,
    reasoning_delimiters,
    split_reasoning,
    split_served,
    stop_index,
    template_kwargs,
)
from tiny_reasoning import OPENING_TEMPLATE, build_reasoning_tokenizer

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return build_reasoning_tokenizer(tmp_path_factory.mktemp("reasoning-tok"))


def test_delimiters_and_the_thinking_switch_come_from_the_template_and_vocabulary(tokenizer) -> None:
    found = reasoning_delimiters(tokenizer)
    assert found is not None and (found.start, found.end, found.switch) == ("<think>", "</think>", True)
    assert found.start_id == tokenizer.convert_tokens_to_ids("<think>")
    assert found.end_id == tokenizer.convert_tokens_to_ids("</think>")
    assert tokenizer.encode("<think>", add_special_tokens=False) == [found.start_id]
    off = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True, **template_kwargs(found, False))
    on = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True, **template_kwargs(found, True))
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n") and on.endswith("<|im_start|>assistant\n")
    assert not prompt_opens_thinking(off, found) and not prompt_opens_thinking(on, found)
    assert template_kwargs(found, None) == {} and template_kwargs(None, True) == {}


def test_an_opening_template_starts_the_completion_inside_thinking(tmp_path) -> None:
    tok = build_reasoning_tokenizer(tmp_path, template=OPENING_TEMPLATE)
    found = reasoning_delimiters(tok)
    assert found is not None and not found.switch
    prompt = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert prompt_opens_thinking(prompt, found)
    split = split_reasoning("two and two make four\n</think>\n\nThe answer is 4.", found, started_inside=True)
    assert (split.reasoning, split.answer, split.thinking_ended) == ("two and two make four", "The answer is 4.", True)


def test_a_model_without_thinking_has_no_delimiters(tmp_path) -> None:
    from tiny import CHAT_TEMPLATE

    class Plain:
        chat_template = CHAT_TEMPLATE

        def get_vocab(self):
            return {"a": 0}

    assert reasoning_delimiters(Plain()) is None
    assert split_reasoning("<think>x</think>y", None).answer == "<think>x</think>y"


def test_split_finished_and_cut_thinking(tokenizer) -> None:
    found = reasoning_delimiters(tokenizer)
    text = "<think>\nadd them\n</think>\n\nThe answer is 4."
    ids = tokenizer.encode(text, add_special_tokens=False)
    split = split_reasoning(text, found, token_ids=ids)
    assert (split.reasoning, split.answer, split.thinking_ended) == ("add them", "The answer is 4.", True)
    assert split.reasoning_tokens == ids.index(found.end_id) - 1 and text[split.answer_start:] == split.answer
    cut = "<think>\nadd them, then check the sum against"
    cut_split = split_reasoning(cut, found, token_ids=tokenizer.encode(cut, add_special_tokens=False))
    assert cut_split.answer is None and not cut_split.thinking_ended
    assert cut_split.reasoning == "add them, then check the sum against"
    assert cut_reason(cut_split, tokens_out=24, finish_reason="length") == f"reasoning cut at {cut_split.reasoning_tokens} tokens (max_new_tokens)"
    assert cut_reason(split, tokens_out=24, finish_reason="length") is None
    plain = split_reasoning("The answer is 4.", found)
    assert (plain.reasoning, plain.answer, plain.thinking_ended) == (None, "The answer is 4.", True)
    # a start delimiter later in the text is answer text, not thinking
    assert split_reasoning("Use <think> tags.", found).answer == "Use <think> tags."


@given(st.text(alphabet="ab \n<>/", max_size=30), st.text(alphabet="ab \n<>/", max_size=30))
def test_reasoning_and_answer_come_back_apart(reasoning, answer) -> None:
    if "</think>" in reasoning or "<think>" in reasoning:
        return
    split = split_reasoning(f"<think>{reasoning}</think>{answer}")
    assert split.thinking_ended and split.reasoning == reasoning.strip() and split.answer == answer.lstrip()
    unfinished = split_reasoning(f"<think>{reasoning}")
    assert unfinished.answer is None and unfinished.reasoning == reasoning.strip()


def test_served_models_reasoning_fields_and_fallback() -> None:
    sent = split_served({"content": "4", "reasoning_content": "2+2"}, usage={"completion_tokens_details": {"reasoning_tokens": 7}})
    assert (sent.reasoning, sent.answer, sent.reasoning_tokens, sent.thinking_ended) == ("2+2", "4", 7, True)
    assert split_served({"content": "4", "reasoning": "2+2"}).reasoning == "2+2"
    cut = split_served({"content": None, "reasoning_content": "2+2 is"}, finish_reason="length")
    assert cut.answer is None and not cut.thinking_ended
    fallback = split_served({"content": "<think>2+2</think>\n4"})
    assert (fallback.reasoning, fallback.answer) == ("2+2", "4")
    assert split_served({"content": "<think>2+2"}, finish_reason="length").answer is None


def test_stop_strings_never_fire_inside_thinking() -> None:
    stops = ["\n\n", "Question:"]
    thinking = "<think>\nFirst.\n\nQuestion: is it 4?"
    assert stop_index(thinking, stops) is None  # unfinished thinking: no stop applies
    done = thinking + "\n</think>\n\nIt is 4.\n\nQuestion: next"
    at = stop_index(done, stops)
    assert done[:at] == thinking + "\n</think>\n\nIt is 4."
    assert stop_index("It is 4.\n\nmore", stops) == len("It is 4.")
    assert stop_index("reasoning\n\nmore</think>ok", stops, started_inside=True) is None
    assert stop_index("<think>a</think>", ["</think>", "a"]) is None  # the delimiter is not the answer
    assert stop_index("anything", stops, None) is None and stop_index("a\n\nb", stops, None) == 1


@given(st.text(alphabet="ab\n", max_size=20), st.text(alphabet="ab\n", max_size=20))
def test_a_stop_never_cuts_before_the_answer_starts(reasoning, answer) -> None:
    text = f"<think>{reasoning}</think>{answer}"
    at = stop_index(text, ["\n", "a"])
    assert at is None or at >= len(f"<think>{reasoning}</think>")


def test_custom_delimiters() -> None:
    d = Delimiters("<reason>", "</reason>")
    assert split_reasoning("<reason>x</reason> y", d).answer == "y"
    assert DEFAULT_DELIMITERS.start == "<think>"
