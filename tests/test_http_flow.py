"""A slow server makes the run slower, never wrong: the requests in flight adapt to what the server
sustains (:mod:`pytest_llmeval.models.http_flow`), and a request's timeout counts the requests of
ours ahead of it. The assertions count outcomes and bound the settled number; none depends on how
fast this machine is (a loaded machine only makes answers slower, which lowers the number)."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from hypothesis import given, strategies as st

from pytest_llmeval.models.http_flow import START, Flow, Ticket

pytest_plugins = ["pytester"]


def ticket(admitted: float = 0.0, in_flight: int = 1, latency: float | None = 0.1, congestion: str | None = None) -> Ticket:
    return Ticket(admitted, in_flight, latency, congestion)


def test_it_starts_low_and_doubles_on_quick_answers_up_to_the_maximum() -> None:
    flow = Flow(16, timeout=10.0)
    assert flow.allowed == START
    for _ in range(START):
        flow.learn(ticket(latency=1.0))  # under half the timeout
    assert flow.allowed == 2 * START
    for _ in range(100):
        flow.learn(ticket(latency=1.0))
    assert flow.allowed == 16
    assert Flow(2, timeout=10.0).allowed == 2


def test_a_timeout_429_503_or_slow_answer_halves_it_once_per_round() -> None:
    for cause, latency in (("timeout", None), ("HTTP 429", 0.1), ("HTTP 503", 0.1), (None, 10.5)):
        flow = Flow(16, timeout=10.0, limit=16)
        flow.learn(ticket(admitted=flow.last_cut + 1, latency=latency, congestion=cause))
        assert flow.allowed == 8 and flow.cuts == {cause or "slow answer": 1}
        flow.learn(ticket(admitted=flow.last_cut - 1e-3, latency=latency, congestion=cause))  # sent before the cut: into that queue
        assert flow.allowed == 8


def test_after_a_cut_it_grows_by_one_per_round_and_holds_on_answers_near_the_timeout() -> None:
    flow = Flow(16, timeout=10.0, limit=16)
    flow.learn(ticket(admitted=1.0, congestion="timeout"))
    for _ in range(8):
        flow.learn(ticket(latency=1.0))
    assert flow.allowed == 8  # 8 answers: 8 * 1/8 < 1 more
    for _ in range(40):
        flow.learn(ticket(latency=7.0))  # between half the timeout and the timeout: hold
    assert flow.allowed == 8


@given(st.lists(st.tuples(st.sampled_from([None, "timeout", "HTTP 429"]), st.floats(0, 30)), max_size=200), st.integers(1, 64))
def test_it_stays_between_one_and_the_maximum(signals: list[tuple[str | None, float]], maximum: int) -> None:
    flow = Flow(maximum, timeout=10.0)
    for i, (cause, latency) in enumerate(signals):
        flow.learn(ticket(admitted=float(i), latency=latency, congestion=cause))
        assert 1 <= flow.allowed <= maximum
        assert flow.deadline(ticket(in_flight=maximum + 5)) == 10.0 * maximum


httpx = pytest.importorskip("httpx", reason="the openai: backend needs httpx (pip install 'pytest-llmevals[http]')")

from http_servers import FakeVLLM  # noqa: E402

from pytest_llmeval.datasets.suite import Request  # noqa: E402
from pytest_llmeval.models.http import HTTPBackend  # noqa: E402
from pytest_llmeval.settings import LLMSettings  # noqa: E402


def serial_server(service_s: float) -> tuple[Any, dict[str, int]]:
    """An in-process server that answers one request at a time, each in ``service_s``."""
    lock = asyncio.Lock()
    seen = {"answered": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        async with lock:
            await asyncio.sleep(service_s)
            seen["answered"] += 1
        text = json.loads(request.content)["messages"][-1]["content"]
        return httpx.Response(200, json={"choices": [{"message": {"content": text}, "finish_reason": "stop"}]})

    return handler, seen


def test_a_server_that_answers_one_at_a_time_gets_every_request_answered_once() -> None:
    """At a fixed 16 in flight and a 0.5 s timeout, a server taking 0.1 s a request would see
    requests time out in its queue (the 6th waits 0.6 s) and come back: here none does."""
    handler, seen = serial_server(0.1)
    settings = LLMSettings(model="openai:m", base_url="http://serial.test/v1").replace(request_timeout=0.5, concurrency=16, max_retries=0)
    backend = HTTPBackend.load("m", settings, environ={}, transport=httpx.MockTransport(handler))
    out = backend.run_generate([Request("generate", str(i), chat=True) for i in range(30)])
    assert [str(o) for o in out] == [str(i) for i in range(30)]  # none failed, though no retry was allowed
    usage = backend.usage()
    assert seen["answered"] == usage["requests"] == 30 and usage["failed"] == 0
    assert usage["in_flight"]["settled"] <= math.ceil(0.5 / 0.1) + 1


def test_a_silent_server_ends_and_stops_being_asked() -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    settings = LLMSettings(model="openai:m", base_url="http://silent.test/v1").replace(request_timeout=0.2, concurrency=4, max_retries=1)
    backend = HTTPBackend.load("m", settings, environ={}, transport=httpx.MockTransport(silent))

    async def no_wait(seconds: float) -> None:
        pass

    backend.engine.sleep = no_wait
    out = backend.run_generate([Request("generate", str(i), chat=True) for i in range(12)])
    assert all(isinstance(o, Exception) for o in out)
    usage = backend.usage()
    assert "answered nothing meanwhile" in usage["fatal"] and usage["not_sent"] > 0 and usage["requests"] < 12 * 2


def test_the_plugin_says_where_the_requests_in_flight_settled(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the plugin against a vLLM-shaped server that computes one request at a time (0.3 s
    each, and goes on with requests its client gave up on): every case is answered and none errors,
    at the default concurrency of 16 and a 3 s timeout. At 1.5 s five requests in flight already sat
    at the timeout's edge (5 x 0.3 s), so one slow step on a busy machine errored a case. Even at 3 s
    a loaded CI runner once stalled a request past its timeout, so retries are allowed and counted:
    every try is counted, and only a stall's few were sent again."""
    monkeypatch.setenv("LLMEVAL_TEST_KEY", "sk-flow-test-key-0123456789")
    n = 16
    cases = [{"id": f"n{i}", "question": f"Give the number {i}.", "answer": i} for i in range(n)]
    pytester.makefile(".jsonl", numbers="\n".join(json.dumps(c) for c in cases))
    pytester.makepyfile(
        test_suite="import pytest_llmeval as le\n\n@le.cases('numbers.jsonl', prompt='{question}', chat=True)\n"
        "def test_numbers(case, completion):\n    le.assert_number(completion, case['answer'])\n"
    )
    pytester.makeini("[pytest]\nllmeval_history = off\nllmeval_api_key_env = LLMEVAL_TEST_KEY\n")
    fake = FakeVLLM(service_s=0.3)
    with fake.run() as url:
        result = pytester.runpytest("-p", "no:cacheprovider", "--llmeval-model=openai:fake-model", f"--llmeval-base-url={url}",
                                    "--llmeval-output=out", "--llmeval-request-timeout=3", "--llmeval-max-retries=2")  # fmt: skip
    samples = [json.loads(line) for line in (pytester.path / "out" / "samples.jsonl").read_text().splitlines()]
    assert sorted(s["id"] for s in samples) == sorted(c["id"] for c in cases) and not [s for s in samples if s["outcome"] == "error"]
    requests = json.loads((pytester.path / "out" / "results.json").read_text())["usage"]["requests"]
    # every try counted; the server computed each case's (one it was still computing when the run ended may be missing)
    assert n <= fake.answered <= requests["requests"] == n + requests["retries"], (fake.answered, requests)
    assert requests["retries"] <= 3, requests  # queued behind our own, a request is given their time: no timeout wave
    assert requests["in_flight"]["settled"] <= math.ceil(3 / 0.3) + 1
    if requests["in_flight"]["cuts"]:
        result.stdout.fnmatch_lines(["llmeval: served requests in flight settled at * of at most 16 (cut on *)"])
