"""``le.assert_code``, ``le.extract_code``, the pool of parallel runs and the prefetch pass.

These use the ``none`` provider where the sandbox does not matter (it runs everywhere) and
bwrap where the choice of sandbox is the point.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sandboxes import bwrap_or_skip

import pytest_llmeval as le
from pytest_llmeval.scoring import recording
from pytest_llmeval.scoring.code import (
    CodeFailure,
    CodePool,
    Job,
    Limits,
    Prefetched,
    SandboxUnavailable,
    can_prefetch,
    configure,
    current_pool,
    extract_code,
    get_sandbox,
    prefetch,
    recording_verdicts,
)
from pytest_llmeval.scoring.code import sandbox as sandbox_module
from pytest_llmeval.scoring.code import scorer
from pytest_llmeval.scoring.failures import EvalFailure

ADD = "def add(a, b):\n    return a + b\n"
CHECK = "def check(candidate):\n    assert candidate(2, 3) == 5\n"


@pytest.fixture
def use():
    """Choose the session's sandbox for one test; the default comes back afterwards."""
    saved = dict(scorer._settings)
    yield configure
    scorer.shutdown()
    scorer._settings.update(saved)


def test_assert_code_is_exported():
    assert le.assert_code is scorer.assert_code and le.extract_code is extract_code
    assert "assert_code" in le.__all__


def test_a_pass_scores_one(use):
    use("none")
    assert le.assert_code(ADD, CHECK, entry_point="add") == 1.0


def test_a_miss_is_an_eval_failure_with_the_verdict(use):
    use("none")
    with pytest.raises(CodeFailure) as info:
        le.assert_code("def add(a, b):\n    return a * b\n", CHECK, entry_point="add")
    failure = info.value
    assert isinstance(failure, EvalFailure) and isinstance(failure, AssertionError)
    assert failure.reason == "assertion failed: tests line 2: assert candidate(2, 3) == 5"
    assert failure.score == 0.0 and failure.scorer == "assert_code"
    assert failure.verdict.status == "failed" and failure.verdict.sandbox == "none"


@pytest.mark.parametrize(
    ("program", "limits", "reason"),
    [
        ("import time\ntime.sleep(60)\n", {"timeout": 1}, "timed out after 1 s"),
        ("x = bytearray(400 << 20)\n", {"memory_mb": 256}, "killed: memory limit 256 MiB (MemoryError at program line 1: x = bytearray(400 << 20))"),
        ("raise KeyError('k')\n", {}, "KeyError: 'k' (program line 1: raise KeyError('k'))"),
    ],
    ids=["timeout", "memory", "exception"],
)
def test_the_reason_says_what_happened(use, program, limits, reason):
    use("none")
    with pytest.raises(CodeFailure) as info:
        le.assert_code(program, "", **limits)
    assert info.value.reason == reason


def test_extract_takes_the_fenced_code(use):
    use("none")
    answer = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nThis adds two numbers."
    assert le.assert_code(answer, CHECK, entry_point="add", extract=True) == 1.0
    with pytest.raises(CodeFailure, match="SyntaxError"):
        le.assert_code(answer, CHECK, entry_point="add")


def test_an_unusable_sandbox_is_an_error_with_the_fix(use, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr(sandbox_module, "_cache", {})
    use("bwrap")
    with pytest.raises(SandboxUnavailable) as info:
        le.assert_code(ADD, CHECK, entry_point="add")
    assert not isinstance(info.value, AssertionError)
    assert "apt-get install bubblewrap" in str(info.value) and "llmeval_code_sandbox = none" in str(info.value)


def test_the_default_sandbox_is_bwrap(use):
    bwrap_or_skip()
    with recording_verdicts() as verdicts:
        le.assert_code(ADD, CHECK, entry_point="add")
    assert [v.sandbox for v in verdicts] == ["bwrap"]
    assert "network-namespace" in verdicts[0].protections


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((None, ""), {}, TypeError),
        (("pass", None), {}, TypeError),
        (("pass", ""), {"entry_point": "no such"}, ValueError),
        (("pass", ""), {"timeout": -1}, ValueError),
        (("pass", ""), {"memory_mb": 1.5}, ValueError),
    ],
)
def test_bad_arguments_are_the_test_authors_error(use, args, kwargs, error):
    use("none")
    with pytest.raises(error):
        le.assert_code(*args, **kwargs)


def test_verdicts_are_recorded_for_the_plugin(use):
    use("none")
    with recording_verdicts() as verdicts:
        le.assert_code(ADD, CHECK, entry_point="add")
        with pytest.raises(CodeFailure):
            le.assert_code(ADD, "assert add(1, 1) == 3")
    assert [v.status for v in verdicts] == ["passed", "failed"]


# ----------------------------------------------------------------------------- extract_code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("```python\nx = 1\n```", "x = 1\n"),
        ("Sure!\n```py\nx = 1\n```\nand\n```python\ny = 2\n```", "x = 1\n"),
        ("```\nplain\n```\n```python\nx = 1\n```", "x = 1\n"),  # a Python block wins
        ("```text\nnot code\n```", "not code\n"),  # else the first block
        ("Answer:\n```python\ndef f():\n    return 1", "def f():\n    return 1"),  # cut before the fence closed
        ("x = 1\n", "x = 1\n"),  # no fence at all
        ("~~~python\nx = 1\n~~~", "x = 1\n"),
        ("````python\nprint('```')\n````", "print('```')\n"),
        ("  ```python\n  x = 1\n  ```", "  x = 1\n"),
    ],
)
def test_extract_code(text, code):
    assert extract_code(text) == code


