"""The openai: backend on its own: request shapes, concurrency, retries, faults, the budget and
lm-eval style ranking, against httpx's MockTransport (no network) and recorded vLLM answers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import random
from pathlib import Path
from typing import Any, Callable

import pytest

httpx = pytest.importorskip("httpx", reason="the openai: backend needs httpx (pip install 'pytest-llmevals[http]')")

from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

from pytest_llmeval.datasets.suite import Request  # noqa: E402
from pytest_llmeval.models import ModelLoadError, OutputError, load_backend  # noqa: E402
from pytest_llmeval.models import http_client  # noqa: E402
from pytest_llmeval.models.http import HTTPBackend, RankUnsupported, shown_url  # noqa: E402
from pytest_llmeval.models.http_client import BudgetSpent, Fatal, RequestFailed, backoff_seconds, retry_after_seconds  # noqa: E402
from pytest_llmeval.models.http_shapes import Scored, has_prompt_logprobs, parse_loglikelihood  # noqa: E402
from pytest_llmeval.settings import GenerationSettings, LLMSettings, SettingsError  # noqa: E402

DATA = Path(__file__).parent / "data"
KEY = "sk-test-Zq81XKEYdistinctive"
URL = "http://server.test/v1"


def chat_answer(text: str = "4", tokens: tuple[int, int] = (10, 2), **extra: Any) -> dict[str, Any]:
    return {
        "id": "c1", "object": "chat.completion", "model": "served-name", "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1], "total_tokens": sum(tokens)}, **extra,
    }  # fmt: skip


def backend(handler: Callable[[httpx.Request], Any], *, key: str | None = KEY, **changes: Any) -> HTTPBackend:
    settings = LLMSettings(model="openai:m", base_url=URL).replace(**{"max_retries": 3, **changes})
    env = {"OPENAI_API_KEY": key} if key else {}
    b = HTTPBackend.load("m", settings, environ=env, transport=httpx.MockTransport(handler))
    slept: list[float] = []

    async def no_wait(seconds: float) -> None:
        slept.append(seconds)

    b.engine.sleep = no_wait
    b.slept = slept  # type: ignore[attr-defined]
    return b


def gen(text: str = "2+2?", **kw: Any) -> Request:
    return Request("generate", text, **kw)


# ---------------------------------------------------------------- request shapes


def test_chat_and_completion_requests_pin_every_generation_setting():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        json.loads(request.content)  # the body is JSON
        if request.url.path.endswith("/chat/completions"):
            return httpx.Response(200, json=chat_answer())
        return httpx.Response(200, json={"model": "served-name", "choices": [{"index": 0, "text": " 4", "finish_reason": "length"}]})

    b = backend(handler, seed=77, generation=GenerationSettings(max_new_tokens=9, stop=("\n",)))
    out = b.run_generate([gen(chat=True, system="Be brief.", fewshot=(("1+1?", "2"),)), gen(max_new_tokens=3, stop=("X",))])
    chat, plain = (json.loads(r.content) for r in seen) if seen[0].url.path.endswith("/chat/completions") else reversed([json.loads(r.content) for r in seen])
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2"}, {"role": "user", "content": "2+2?"},
    ]  # fmt: skip
    assert {k: chat[k] for k in ("model", "max_tokens", "temperature", "top_p", "stop", "seed", "n")} == {
        "model": "m", "max_tokens": 9, "temperature": 0.0, "top_p": 1.0, "stop": ["\n"], "seed": 77, "n": 1,
    }  # fmt: skip
    assert plain["prompt"] == "2+2?" and plain["max_tokens"] == 3 and plain["stop"] == ["X"] and "messages" not in plain
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in seen)
    assert [str(c) for c in out] == ["4", " 4"]
    assert (out[0].tokens_in, out[0].tokens_out, out[0].finish_reason) == (10, 2, "stop")
    assert out[0].latency_s > 0


def test_sampling_settings_are_sent_and_a_request_seed_wins_over_the_session_seed():
    @dataclasses.dataclass(frozen=True)
    class SeededRequest(Request):
        seed: int | None = None

    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=chat_answer())

    b = backend(handler, seed=5, generation=GenerationSettings(do_sample=True, temperature=0.7, top_p=0.9))
    b.run_generate([SeededRequest("generate", "a", chat=True, seed=99), SeededRequest("generate", "b", chat=True)])
    by_text = {body["messages"][-1]["content"]: body for body in bodies}
    assert (by_text["a"]["seed"], by_text["b"]["seed"]) == (99, 5)
    assert by_text["a"]["temperature"] == 0.7 and by_text["a"]["top_p"] == 0.9


def test_fingerprint_needs_no_request_and_learns_the_served_model():
    b = backend(lambda r: httpx.Response(200, json=chat_answer()))
    assert b.static_fingerprint == {"model": "openai:m", "server": URL}
    assert dict(b.fingerprint) == b.static_fingerprint  # nothing sent yet
    b.run_generate([gen(chat=True)])
    assert b.fingerprint["versions"] == {"served_model": "served-name", "system_fingerprint": "fp_1"}
    assert KEY not in json.dumps(dict(b.fingerprint)) + b.describe()


def test_shown_url_drops_credentials_and_query():
    assert shown_url("https://user:secret@host.example:8443/v1/?key=abc#x") == "https://host.example:8443/v1"
    assert shown_url("http://user:secret@host:notaport/v1?key=abc") == "http://host:notaport/v1"


def test_load_errors_are_one_actionable_line():
    with pytest.raises(ModelLoadError, match=r"OpenAI API needs a key: set \$MY_KEY"):
        HTTPBackend.load("gpt-x", LLMSettings(api_key_env="MY_KEY"), environ={})
    with pytest.raises(ModelLoadError, match=r"^\$OPENAI_BASE_URL: expected an http:// or https:// URL"):
        HTTPBackend.load("m", LLMSettings(), environ={"OPENAI_BASE_URL": "ftp://x"})  # base_url= itself is checked by LLMSettings
    with pytest.raises(ModelLoadError, match="llmeval_max_cost needs the prices"):
        HTTPBackend.load("m", LLMSettings(base_url=URL, max_cost=1.0), environ={})
    b = load_backend(LLMSettings(model="openai:served", base_url=URL))  # a built-in scheme
    assert isinstance(b, HTTPBackend) and b.model == "served"


def test_base_url_defaults_to_the_environment_then_openai(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.test:9/v1/")
    assert HTTPBackend.load("m", LLMSettings(), environ={"OPENAI_BASE_URL": "http://env.test:9/v1/"}).base_url == "http://env.test:9/v1"
    assert HTTPBackend.load("m", LLMSettings(), environ={"OPENAI_API_KEY": "k"}).base_url == "https://api.openai.com/v1"


@pytest.mark.parametrize(
    "value,problem",
    [
        ("ftp://x", "expected an http:// or https:// URL with a host"),
        ("http://host:0/v1", "port 0 is not a server's port"),
        ("http://host:99999/v1", "not a valid URL"),
        ("http://host/v1 extra", "the URL holds a space or a control character"),
        ("http://user:s3cret@host/v1\n", "the URL holds a space or a control character"),
    ],
)
def test_openai_base_url_is_checked_like_the_option(value: str, problem: str) -> None:
    """$OPENAI_BASE_URL passes the check of --llmeval-base-url: a bad value is one line naming the
    variable, the problem and the fix (never the URL, which may hold a password), before any request."""
    with pytest.raises(SettingsError) as option:
        LLMSettings(base_url=value)
    assert problem in str(option.value)
    for load in (HTTPBackend.load, HTTPBackend.identity):
        with pytest.raises(ModelLoadError) as env:
            load("m", LLMSettings(), environ={"OPENAI_BASE_URL": value})
        message = str(env.value)
        assert message.startswith(f"$OPENAI_BASE_URL: {problem}") and message.endswith("(or unset the variable, or set llmeval_base_url)")
        assert "\n" not in message and "s3cret" not in message and "extra" not in message


# ---------------------------------------------------------------- concurrency


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_a_window_is_issued_at_once_with_at_most_the_concurrency_in_flight(limit):
    state = {"now": 0, "max": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        for _ in range(20):  # let every other ready request start before answering
            await asyncio.sleep(0)
        state["now"] -= 1
        return httpx.Response(200, json=chat_answer(json.loads(request.content)["messages"][-1]["content"]))

    b = backend(handler, concurrency=limit)
    progress: list[int] = []
    out = b.run_generate([gen(str(i), chat=True) for i in range(20)], progress=progress.append)
    assert [str(c) for c in out] == [str(i) for i in range(20)]  # in order
    assert state["max"] == limit
    assert sum(progress) == 20 and b.in_flight == limit


# ---------------------------------------------------------------- faults


def scripted(*answers: Any) -> tuple[Callable[[httpx.Request], httpx.Response], list[int]]:
    """A handler that gives ``answers`` in turn (an exception class is raised), then 200s."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        answer = answers[len(calls) - 1] if len(calls) <= len(answers) else 200
        if isinstance(answer, type) and issubclass(answer, Exception):
            raise answer("injected", request=request)
        if isinstance(answer, tuple):
            return httpx.Response(answer[0], headers=answer[1], json={"error": "x"})
        return httpx.Response(answer, json=chat_answer() if answer == 200 else {"error": "x"})

    return handler, calls


