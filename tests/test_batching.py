"""The batch scheduler: windows, order, reuse and failures."""

from __future__ import annotations

import pytest

from pytest_llmeval.models.scheduler import BatchScheduler, Entry
from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.outputs import Completion


class FakeBackend:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    def run_generate(self, requests, progress=None):
        self.calls.append([r.text for r in requests])
        if self.fail:
            raise RuntimeError("model crashed")
        if progress:
            progress(len(requests))
        return [Completion(r.text.upper()) for r in requests]


def entries(n: int, suite: str = "s", kind: str = "generate") -> list[Entry]:
    return [Entry(key=f"{suite}[{i}]", suite=suite, request=Request(kind=kind, text=f"{suite}{i}")) for i in range(n)]


def test_first_request_computes_all_pending_in_one_call() -> None:
    sched, backend = BatchScheduler(), FakeBackend()
    sched.plan(entries(5))
    assert sched.result("s[0]", backend) == "S0"
    assert [sched.result(f"s[{i}]", backend) for i in range(1, 5)] == ["S1", "S2", "S3", "S4"]
    assert backend.calls == [["s0", "s1", "s2", "s3", "s4"]]


def test_window_limits_batch_and_starts_at_asking_item() -> None:
    sched, backend = BatchScheduler(window=2), FakeBackend()
    sched.plan(entries(5))
    sched.result("s[1]", backend)
    sched.result("s[0]", backend)
    sched.result("s[3]", backend)
    sched.result("s[4]", backend)
    assert backend.calls == [["s1", "s2"], ["s0", "s3"], ["s4"]]


def test_same_suite_window_skips_other_suites() -> None:
    sched, backend = BatchScheduler(same_suite=True), FakeBackend()
    sched.plan(entries(2, "a") + entries(2, "b"))
    sched.result("a[0]", backend)
    assert backend.calls == [["a0", "a1"]]


def test_failure_errors_every_item_of_the_window_without_retrying() -> None:
    sched, backend = BatchScheduler(), FakeBackend(fail=True)
    sched.plan(entries(3))
    for key in ("s[0]", "s[1]", "s[2]"):
        with pytest.raises(RuntimeError, match="model crashed"):
            sched.result(key, backend)
    assert len(backend.calls) == 1


def test_unplanned_key_is_an_error() -> None:
    sched = BatchScheduler()
    sched.plan(entries(1))
    with pytest.raises(KeyError, match="not planned"):
        sched.result("other", FakeBackend())