@given(st.text(alphabet=st.characters(blacklist_characters="`~", blacklist_categories=("Cs",))), st.text(alphabet="abc .:\n"))
def test_a_fenced_block_comes_back_unchanged(code, prose):
    body = code if code.endswith("\n") or not code else code + "\n"
    if any(line.strip().startswith(("```", "~~~")) for line in body.splitlines()):
        return
    assert extract_code(f"{prose}\n```python\n{body}```\n{prose}") == body


# ----------------------------------------------------------------------------- the pool


def _rendezvous(me: str, other: str, directory: Path) -> str:
    """A program that finishes only if the program waiting for it runs at the same time."""
    return textwrap.dedent(
        f"""
        import os, time
        open({str(directory / me)!r}, "w").close()
        while not os.path.exists({str(directory / other)!r}):
            time.sleep(0.05)
        """
    )


def test_runs_proceed_in_parallel(tmp_path):
    """Two programs that each wait for the other: one after the other, the first would time out."""
    sandbox = get_sandbox("none")  # shares the machine's files, which the rendezvous needs
    pool = CodePool(workers=2)
    try:
        limits = Limits(timeout=60)
        a = Job(_rendezvous("a", "b", tmp_path), limits=limits)
        b = Job(_rendezvous("b", "a", tmp_path), limits=limits)
        assert [v.status for v in pool.map(sandbox, [a, b])] == ["passed", "passed"]
    finally:
        pool.shutdown()


def test_a_prefetched_job_is_run_once_and_taken_later():
    sandbox = get_sandbox("none")
    pool = CodePool(workers=2)
    try:
        job = Job(ADD, CHECK, "add")
        future = pool.submit(sandbox, job)
        same = pool.submit(sandbox, Job(ADD, CHECK, "add"))  # an equal job joins the run
        assert same is future and pool.started == 1 and pool.pending() == 1
        assert pool.take(sandbox, job).passed
        assert pool.take(sandbox, job).passed  # owed twice
        assert pool.started == 1 and pool.pending() == 0
        assert pool.take(sandbox, job).passed and pool.started == 2  # nothing owed: a new run
    finally:
        pool.shutdown()


def test_a_prefetch_pass_submits_and_stops_the_body(use):
    use("none", workers=2)
    reached = []

    def body(case, completion):
        reached.append("before")
        try:
            le.assert_code(case["prompt"] + completion, CHECK, entry_point="add")
        except Exception:  # a body's own handler does not swallow the stop
            reached.append("caught")
        reached.append("after")

    case = {"prompt": "def add(a, b):\n"}
    keys = prefetch(lambda: body(case, "    return a + b\n"))
    assert len(keys) == 1 and reached == ["before"]
    pool = current_pool()
    assert pool.pending() == 1 and pool.started == 1
    body(case, "    return a + b\n")  # the real call takes the prefetched verdict
    assert reached == ["before", "before", "after"]
    assert pool.pending() == 0 and pool.started == 1


def test_a_prefetch_pass_leaves_other_failures_and_scores_to_the_real_call(use):
    use("none")

    def body():
        le.score("seen", 1.0)
        le.assert_contains("abc", "z")  # a miss before assert_code

    with recording.collecting_scores() as scores:
        assert prefetch(body) == []
    assert scores == {}


def test_prefetched_is_not_an_exception():
    assert not issubclass(Prefetched, Exception)


def test_which_test_bodies_a_prefetch_pass_may_call():
    def code_suite(case, completion):
        le.assert_code(case["prompt"] + completion, case["test"])

    def nested(case, completion):
        def inner():
            le.assert_code(completion, "")

        inner()

    def needs_llm(case, completion, llm):
        le.assert_code(llm.generate("x"), "")

    def other(case, completion):
        le.assert_contains(completion, "x")

    def optional(case, completion, tmp=None):
        le.assert_code(completion, "")

    assert can_prefetch(code_suite) and can_prefetch(nested) and can_prefetch(optional)
    assert not can_prefetch(needs_llm) and not can_prefetch(other)
    assert can_prefetch(needs_llm, available=("case", "completion", "llm"))


def test_the_end_of_a_session_brings_back_the_default_sandbox(use):
    configure(sandbox="none", workers=2)
    scorer.shutdown()
    assert scorer._settings == {"sandbox": "bwrap", "workers": None}


def test_a_provider_may_get_another_provider_while_it_is_made(monkeypatch):
    class Wrapping:
        name = "wrapping"

        @property
        def protections(self):  # read by the protocol check, under the registry's lock
            return get_sandbox("none").protections

        def run(self, job):
            return get_sandbox("none").run(job)

    made = sandbox_module._factory
    monkeypatch.setattr(sandbox_module, "_cache", {})
    monkeypatch.setattr(sandbox_module, "_factory", lambda name: Wrapping if name == "wrapping" else made(name))
    assert get_sandbox("wrapping").protections == get_sandbox("none").protections