def test_retries_on_429_5xx_timeouts_and_dropped_connections_then_succeed():
    handler, calls = scripted((429, {"Retry-After": "7"}), 500, 503, httpx.ReadTimeout, httpx.RemoteProtocolError, 200)
    b = backend(handler, max_retries=5)
    (out,) = b.run_generate([gen(chat=True)])
    assert str(out) == "4" and len(calls) == 6
    usage = b.usage()
    assert usage["retries"] == 5 and usage["failed"] == 0 and usage["requests"] == 6
    assert usage["faults"] == {"HTTP 429": 1, "HTTP 500": 1, "HTTP 503": 1, "connection: RemoteProtocolError": 1, "timeout": 1}
    assert b.slept[0] >= 7  # Retry-After honoured
    assert all(0 < s <= http_client.BACKOFF_CAP for s in b.slept[1:])


def test_bounded_tries_make_the_case_an_error_and_the_others_complete():
    def handler(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["messages"][-1]["content"]
        return httpx.Response(500, json={}) if text == "bad" else httpx.Response(200, json=chat_answer(text))

    b = backend(handler, max_retries=2)
    out = b.run_generate([gen("a", chat=True), gen("bad", chat=True), gen("c", chat=True)])
    assert [str(out[0]), str(out[2])] == ["a", "c"]
    assert isinstance(out[1], RequestFailed)
    assert str(out[1]) == "POST http://server.test/v1/chat/completions failed: HTTP 500 after 3 tries (llmeval_max_retries = 2)"
    assert b.usage()["failed"] == 1 and b.usage()["retries"] == 2 and b.usage()["faults"] == {"HTTP 500": 3}


def test_a_client_error_is_not_retried_and_its_message_never_shows_the_key():
    handler, calls = scripted()
    b = backend(lambda r: (calls.append(1), httpx.Response(400, text=f"bad request for key {KEY}"))[1])
    (out,) = b.run_generate([gen(chat=True)])
    assert isinstance(out, RequestFailed) and len(calls) == 1
    assert KEY not in str(out) and str(out).endswith("for key ***") and "\n" not in str(out)


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_or_not_found_stops_the_session_after_the_first_request(status):
    handler, calls = scripted(*[status] * 50)
    b = backend(handler, concurrency=1)
    out = b.run_generate([gen(str(i), chat=True) for i in range(10)])
    assert len(calls) == 1
    assert all(isinstance(o, Fatal) for o in out) and len({str(o) for o in out}) == 1
    assert f"HTTP {status}" in str(out[0]) and "no more requests are sent" in str(out[0])
    later = b.run_generate([gen("again", chat=True)])  # a later window sends nothing either
    assert isinstance(later[0], Fatal) and len(calls) == 1
    assert b.usage()["fatal"] == str(out[0])


def test_the_budget_stops_sending_and_says_why():
    # each answer costs (10 * 1 + 2 * 4) / 1e6 = 18e-6 USD; a budget of 50e-6 lets 3 through (54e-6 >= 50e-6)
    handler, calls = scripted()
    b = backend(handler, concurrency=1, price_in=1.0, price_out=4.0, max_cost=50e-6)
    out = b.run_generate([gen(str(i), chat=True) for i in range(6)])
    assert len(calls) == 3 and [isinstance(o, BudgetSpent) for o in out] == [False] * 3 + [True] * 3
    assert "llmeval_max_cost = $5e-05 was spent ($0.0001)" in str(out[3])
    usage = b.usage()
    assert usage["cost_usd"] == pytest.approx(54e-6) and usage["not_sent"] == 3


def test_retry_after_reads_seconds_and_dates():
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds("0.5") == 0.5 and retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 10) == pytest.approx(10.0)
    assert retry_after_seconds("soon") is None


