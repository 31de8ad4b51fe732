"""The batch scheduler: windows, chunks, order, reuse, failures and interruptions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.models.scheduler import DEFAULT_CHUNK, BatchScheduler, Entry, ProgressSink
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


class Interrupted(BaseException):
    """Stands for pytest-timeout's Failed (or Ctrl-C): not an Exception."""


class ChunkedBackend:
    """Has a batch size; raises ``Interrupted`` (or ``RuntimeError``) on the listed calls."""

    def __init__(self, size: int, interrupt_on: frozenset[int] = frozenset(), crash_on: frozenset[int] = frozenset()) -> None:
        self.size = size
        self.interrupt_on = interrupt_on
        self.crash_on = crash_on
        self.calls: list[list[str]] = []
        self.completed: list[str] = []

    def batch_size(self) -> int:
        return self.size

    def run_generate(self, requests, progress=None):
        self.calls.append([r.text for r in requests])
        if len(self.calls) in self.interrupt_on:
            raise Interrupted()
        if len(self.calls) in self.crash_on:
            raise RuntimeError("model crashed")
        self.completed += [r.text for r in requests]
        if progress:
            progress(len(requests))
        return [Completion(r.text.upper()) for r in requests]


def sized(lengths: list[int]) -> list[Entry]:
    return [Entry(key=f"s[{i}]", suite="s", request=Request(kind="generate", text=f"{i}" + "x" * n)) for i, n in enumerate(lengths)]


def test_a_window_runs_in_chunks_of_the_batch_size_longest_prompts_first() -> None:
    sched, backend = BatchScheduler(), ChunkedBackend(size=2)
    sched.plan(sized([1, 5, 3, 4, 2]))
    assert sched.result("s[0]", backend) == "0X"
    assert [[t[0] for t in call] for call in backend.calls] == [["1", "3"], ["2", "4"], ["0"]]
    assert sched.runs[0][:2] == ("generate", 5)


def test_a_backend_without_a_batch_size_gets_the_default_chunk() -> None:
    sched, backend = BatchScheduler(), FakeBackend()
    sched.plan(entries(DEFAULT_CHUNK + 1))
    sched.result("s[0]", backend)
    assert sorted(len(call) for call in backend.calls) == [1, DEFAULT_CHUNK]


def test_requests_with_different_settings_are_not_mixed_in_a_chunk() -> None:
    sched, backend = BatchScheduler(), ChunkedBackend(size=2)
    sched.plan(
        [Entry(key=f"k{i}", suite="s", request=Request(kind="generate", text=f"p{i}", max_new_tokens=4 if i % 2 else 8)) for i in range(4)]
    )
    sched.result("k0", backend)
    assert sorted(sorted(call) for call in backend.calls) == [["p0", "p2"], ["p1", "p3"]]


def test_an_interrupted_chunk_loses_only_itself_and_the_next_item_resumes() -> None:
    sched, backend = BatchScheduler(), ChunkedBackend(size=2, interrupt_on=frozenset({2}))
    sched.plan(entries(6))
    with pytest.raises(Interrupted):
        sched.result("s[0]", backend)
    assert backend.completed == ["s0", "s1"]
    # nothing is remembered as failed: the next item continues with the chunks not done yet
    assert [sched.result(f"s[{i}]", backend) for i in range(1, 6)] == ["S1", "S2", "S3", "S4", "S5"]
    assert backend.calls == [["s0", "s1"], ["s2", "s3"], ["s2", "s3"], ["s4", "s5"]]
    assert sorted(backend.completed) == [f"s{i}" for i in range(6)]


def test_a_crash_keeps_the_chunks_done_and_errors_the_rest_without_retrying() -> None:
    sched, backend = BatchScheduler(), ChunkedBackend(size=2, crash_on=frozenset({2}))
    sched.plan(entries(6))
    with pytest.raises(RuntimeError, match="model crashed"):
        sched.result("s[0]", backend)
    assert sched.result("s[1]", backend) == "S1"
    for key in ("s[2]", "s[3]", "s[4]", "s[5]"):
        with pytest.raises(RuntimeError, match="model crashed"):
            sched.result(key, backend)
    assert len(backend.calls) == 2


