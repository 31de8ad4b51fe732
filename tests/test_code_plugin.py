"""Code with tests through the plugin: the sandbox options, a provider from another package, the
outcomes (a miss, an error, an early exit), the verdicts in samples.jsonl and results.json, and the
prefetch pass that runs programs in parallel while pytest and the model are busy elsewhere.

The backend ``program:N`` answers each prompt with the prompt itself, so each case's prompt is the
program (tests/code_fakes.py). Runs that need a fresh process per session (a provider from an
entry point keeps its state in its module) use ``runpytest_subprocess``.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

import code_fakes

pytest_plugins = ["pytester"]

PASSING = "def f(x):\n    return x + 1\n"
WRONG = "def f(x):\n    return x\n"
EXITS = "import sys\nsys.exit(0)\ndef f(x):\n    return x + 1\n"
TESTS = "assert f(1) == 2\n"


@pytest.fixture
def fakes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = code_fakes.install(pytester.path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pytester.path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("CODE_FAKES_LOG", str(log))
    pytester.syspathinsert()
    return log


def suite(pytester: pytest.Pytester, programs: dict[str, str], body: str | None = None, ini: str = "", args: str = "case, completion", model: str = "program:64") -> None:
    """test_code.py: one case per program (its prompt), the body given (default: the program
    against TESTS), and the ini file (the ``program`` backend, no cache, no history)."""
    cases = [{"id": k, "program": v} for k, v in programs.items()]
    pytester.makeini(f"[pytest]\nllmeval_model = {model}\nllmeval_history = off\nllmeval_cache = off\n{ini}")
    body = body or f"le.assert_code(completion, {TESTS!r}, timeout=20)"
    lines = ["import pytest", "import pytest_llmeval as le", "", f"CASES = {cases!r}", "", '@le.cases(CASES, prompt="{program}")', f"def test_code({args}):"]
    lines += ["    " + line for line in textwrap.dedent(body).strip("\n").splitlines()]
    (pytester.path / "test_code.py").write_text("\n".join(lines) + "\n")


def samples(out: Path) -> dict[str, dict]:
    return {s["id"]: s for s in map(json.loads, (out / "samples.jsonl").read_text().splitlines())}


def test_pass_miss_and_early_exit_through_the_plugin(pytester: pytest.Pytester, fakes: Path) -> None:
    suite(pytester, {"good": PASSING, "wrong": WRONG, "exits": EXITS}, ini="llmeval_code_sandbox = none\n")
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(f"--llmeval-output={out}", "-p", "no:randomly")
    assert result.ret == 0, result.stdout.str()[-3000:]  # misses are data, not a failed session
    result.stdout.fnmatch_lines(["*1 passed*2 missed*"])
    got = samples(out)
    assert {k: s["outcome"] for k, s in got.items()} == {"good": "pass", "wrong": "fail", "exits": "fail"}
    assert [v["status"] for v in got["good"]["code"]] == ["passed"]
    assert got["wrong"]["code"][0]["status"] == "failed" and "assert f(1) == 2" in got["wrong"]["reason"]
    exited = got["exits"]["code"][0]
    assert exited["status"] == "exited" and not exited["passed"] and "SystemExit(0)" in got["exits"]["reason"]
    for s in got.values():
        (verdict,) = s["code"]
        assert verdict["sandbox"] == "none" and verdict["duration_s"] >= 0 and "output_tail" in verdict
    code = json.loads((out / "results.json").read_text())["suites"]["test_code.py::test_code"]["code"]
    assert code["sandboxes"] == ["none"] and code["runs"] == 3
    assert code["statuses"] == {"exited": 1, "failed": 1, "passed": 1}
    assert "rlimits" in code["protections"] and "network-namespace" not in code["protections"]


def test_a_sandbox_that_cannot_start_is_an_error_not_a_miss(pytester: pytest.Pytester, fakes: Path) -> None:
    suite(pytester, {"good": PASSING, "wrong": WRONG}, ini="llmeval_code_sandbox = broken\n")
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(f"--llmeval-output={out}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*2 error*"])
    got = samples(out)
    assert {k: s["outcome"] for k, s in got.items()} == {"good": "error", "wrong": "error"}
    assert "SandboxError: the broken sandbox cannot start" in got["good"]["reason"]
    assert "code" not in got["good"]


def test_a_provider_from_another_package_runs_the_programs_in_parallel_while_the_model_generates(
    pytester: pytest.Pytester, fakes: Path
) -> None:
    """Six cases, two per model call: the prefetch pass starts each chunk's programs as soon as the
    chunk is stored, so runs are in flight together, and before the model's next call."""
    programs = {f"c{i}": (PASSING if i % 2 else WRONG) + f"# c{i}\n" for i in range(6)}  # distinct: one run each
    suite(pytester, programs, ini="llmeval_code_sandbox = counting\nllmeval_code_workers = 4\n", model="program:2")
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(f"--llmeval-output={out}", "-p", "no:randomly")
    assert result.ret == 0, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*3 passed*3 missed*"])
    runs = code_fakes.events(fakes, "run")
    assert len(runs) == 6  # one run per case: each item took its prefetched run
    assert max(r["max_active"] for r in runs) >= 2
    generate = code_fakes.events(fakes, "generate")
    assert [g["n"] for g in generate] == [2, 2, 2]
    assert generate[1]["runs_started"] >= 1  # the first chunk's programs ran while the model generated the next
    assert {s["code"][0]["sandbox"] for s in samples(out).values()} == {"counting"}