@given(attempt=st.integers(1, 30), retry_after=st.none() | st.floats(0, 1000), seed=st.integers(0, 2**32))
def test_backoff_grows_exponentially_within_its_cap_and_honours_retry_after(attempt, retry_after, seed):
    wait = backoff_seconds(attempt, retry_after, random.Random(seed))
    ceiling = min(http_client.BACKOFF_CAP, http_client.BACKOFF_BASE * 2 ** (attempt - 1))
    if retry_after is None:
        assert ceiling / 2 <= wait <= ceiling
    else:
        assert wait == max(wait, min(retry_after, http_client.RETRY_AFTER_CAP)) and wait <= max(ceiling, http_client.RETRY_AFTER_CAP)
        assert wait >= min(retry_after, http_client.RETRY_AFTER_CAP)


# ---------------------------------------------------------------- ranking (lm-eval local-completions)


def recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def test_a_recorded_vllm_answer_is_scored_as_lm_eval_scores_it():
    """The answer vLLM documents for echo=True, logprobs=1, max_tokens=1: the prompt's tokens with
    their logprobs (the first None), then the generated token. Scored: the continuation " Paris"
    (one token, offset 24 >= len("The capital of France is") = 24); the generated "." is dropped."""
    answer = recorded("vllm_echo_logprobs.json")
    prompt = "The capital of France is Paris"
    total, greedy, tokens_in = parse_loglikelihood(answer, Scored(prompt, boundary=len("The capital of France is")))
    assert total == pytest.approx(-0.7134) and greedy is True and tokens_in == 6
    total2, greedy2, _ = parse_loglikelihood(answer, Scored(prompt, boundary=len("The capital of France")))
    assert total2 == pytest.approx(-0.7134 - 1.2093) and greedy2 is False  # " is" was not the top token
    assert has_prompt_logprobs(answer, prompt)


