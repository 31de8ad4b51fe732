"""The openai: backend through the plugin: suites against a vLLM-shaped server, faults injected
by a proxy, credentials refused, a budget, ranking without logprobs, and a key that is never
written anywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.models.sampling import sample_seed

pytest.importorskip("httpx", reason="the openai: backend needs httpx (pip install 'pytest-llmevals[http]')")

from http_servers import FakeVLLM, FaultProxy, fake_answer, first_try_faults  # noqa: E402

from pytest_llmeval.models import http_client  # noqa: E402
from pytest_llmeval.results.samplefile import read_samples  # noqa: E402

pytest_plugins = ["pytester"]
KEY = "sk-llmeval-FAKE-7f3a9c1e5b-DISTINCTIVE"
N_GEN = 12

SUITES = '''
import pytest_llmeval as le

@le.cases("numbers.jsonl", prompt="{question}", chat=True, max_new_tokens=8)
def test_numbers(case, completion):
    le.assert_number(completion, case["answer"])

@le.cases("choices.jsonl", prompt="{question}", choices="choices", chat=False)
def test_choices(case, ranked):
    le.assert_choice(ranked, case["answer"])
'''


def write_suites(pytester: pytest.Pytester, *, ranked: bool = True, ini: str = "") -> None:
    numbers = [{"id": f"n{i}", "question": f"Give the number {i}.", "answer": i} for i in range(N_GEN)]
    # " yes" scores -0.4 and " absolutely" -1.1 (-len/10 per token): the first is the likeliest
    choices = [{"id": f"c{i}", "question": f"Pick {i}:", "choices": ["yes", "absolutely"], "answer": i % 2} for i in range(4)]
    pytester.makefile(".jsonl", numbers="\n".join(json.dumps(c) for c in numbers))
    pytester.makefile(".jsonl", choices="\n".join(json.dumps(c) for c in choices))
    source = SUITES if ranked else SUITES.split("@le.cases(\"choices")[0]
    pytester.makepyfile(test_suites=source)
    pytester.makeini(f"[pytest]\nllmeval_history = off\nllmeval_api_key_env = LLMEVAL_TEST_KEY\n{ini}")


def run(pytester: pytest.Pytester, url: str, *args: str) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-rA", "--llmeval-model=openai:fake-model", f"--llmeval-base-url={url}", "--llmeval-output=out", *args
    )
    out = pytester.path / "out"
    results = json.loads((out / "results.json").read_text())
    samples = read_samples(out / "samples.jsonl")
    return result, results, samples


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_client, "BACKOFF_BASE", 0.01)
    monkeypatch.setenv("LLMEVAL_TEST_KEY", KEY)


def expected_generation_outcome(i: int) -> str:
    """The fake model answers an even number right and an odd one wrong."""
    return "pass" if str(i) in fake_answer(f"Give the number {i}.") else "fail"


def test_suites_through_a_vllm_shaped_server(pytester: pytest.Pytester) -> None:
    write_suites(pytester)
    fake = FakeVLLM()
    with fake.run() as url:
        result, results, samples = run(pytester, url, "--llmeval-price-in=1", "--llmeval-price-out=2")
    outcomes = {s["id"]: s["outcome"] for s in samples}
    assert outcomes == {**{f"n{i}": expected_generation_outcome(i) for i in range(N_GEN)}, **{f"c{i}": ["pass", "fail"][i % 2] for i in range(4)}}
    assert all(r["authorization"] == f"Bearer {KEY}" for r in fake.requests)
    chat = [r["body"] for r in fake.requests if r["path"] == "/v1/chat/completions"]
    assert len(chat) == N_GEN and all(b["temperature"] == 0.0 and b["max_tokens"] == 8 for b in chat)
    # Each case's request carries its own sample seed, derived from the session seed (1234) and the case id.
    assert sorted(b["seed"] for b in chat) == sorted(sample_seed(1234, f"n{i}", 0) for i in range(N_GEN))
    usage = results["usage"]
    numbers = usage["suites"]["test_suites.py::test_numbers"]
    tokens_in = sum(s["tokens_in"] for s in samples if s["id"].startswith("n"))
    assert numbers["cases"] == N_GEN and numbers["tokens_in"] == tokens_in > 0
    assert numbers["mean_tokens_in"] == pytest.approx(tokens_in / N_GEN, abs=1e-3)
    assert usage["requests"]["requests"] == len(fake.requests) and usage["requests"]["retries"] == 0
    total = usage["total"]
    assert total["cost_usd"] == pytest.approx((total["tokens_in"] * 1 + total["tokens_out"] * 2) / 1e6)
    fingerprint = results["suites"]["test_suites.py::test_numbers"]["fingerprint"]
    assert fingerprint["model"] == "openai:fake-model" and fingerprint["server"] == url
    assert fingerprint["versions"]["served_model"] == "fake-model" and fingerprint["versions"]["system_fingerprint"] == "fp_test"
    result.stdout.fnmatch_lines(["usage *answered*tokens in*tokens out*mean in*mean out*mean latency*cost", "requests: * sent, 0 retries, cost $*"])
    result.stdout.fnmatch_lines(["*with up to 16 requests in flight*"])


def test_faults_end_every_case_as_it_should_and_nothing_is_lost_or_counted_twice(pytester: pytest.Pytester) -> None:
    """The proxy gives each request's first try a 429 (Retry-After 0), a 500, a dropped
    connection, a slow answer (6 s, past the 4 s timeout: cut short and retried when it was the
    only request in flight, else waited for, as its timeout grows with the requests ahead of it) or
    nothing, by its body; one body in seven always gets a 500. Those cases error after 3 tries;
    every other case ends as it does without the proxy. The counts are checked for consistency,
    not against the proxy's own tally alone: on a busy machine an attempt may time out before the
    proxy reads it."""
    write_suites(pytester, ranked=False)
    fake = FakeVLLM()
    with fake.run() as upstream:
        proxy = FaultProxy(upstream, slow_s=6.0)
        with proxy.run() as url:
            result, results, samples = run(pytester, url, "--llmeval-request-timeout=4", "--llmeval-max-retries=2")
    assert sorted(s["id"] for s in samples) == sorted(f"n{i}" for i in range(N_GEN))  # each case once
    assert len(proxy.attempts) == N_GEN  # every case's request reached the proxy
    always_failing = {k for k in proxy.attempts if k % 7 == 0}
    faulted_first = sum(1 for k in proxy.attempts if first_try_faults(k, 1) != "ok")
    retried_first = sum(1 for k in proxy.attempts if first_try_faults(k, 1) not in ("ok", "slow"))
    assert 0 < len(always_failing) < faulted_first < N_GEN  # the rule hits this suite's bodies as intended
    errors = {s["id"] for s in samples if s["outcome"] == "error"}
    assert len(errors) == len(always_failing)
    for s in samples:
        if s["id"] in errors:
            assert "failed: HTTP 500 after 3 tries" in s["reason"] and "\n" not in s["reason"]
        else:
            assert s["outcome"] == expected_generation_outcome(int(s["id"][1:]))
    requests = results["usage"]["requests"]
    assert requests["requests"] == N_GEN + requests["retries"]  # one first try per case, then its retries
    assert requests["retries"] >= retried_first + len(always_failing) and sum(proxy.attempts.values()) <= requests["requests"]
    assert requests["failed"] == len(errors) and requests["not_sent"] == 0
    assert results["summary"]["errors"] == len(errors) and results["suites"]["test_suites.py::test_numbers"]["n"] == N_GEN


@pytest.mark.parametrize("status", [401, 404])
def test_refused_credentials_error_every_case_with_one_line(pytester: pytest.Pytester, status: int) -> None:
    write_suites(pytester, ranked=False)
    fake = FakeVLLM(status=status, error_text=f"Incorrect API key provided: {KEY}")
    with fake.run() as url:
        result, results, samples = run(pytester, url, "--llmeval-concurrency=2")
    assert len(fake.requests) <= 2  # the first answer stops the session's requests (2 were in flight)
    assert {s["outcome"] for s in samples} == {"error"} and len(samples) == N_GEN
    assert len({s["reason"] for s in samples}) == 1 and f"HTTP {status}" in samples[0]["reason"]
    assert "Traceback" not in result.stdout.str() and KEY not in result.stdout.str()
    assert results["usage"]["requests"]["fatal"]


def test_the_budget_stops_sending_and_the_rest_error_saying_why(pytester: pytest.Pytester) -> None:
    write_suites(pytester, ranked=False)
    fake = FakeVLLM()
    with fake.run() as url:
        result, results, samples = run(
            pytester, url, "--llmeval-concurrency=1", "--llmeval-price-in=1000", "--llmeval-price-out=1000", "--llmeval-max-cost=0.05"
        )
    sent = len(fake.requests)
    not_sent = [s for s in samples if s["outcome"] == "error"]
    assert 0 < sent < N_GEN and len(not_sent) == N_GEN - sent
    assert all("not sent: the cost budget llmeval_max_cost = $0.05 was spent" in s["reason"] for s in not_sent)
    assert results["usage"]["requests"]["not_sent"] == N_GEN - sent
    result.stdout.fnmatch_lines(["*not sent: the cost budget llmeval_max_cost = $0.05 was spent*"])


def test_ranking_on_a_server_without_prompt_logprobs_errors_once_before_requests_are_wasted(pytester: pytest.Pytester) -> None:
    write_suites(pytester)
    fake = FakeVLLM(logprobs=False)
    with fake.run() as url:
        result, results, samples = run(pytester, url)
    ranked = [s for s in samples if s["id"].startswith("c")]
    assert {s["outcome"] for s in ranked} == {"error"} and len({s["reason"] for s in ranked}) == 1
    assert "returned no prompt logprobs" in ranked[0]["reason"]
    echo = [r for r in fake.requests if r["body"].get("echo")]
    assert len(echo) == 1  # the probe; no case's request was sent
    assert {s["outcome"] for s in samples if s["id"].startswith("n")} == {"pass", "fail"}  # generation unaffected


def all_text(root: Path) -> str:
    """Every file under ``root`` (binary ones decoded leniently: SQLite stores text as it is)."""
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file())


def test_the_key_is_written_nowhere(pytester: pytest.Pytester) -> None:
    write_suites(pytester, ini="llmeval_history = .llmeval/history.sqlite\n")
    ini = pytester.path / "tox.ini"
    ini.write_text(ini.read_text().replace("llmeval_history = off\n", ""))
    fake = FakeVLLM()
    with fake.run() as url:
        result, _, samples = run(pytester, url, "--llmeval-baseline=baseline.json", "--llmeval-update-baseline", "--llmeval-force",
                                 "--llmeval-markdown=summary.md", "--junitxml=junit.xml", "--llmeval-html=report.html")  # fmt: skip
    assert fake.requests and all(r["authorization"] == f"Bearer {KEY}" for r in fake.requests)  # it was used
    written = all_text(pytester.path)
    for name in ("baseline.json", "out/results.json", "out/samples.jsonl", ".llmeval/history.sqlite", "summary.md", "junit.xml", "report.html"):
        assert (pytester.path / name).exists(), name
    assert KEY not in written and KEY not in result.stdout.str() + result.stderr.str()
    assert KEY[8:20] not in written  # not even a part of it


@pytest.mark.parametrize("option,message", [("--llmeval-concurrency=0", "must be from 1 to 4096"), ("--llmeval-max-cost=cheap", "expected a number")])
def test_bad_http_options_are_one_line_usage_errors(pytester: pytest.Pytester, option: str, message: str) -> None:
    write_suites(pytester, ranked=False)
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmeval-model=openai:m", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*llmeval: {option.split('=')[0]}: {message}*"])


def test_a_missing_openai_key_errors_each_case_in_one_line(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    write_suites(pytester, ranked=False)
    monkeypatch.delenv("LLMEVAL_TEST_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmeval-model=openai:gpt-x")
    result.assert_outcomes(errors=N_GEN)
    result.stdout.fnmatch_lines(["*llmeval: the OpenAI API needs a key: set $LLMEVAL_TEST_KEY, or point llmeval_base_url at your own server*"])
    assert "Traceback" not in result.stdout.str()


JUDGED = '''
import pytest_llmeval as le

@le.cases("numbers.jsonl", prompt="{question}", chat=True, max_new_tokens=8, judge=le.Rubric("The reply gives the number asked for."))
def test_judged(case, completion, judgement):
    le.assert_judged(judgement)
'''


def test_a_served_judge_without_prompt_logprobs_generates_its_labels(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a server that returns no prompt log-probabilities (transformers serve, many hosted
    APIs), the judge generates its label, parsed strictly: one notice, no traceback, judged right
    (this judge says PASS when the reply gives the number asked for: the even ones)."""
    monkeypatch.setenv("LLMEVAL_TEST_KEY", KEY)

    def judge(path: str, body: dict[str, Any], answer: dict[str, Any]) -> tuple[int, Any]:
        text = json.dumps(body)
        if "Verdict:" in text:
            asked, given = re.search(r"Give the number (\d+)", text), re.search(r"The answer is (\d+)", text)
            label = " PASS" if asked and given and asked.group(1) == given.group(1) else " FAIL"
            choice = answer["choices"][0]
            choice.update({"message": {"role": "assistant", "content": label}} if "message" in choice else {"text": label})
        return 200, answer

    write_suites(pytester, ranked=False)
    pytester.makepyfile(test_suites=JUDGED)
    fake = FakeVLLM(logprobs=False, hostile=judge)
    with fake.run() as url:
        result, _, samples = run(pytester, url, "-W", "ignore::UserWarning")
    result.stdout.fnmatch_lines(["*llmeval: the judge (*) returns no prompt log-probabilities, so it answers by generating its label*"])
    out = result.stdout.str()
    assert out.count("returns no prompt log-probabilities") == 1 and "Traceback" not in out
    by_id = {s["id"]: s for s in samples}
    assert [by_id[f"n{i}"]["outcome"] for i in range(N_GEN)] == ["pass", "fail"] * (N_GEN // 2)
    assert {s["judgement"]["method"] for s in samples} == {"generate"}