def test_retry_computes_the_items_that_failed_together_again() -> None:
    sched, backend = BatchScheduler(), ChunkedBackend(size=2, crash_on=frozenset({1}))
    sched.plan(entries(4))
    with pytest.raises(RuntimeError):
        sched.result("s[0]", backend)
    sched.retry("s[0]")
    assert [sched.result(f"s[{i}]", backend) for i in range(4)] == ["S0", "S1", "S2", "S3"]
    assert len(backend.calls) == 3  # the crash, then the two chunks of the retried window


class Recorder(ProgressSink):
    def __init__(self, log: list, kind: str, total: int) -> None:
        self.log = log
        log.append(("start", kind, total))

    def update(self, n: int) -> None:
        self.log.append(("update", n))

    def close(self, seconds: float, stopped: bool = False) -> None:
        self.log.append(("close", stopped))


def test_one_progress_per_window_across_chunks_and_a_stopped_run_says_so() -> None:
    log: list = []
    sched = BatchScheduler(progress=lambda kind, total: Recorder(log, kind, total))
    backend = ChunkedBackend(size=2, interrupt_on=frozenset({3}))
    sched.plan(entries(5))
    with pytest.raises(Interrupted):
        sched.result("s[0]", backend)
    sched.result("s[4]", backend)
    assert log == [
        ("start", "generate", 5), ("update", 2), ("update", 2), ("close", True),
        ("start", "generate", 1), ("update", 1), ("close", False),
    ]


@given(
    n=st.integers(1, 12),
    size=st.integers(1, 5),
    window=st.none() | st.integers(1, 12),
    interrupts=st.frozensets(st.integers(1, 12), max_size=4),
)
def test_property_interruptions_never_redo_finished_work(n: int, size: int, window: int | None, interrupts: frozenset[int]) -> None:
    """Items asked in run order, each retried after an interruption (as a rerun would): every
    item gets its own output, every request is completed once, and each interruption wastes
    at most one chunk of work."""
    sched, backend = BatchScheduler(window=window), ChunkedBackend(size=size, interrupt_on=interrupts)
    sched.plan(entries(n))
    got, stops = [], 0
    for i in range(n):
        while True:
            try:
                got.append(sched.result(f"s[{i}]", backend))
                break
            except Interrupted:
                stops += 1
    assert got == [f"S{i}" for i in range(n)]
    assert sorted(backend.completed) == sorted(f"s{i}" for i in range(n))
    assert stops == len([c for c in range(1, len(backend.calls) + 1) if c in interrupts])
    assert all(len(call) <= size for call in backend.calls)
    assert sum(len(call) for call in backend.calls) <= n + stops * size


def test_an_output_error_in_place_of_a_result_fails_only_its_item_and_a_rerun_retries_it() -> None:
    from pytest_llmeval.models import OutputError

    class PartlyFailing(FakeBackend):
        def run_generate(self, requests, progress=None):
            self.calls.append([r.text for r in requests])
            failing = len(self.calls) == 1
            return [OutputError(f"{r.text} failed") if failing and r.text == "s1" else Completion(r.text.upper()) for r in requests]

    sched, backend = BatchScheduler(), PartlyFailing()
    sched.plan(entries(3))
    assert sched.result("s[0]", backend) == "S0"
    with pytest.raises(OutputError, match="s1 failed"):
        sched.result("s[1]", backend)
    assert sched.result("s[2]", backend) == "S2" and backend.calls == [["s0", "s1", "s2"]]
    sched.retry("s[1]")
    assert sched.result("s[1]", backend) == "S1" and backend.calls[1] == ["s1"]