@hsettings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.text("abcxyz", min_size=1, max_size=5), min_size=2, max_size=8),
    split=st.integers(1, 7),
    values=st.lists(st.floats(-20, 0), min_size=9, max_size=9),
)
def test_the_continuation_is_the_tokens_after_the_context(words, split, values):
    split = min(split, len(words) - 1)
    tokens = [words[0]] + [" " + w for w in words[1:]]
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    prompt = "".join(tokens)
    answer = {"choices": [{"index": 0, "logprobs": {
        "tokens": tokens + ["!"], "text_offset": offsets + [len(prompt)],
        "token_logprobs": [None] + values[1 : len(tokens)] + [values[-1]],
        "top_logprobs": [None] + [{t: v} for t, v in zip(tokens[1:], values[1:])] + [{"!": values[-1]}],
    }}]}  # fmt: skip
    total, greedy, _ = parse_loglikelihood(answer, Scored(prompt, boundary=offsets[split]))
    assert total == pytest.approx(math.fsum(values[split : len(tokens)]))
    assert greedy is True


def rank_server(logprobs: bool) -> tuple[Callable[[httpx.Request], httpx.Response], list[dict]]:
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        if not logprobs:
            return httpx.Response(200, json={"choices": [{"index": 0, "text": "x", "logprobs": None}]})
        import http_servers

        lp = http_servers.echo_logprobs(body["prompt"])
        return httpx.Response(200, json={"model": "served", "choices": [{"index": 0, "text": body["prompt"], "logprobs": lp}],
                                         "usage": {"prompt_tokens": len(lp["tokens"]) - 1, "completion_tokens": 1}})  # fmt: skip

    return handler, bodies


def test_ranking_sends_lm_eval_local_completions_requests_and_picks_the_likeliest():
    handler, bodies = rank_server(logprobs=True)
    b = backend(handler)
    req = Request("rank", "Pick one:", choices=("yes", "absolutely"))
    (ranked,) = b.run_rank([req])
    probe, *sent = bodies
    assert {k: probe[k] for k in ("echo", "logprobs", "max_tokens", "temperature")} == {"echo": True, "logprobs": 1, "max_tokens": 1, "temperature": 0.0}
    assert sorted(s["prompt"] for s in sent) == ["Pick one: absolutely", "Pick one: yes"]
    assert ranked.loglikelihoods == pytest.approx((-0.4, -1.1))  # " yes" and " absolutely": -len/10
    assert ranked.pred == 0 and ranked.norm_lengths == (3, 10) and ranked.is_greedy == (True, True)
    b.run_rank([req])
    assert sum(1 for s in bodies if s["prompt"] == "The capital of France is Paris.") == 1  # probed once


def test_a_server_without_prompt_logprobs_errors_ranking_once_before_any_case_is_sent():
    handler, bodies = rank_server(logprobs=False)
    b = backend(handler)
    with pytest.raises(RankUnsupported, match="returned no prompt logprobs") as info:
        b.run_rank([Request("rank", "Q", choices=("a", "b"))] * 5)
    with pytest.raises(RankUnsupported) as again:
        b.run_rank([Request("rank", "Q", choices=("a", "b"))])
    assert again.value is info.value and len(bodies) == 1  # only the probe was sent
    assert isinstance(info.value, OutputError)


def test_a_chat_ranked_case_errors_with_one_line():
    handler, _ = rank_server(logprobs=True)
    (out,) = backend(handler).run_rank([Request("rank", "Q", chat=True, choices=("a", "b"))])
    assert isinstance(out, OutputError) and "chat=True" in str(out)
