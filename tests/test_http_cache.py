"""The completion cache in front of the openai: backend: a re-run whose answers are all cached
sends no request and records the same fingerprint and samples; failed requests are not cached;
the API key is not in the cache file; ``--llmeval-cache off`` sends again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpx", reason="the openai: backend needs httpx (pip install 'pytest-llmevals[http]')")

from http_servers import SERVED, FakeVLLM, FaultProxy  # noqa: E402
from test_http_plugin import KEY, N_GEN, run, write_suites  # noqa: E402

from pytest_llmeval.models import http_client  # noqa: E402

pytest_plugins = ["pytester"]
N_RANK = 4


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_client, "BACKOFF_BASE", 0.01)
    monkeypatch.setenv("LLMEVAL_TEST_KEY", KEY)


def comparable(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The samples without what differs between runs by design (durations, the cached mark)."""
    return [{k: v for k, v in row.items() if "duration" not in k and k != "cached"} for row in samples]


def fingerprints(results: dict[str, Any]) -> dict[str, Any]:
    return {name: suite["fingerprint"] for name, suite in results["suites"].items()}


def cache_bytes(project: Path) -> bytes:
    """The cache file and its journal files, as bytes."""
    return b"".join(p.read_bytes() for p in sorted((project / ".llmeval").glob("cache.sqlite*")))


def test_a_fully_cached_rerun_sends_nothing_and_records_the_same(pytester: pytest.Pytester) -> None:
    write_suites(pytester)
    fake = FakeVLLM()
    with fake.run() as url:
        _, first, first_samples = run(pytester, url)
        sent = len(fake.requests)
        second_result, second, second_samples = run(pytester, url)
    assert sent >= N_GEN + N_RANK and len(fake.requests) == sent  # the second run sent nothing
    assert "from the completion cache" in second_result.stdout.str()
    assert second["run"]["from_cache"] == {"completions": N_GEN, "rankings": N_RANK}
    assert all(s["cached"] for s in second_samples) and not any(s.get("cached") for s in first_samples)
    assert fingerprints(second) == fingerprints(first)
    versions = first["suites"]["test_suites.py::test_numbers"]["fingerprint"]["versions"]
    assert versions["served_model"] == SERVED and versions["system_fingerprint"] == "fp_test"
    assert comparable(second_samples) == comparable(first_samples)
    data = cache_bytes(pytester.path)
    assert data and KEY.encode() not in data and KEY[-11:].encode() not in data


def test_a_partly_cached_run_keeps_the_completed_fingerprint(pytester: pytest.Pytester) -> None:
    write_suites(pytester, ranked=False)
    fake = FakeVLLM()
    with fake.run() as url:
        _, first, _ = run(pytester, url, "-k", "numbers and n1]")
        pytester.path.joinpath("out").rename(pytester.path / "out1")
        _, second, _ = run(pytester, url)
    assert len(fake.requests) == N_GEN  # n1 once, the 11 others in the second run
    assert second["run"]["from_cache"] == {"completions": 1, "rankings": 0}
    assert fingerprints(second) == fingerprints(first)


def test_failed_requests_are_not_cached_and_are_sent_again(pytester: pytest.Pytester) -> None:
    write_suites(pytester, ranked=False)
    fake = FakeVLLM()
    failing = {"on": True}
    with fake.run() as upstream:
        # a body whose hash is 0 mod 3 always gets a 500 while failing is on
        proxy = FaultProxy(upstream, rule=lambda key, attempt: "500" if failing["on"] and key % 3 == 0 else "ok")
        with proxy.run() as url:
            _, _, first = run(pytester, url, "--llmeval-max-retries=0")
            errors = [s["id"] for s in first if s["outcome"] == "error"]
            answered = len(fake.requests)
            failing["on"] = False
            _, _, second = run(pytester, url)
    assert errors and answered == N_GEN - len(errors)
    assert len(fake.requests) - answered == len(errors)  # only the failed ones are sent again
    outcomes = {s["id"]: (s["outcome"], s.get("cached")) for s in second}
    assert all(outcomes[i][0] != "error" and not outcomes[i][1] for i in errors)
    assert all(cached for i, (_, cached) in outcomes.items() if i not in errors)


def test_cache_off_sends_every_request_again(pytester: pytest.Pytester) -> None:
    write_suites(pytester, ranked=False)
    fake = FakeVLLM()
    with fake.run() as url:
        run(pytester, url)
        _, results, samples = run(pytester, url, "--llmeval-cache=off")
    assert len(fake.requests) == 2 * N_GEN
    assert not any(s.get("cached") for s in samples) and not any(results["run"].get("from_cache", {}).values())


def test_the_identity_is_the_model_and_the_server_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmeval.models import backend_identity
    from pytest_llmeval.settings import LLMSettings

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    settings = LLMSettings(model="openai:m", base_url="http://user:secret@example.test:8000/v1/?token=abc#x")
    assert backend_identity(settings) == {"scheme": "openai", "model": "m", "server": "http://example.test:8000/v1"}
    monkeypatch.setenv("OPENAI_BASE_URL", "http://other.test/v1")
    assert backend_identity(settings.replace(base_url=None))["server"] == "http://other.test/v1"  # type: ignore[index]
    assert backend_identity(settings.replace(model="openai:")) is None  # names no model: loading says so