def test_with_one_worker_runs_never_overlap(pytester: pytest.Pytester, fakes: Path) -> None:
    suite(pytester, {f"c{i}": PASSING + f"# c{i}\n" for i in range(3)}, ini="llmeval_code_sandbox = counting\n")
    result = pytester.runpytest_subprocess("--llmeval-code-workers=1")
    assert result.ret == 0, result.stdout.str()[-3000:]
    runs = code_fakes.events(fakes, "run")
    assert len(runs) == 3 and max(r["max_active"] for r in runs) == 1


def test_an_unknown_sandbox_names_the_installed_ones(pytester: pytest.Pytester, fakes: Path) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--llmeval-code-sandbox=docker")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: llmeval: --llmeval-code-sandbox: expected one of broken, bwrap, counting, none, got 'docker'"])


def test_pass_at_k_of_a_code_suite_comes_from_its_repeated_samples(pytester: pytest.Pytester, fakes: Path) -> None:
    """Four samples a case; the scripted model's sample r is program r of the case's prompt. Each
    sample is scored by its own run's verdict, and the suite's pass@k is the unbiased estimate
    from each case's passes. The 16 samples hold two distinct programs: identical jobs in flight
    share one run."""
    passes = {"always": 4, "half": 2, "once": 1, "never": 0}
    programs = {
        case: code_fakes.NEXT_SAMPLE.join([PASSING] * n + [WRONG] * (4 - n)) for case, n in passes.items()
    }
    suite(pytester, programs, ini="llmeval_code_sandbox = counting\nllmeval_code_workers = 4\nllmeval_repeats = 4\n")
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(f"--llmeval-output={out}", "--llmeval-pass-k=2", "-p", "no:randomly")
    assert result.ret == 0, result.stdout.str()[-3000:]
    # pass@2 = mean(1, 1 - C(2,2)/C(4,2), 1 - C(3,2)/C(4,2), 0) = mean(1, 5/6, 1/2, 0)
    result.stdout.fnmatch_lines(["*test_code: 16 samples of 4 cases (k=4); mean 43.8%*pass@1 43.8%, pass@2 58.3%, pass@4 75.0%*"])
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    outcomes = {(r["id"], r["repeat"]): (r["outcome"], r["code"][0]["status"]) for r in rows}
    assert outcomes == {
        (case, r): ("pass", "passed") if r < n else ("fail", "failed") for case, n in passes.items() for r in range(4)
    }
    suite_result = json.loads((out / "results.json").read_text())["suites"]["test_code.py::test_code"]
    assert suite_result["repeats"]["pass_at_k"] == pytest.approx({"1": 7 / 16, "2": (1 + 5 / 6 + 1 / 2) / 4, "4": 0.75})
    assert suite_result["samples"] == {"always": [4, 4], "half": [2, 4], "once": [1, 4], "never": [0, 4]}
    assert suite_result["code"]["runs"] == 16 and suite_result["code"]["statuses"] == {"failed": 9, "passed": 7}
    assert len(code_fakes.events(fakes, "run")) == 2  # PASSING and WRONG, each run once for all its samples


