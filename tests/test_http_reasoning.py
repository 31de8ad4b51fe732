"""A served reasoning model (the fake vLLM of tests/http_servers.py with a reasoning parser): the
answer apart from the thinking (a reasoning field, or delimiters in the text), stop strings kept
out of the thinking, the thinking switch and budget sent as the server's parameters, and thinking
cut by the cap a miss."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("httpx", reason="the openai: backend needs httpx (pip install 'pytest-llmevals[http]')")

from http_servers import FakeVLLM, fake_answer, fake_thinking, word_tokens  # noqa: E402

from pytest_llmeval.datasets.suite import Request  # noqa: E402
from pytest_llmeval.models.http import HTTPBackend  # noqa: E402
from pytest_llmeval.settings import GenerationSettings, LLMSettings  # noqa: E402

pytest_plugins = ["pytester"]
ASK = Request("generate", "Give the number 4.", chat=True, max_new_tokens=32, stop=("Question:",))
ANSWER = fake_answer(ASK.text)  # "The answer is 4."


def backend(url: str) -> HTTPBackend:
    return HTTPBackend.load("fake-model", LLMSettings(base_url=url, generation=GenerationSettings(max_new_tokens=32)), environ={})


def ask(fake: FakeVLLM, *requests: Request) -> list[Any]:
    with fake.run() as url:
        return backend(url).run_generate(list(requests))


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "inline"])
def test_the_answer_comes_apart_from_the_thinking(field: str) -> None:
    fake = FakeVLLM(reasoning=field)
    (done,) = ask(fake, Request("generate", ASK.text, chat=True, max_new_tokens=32, thinking=True))
    assert done.text == ANSWER and done.reasoning == fake_thinking(ASK.text).strip() and done.thinking_ended
    assert done.reasoning_tokens == len(word_tokens(fake_thinking(ASK.text)))  # usage.completion_tokens_details.reasoning_tokens
    body = fake.requests[0]["body"]
    assert body["chat_template_kwargs"] == {"enable_thinking": True} and "thinking_token_budget" not in body


def test_a_reasoning_suite_sends_no_stop_and_applies_it_to_the_answer() -> None:
    fake = FakeVLLM(reasoning="reasoning_content")
    reasoning_suite = Request("generate", ASK.text, chat=True, max_new_tokens=32, stop=("Question:", " is"), thinking=True)
    (done,) = ask(fake, reasoning_suite)
    assert "stop" not in fake.requests[0]["body"]
    assert (done.text, done.finish_reason) == ("The answer", "stop") and done.reasoning.startswith("Question: is the number even?")
    # sent to the server, the same stop fires inside the thinking and leaves no answer (vLLM does this)
    (sent,) = ask(fake, ASK)
    assert fake.requests[-1]["body"]["stop"] == ["Question:"] and "chat_template_kwargs" not in fake.requests[-1]["body"]
    assert sent.text == "" and sent.finish_reason == "stop"


def test_thinking_cut_by_the_cap_has_no_answer() -> None:
    for field in ("reasoning_content", "inline"):
        (cut,) = ask(FakeVLLM(reasoning=field), Request("generate", "think long: give the number 4.", chat=True, max_new_tokens=16, thinking=True))
        assert (cut.text, cut.thinking_ended, cut.finish_reason) == ("", False, "length")
        assert cut.missing_answer == "reasoning cut at 16 tokens (max_new_tokens)"


def test_the_switch_and_the_budget_are_the_servers_parameters() -> None:
    fake = FakeVLLM(reasoning="reasoning_content")
    off, budget = ask(fake, Request("generate", ASK.text, chat=True, thinking=False),
                      Request("generate", "think long: give the number 4.", chat=True, max_new_tokens=16, max_reasoning_tokens=3))  # fmt: skip
    bodies = sorted((r["body"] for r in fake.requests), key=lambda b: "thinking_token_budget" in b)
    assert bodies[0]["chat_template_kwargs"] == {"enable_thinking": False} and (off.text, off.reasoning) == (ANSWER, None)
    assert bodies[1]["thinking_token_budget"] == 3 and "chat_template_kwargs" not in bodies[1]
    assert (budget.text, budget.reasoning, budget.reasoning_tokens) == (ANSWER, "Question: is the", 3)


def test_a_plain_served_model_is_untouched() -> None:
    fake = FakeVLLM()
    (plain,) = ask(fake, ASK)
    assert fake.requests[0]["body"]["stop"] == ["Question:"] and "chat_template_kwargs" not in fake.requests[0]["body"]
    assert (plain.text, plain.reasoning, plain.reasoning_tokens, plain.thinking_ended) == (ANSWER, None, None, True)


SUITE = '''
import pytest_llmeval as le

@le.cases("numbers.jsonl", prompt="{question}", chat=True, thinking=True, max_new_tokens=16, stop=["Question:"])
def test_numbers(case, completion):
    le.assert_number(completion, case["answer"])
'''


def test_a_served_reasoning_suite_through_the_plugin(pytester: pytest.Pytester) -> None:
    numbers = [{"id": f"n{i}", "question": f"{'think long: ' if i == 3 else ''}Give the number {i}.", "answer": i} for i in range(4)]
    pytester.makefile(".jsonl", numbers="\n".join(json.dumps(c) for c in numbers))
    pytester.makepyfile(test_suites=SUITE)
    pytester.makeini("[pytest]\nllmeval_history = off\nllmeval_api_key_env = LLMEVAL_TEST_KEY\n")
    fake = FakeVLLM(reasoning="reasoning_content")
    with fake.run() as url:
        result = pytester.runpytest("-p", "no:cacheprovider", "--llmeval-model=openai:fake-model", f"--llmeval-base-url={url}",
                                    "--llmeval-output=out")  # fmt: skip
    samples = {s["id"]: s for s in map(json.loads, (pytester.path / "out" / "samples.jsonl").read_text().splitlines())}
    # the fake model answers odd numbers wrong (n + 1): n1 misses on its answer, n3 because its thinking was cut
    assert {k: s["outcome"] for k, s in samples.items()} == {"n0": "pass", "n1": "fail", "n2": "pass", "n3": "fail"}
    assert samples["n3"]["reason"] == "reasoning cut at 16 tokens (max_new_tokens)" and samples["n3"]["completion"] == ""
    assert samples["n0"]["completion"] == "The answer is 0." and samples["n0"]["reasoning"].startswith("Question:")
    assert all("stop" not in r["body"] for r in fake.requests)
    result.stdout.fnmatch_lines(["*test_numbers: flagged: 1 of 4 answers (25%) ended at max_new_tokens=16, 1 of them still thinking*"])