DRY_RUN_BODY = """
import sys, warnings
print("body of", case.id)
warnings.warn("warned by " + case.id)
le.score("seen", 1.0)
if case.id == "skips":
    pytest.skip("skipped by the body")
if case.id == "fails":
    pytest.fail("failed by the body")
if case.id == "exits":
    sys.exit(3)
if case.id == "raises":
    raise ValueError("raised by the body")
case.fields.setdefault("runs", []).append(1)
assert case["runs"] == [1], "the body saw its case changed by an earlier run"
le.assert_code(completion, TESTS, timeout=20)
"""


def test_a_dry_run_leaves_nothing_a_user_sees(pytester: pytest.Pytester, fakes: Path) -> None:
    """The body runs once more in the prefetch pass; its output, warnings, scores, changes to
    its case and whatever it raises there leave no trace: each item ends as it would alone."""
    programs = {"good": PASSING, "wrong": WRONG, "skips": PASSING, "fails": PASSING, "exits": PASSING, "raises": PASSING}
    suite(pytester, programs, body=DRY_RUN_BODY.replace("TESTS", repr(TESTS)), ini="llmeval_code_sandbox = counting\nllmeval_code_workers = 4\n")
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess("-s", "-p", "no:randomly", f"--llmeval-output={out}", "-W", "always::UserWarning")
    text = result.stdout.str()
    for case_id in programs:  # the body's output once per item: the dry run's went nowhere
        assert text.count(f"body of {case_id}\n") == 1, text[-3000:]
    assert "6 warnings" in text.splitlines()[-1], text[-3000:]
    got = samples(out)
    assert {k: s["outcome"] for k, s in got.items()} == {
        "good": "pass", "wrong": "fail", "skips": "skipped", "fails": "error", "exits": "error", "raises": "error",
    }  # fmt: skip
    assert got["good"]["scores"] == {"seen": 1.0}
    runs = code_fakes.events(fakes, "run")
    assert len(runs) == 2 and max(r["max_active"] for r in runs) == 2  # the two that reach assert_code, prefetched


def test_a_body_that_needs_another_fixture_is_not_dry_run(pytester: pytest.Pytester, fakes: Path) -> None:
    body = f"""
    (tmp_path / "seen").write_text(case.id)
    le.assert_code(completion, {TESTS!r}, timeout=20)
    """
    suite(pytester, {f"c{i}": PASSING + f"# c{i}\n" for i in range(4)}, body=body, args="case, completion, tmp_path",
          ini="llmeval_code_sandbox = counting\nllmeval_code_workers = 4\n")  # fmt: skip
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == 0, result.stdout.str()[-3000:]
    runs = code_fakes.events(fakes, "run")
    assert len(runs) == 4 and max(r["max_active"] for r in runs) == 1  # each ran when its item did


def test_xdist_workers_run_the_programs(pytester: pytest.Pytester, fakes: Path) -> None:
    suite(pytester, {f"c{i}": PASSING if i % 2 else WRONG for i in range(6)}, ini="llmeval_code_sandbox = none\n")
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess("-n", "2", f"--llmeval-output={out}")
    assert result.ret == 0, result.stdout.str()[-3000:]
    got = samples(out)
    assert sorted(s["outcome"] for s in got.values()) == ["fail"] * 3 + ["pass"] * 3
    assert all(s["code"][0]["sandbox"] == "none" for s in got.values())
    code = json.loads((out / "results.json").read_text())["suites"]["test_code.py::test_code"]["code"]
    assert code["runs"] == 6
