"""The gate in real pytest runs: exit status, baseline lifecycle, xdist, reports.

The eval suites here need no model: which cases "the model gets wrong" is read from a file
next to the test, so the dataset (and so the fingerprint) stays the same between runs.
"""

from __future__ import annotations

import json

import pytest
from pytest_llmeval.results.samplefile import read_samples

pytest_plugins = ["pytester"]

EVALS = """
import pathlib
import pytest_llmeval as le

BROKEN = set(pathlib.Path(__file__).with_name("broken.txt").read_text().split())

@le.cases([{"id": f"q{i:03d}", "x": i} for i in range(60)])
def test_answers(case):
    le.score("x_small", float(case["x"] < 30))
    assert case["id"] not in BROKEN

def test_plain():
    assert True
"""

BASELINE = "llmeval-baseline.json"
SUITE = "test_evals.py::test_answers"


@pytest.fixture(autouse=True)
def _no_ci_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(f"[pytest]\nllmeval_baseline = {BASELINE}\nllmeval_history = off\n")
    pytester.makepyfile(test_evals=EVALS)
    broken(pytester, range(10))
    return pytester


def broken(pytester: pytest.Pytester, ids) -> None:
    (pytester.path / "broken.txt").write_text(" ".join(f"q{i:03d}" for i in ids))


def baseline_of(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / BASELINE).read_text())


def test_wrong_answers_alone_keep_exit_0_and_are_counted_as_missed(project: pytest.Pytester):
    result = project.runpytest()
    assert result.ret == 0
    assert result.parseoutcomes()["missed"] == 10
    result.stdout.fnmatch_lines(
        [
            "*llmeval: 50 passed, 10 missed in 1 suite*",
            "suite * n * pass * miss * err * rate * 95% CI * min * baseline",
            f"{SUITE} * 60 * 50 * 10 * 0 * 83.3% *",
            f"*no baseline at {BASELINE} yet*",
            "*record one with: pytest*--llmeval-update-baseline",
            "*llmeval gate passed*",
        ]
    )
    assert not (project.path / BASELINE).exists()


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_lifecycle(project: pytest.Pytester, xdist: tuple[str, ...]):
    # record
    result = project.runpytest(*xdist, "--llmeval-update-baseline")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([f"*recorded 1 suite in {BASELINE} (1 new, 0 updated)*"])
    recorded = baseline_of(project)["suites"][SUITE]
    assert (recorded["n"], recorded["passed"], recorded["failed"]) == (60, 50, 10)
    assert recorded["cases"]["q000"] == 0 and recorded["cases"]["q010"] == 1
    text = (project.path / BASELINE).read_text()

    # unchanged
    result = project.runpytest(*xdist)
    assert result.ret == 0
    # 60 cases cannot detect a drop of the 2-point tolerance: the verdict says what they can detect
    result.stdout.fnmatch_lines([f"{SUITE} * UNCHANGED +0.0 pts (p=1.00; n=60 can only detect drops of 10+ pts at alpha 0.05)"])
    assert (project.path / BASELINE).read_text() == text

    if not xdist:  # noise: two cases flip each way (serial only, to keep the test short)
        broken(project, [*range(2, 10), 40, 41])
        result = project.runpytest()
        assert result.ret == 0
        result.stdout.fnmatch_lines([f"{SUITE} * UNCHANGED +0.0 pts*", "*newly failing (2): q040, q041*", "*newly passing (2): q000, q001*"])

    # a real regression
    broken(project, range(30))
    result = project.runpytest(*xdist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"{SUITE} * 60 * 30 * 30 * 0 * 50.0% * REGRESSED -33.3 pts (p<0.001)",
            f"{SUITE}: REGRESSED 83.3% -> 50.0% on 60 shared cases*",
            "*newly failing (20): q010, q011, q012*... and 10 more",
            f"*re-record with: pytest*{SUITE} --llmeval-update-baseline",
            "*llmeval gate FAILED (1):*",
            f"*{SUITE}: REGRESSED 83.3% -> 50.0%*",
        ]
    )
    assert (project.path / BASELINE).read_text() == text

    # accept it, then pass again
    result = project.runpytest(*xdist, "--llmeval-update-baseline")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*recorded 1 suite in * (0 new, 1 updated)*"])
    assert baseline_of(project)["suites"][SUITE]["passed"] == 30
    result = project.runpytest(*xdist)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*llmeval gate passed*"])


def test_xdist_and_serial_record_the_same_baseline(project: pytest.Pytester):
    project.runpytest("--llmeval-update-baseline")
    serial = (project.path / BASELINE).read_text()
    (project.path / BASELINE).unlink()
    result = project.runpytest("-n", "2", "--llmeval-update-baseline")
    assert result.ret == 0
    assert (project.path / BASELINE).read_text() == serial


def test_corrupt_baseline_fails_with_a_clear_message_and_is_kept(project: pytest.Pytester):
    (project.path / BASELINE).write_text('{"schema": 1,\n "suites": {\n')
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"baseline {BASELINE} is not valid JSON*line 3*",
            "*fix the file, or move it away and re-record it with: pytest*--llmeval-update-baseline",
            f"*baseline {BASELINE} is unusable (corrupt)*",
        ]
    )
    assert (project.path / BASELINE).read_text() == '{"schema": 1,\n "suites": {\n'


def test_k_narrowed_update_is_refused_unless_forced(project: pytest.Pytester):
    result = project.runpytest("-k", "q00", "--llmeval-update-baseline")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"baseline {BASELINE} not updated: the selection was narrowed by -k*", "*--llmeval-force*"])
    assert not (project.path / BASELINE).exists()
    result = project.runpytest("-k", "q00", "--llmeval-update-baseline", "--llmeval-force")
    assert result.ret == 0
    assert baseline_of(project)["suites"][SUITE]["n"] == 10


def test_limit_blocks_update(project: pytest.Pytester):
    result = project.runpytest("--llmeval-limit", "5", "--llmeval-update-baseline")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*not updated*--llmeval-limit*"])
    assert not (project.path / BASELINE).exists()


def test_strict_fails_on_wrong_answers(project: pytest.Pytester):
    result = project.runpytest("--llmeval-strict")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"*{SUITE}: 10 missed cases (--llmeval-strict)*"])


def test_new_suite_in_an_existing_baseline_fails_with_the_command(project: pytest.Pytester):
    project.runpytest("--llmeval-update-baseline")
    project.makepyfile(
        test_more="""
        import pytest_llmeval as le

        @le.cases([{"id": "a"}, {"id": "b"}])
        def test_more(case):
            pass
        """
    )
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "test_more.py::test_more * NEW",
            f"1 suite is not in the baseline {BASELINE} (NEW): test_more.py::test_more",
            "*record with: pytest*test_more.py::test_more --llmeval-update-baseline",
        ]
    )
    result = project.runpytest("test_more.py::test_more", "--llmeval-update-baseline")
    assert result.ret == 0
    assert set(baseline_of(project)["suites"]) == {SUITE, "test_more.py::test_more"}
    assert project.runpytest().ret == 0


def test_errors_and_min_pass_rate_fail_the_gate(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "ok": True}, {"id": "b", "ok": False}], min_pass_rate=0.9)
        def test_rate(case):
            assert case["ok"]

        @le.cases([{"id": "a"}, {"id": "b"}])
        def test_broken(case):
            case["missing_field"]
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*llmeval gate FAILED (2):*",
            "*test_rate: pass rate 50.0% is under min_pass_rate 90.0%*",
        ]
    )
    result.stdout.fnmatch_lines(["*test_broken: 2 errors (a broken test, not a wrong answer)*"])


def test_reports_and_junit_properties(project: pytest.Pytester):
    result = project.runpytest("--llmeval-output", "out", "--llmeval-markdown", "summary.md", "--junitxml", "junit.xml")
    assert result.ret == 0
    data = json.loads((project.path / "out" / "results.json").read_text())
    suite = data["suites"][SUITE]
    assert (suite["n"], suite["passed"], suite["failed"]) == (60, 50, 10)
    assert suite["metrics"] == {"x_small": 0.5}
    assert suite["cases"]["q000"] == "fail"
    samples = read_samples(project.path / "out" / "samples.jsonl")
    assert len(samples) == 60 and samples[0]["id"] == "q000" and samples[0]["outcome"] == "fail"
    assert "gate passed" in (project.path / "summary.md").read_text()
    junit = (project.path / "junit.xml").read_text()
    assert f'name="llmeval.{SUITE}.pass_rate" value="0.8333"' in junit


def test_compare_two_runs(project: pytest.Pytester):
    project.runpytest("--llmeval-output", "before")
    broken(project, range(30))
    project.runpytest("--llmeval-output", "after")
    from pytest_llmeval.__main__ import main

    assert main(["compare", str(project.path / "before"), str(project.path / "after")]) == 1
    assert main(["compare", str(project.path / "after"), str(project.path / "before")]) == 0


def test_suite_ids_do_not_move_with_the_rootdir(project: pytest.Pytester):
    """--rootdir (or an argument that moves it) renames no suite: ids are relative to the ini file."""
    sub = project.mkdir("sub")
    (project.path / "test_evals.py").rename(sub / "test_evals.py")
    (project.path / "broken.txt").rename(sub / "broken.txt")
    result = project.runpytest("sub", "--llmeval-update-baseline")
    assert result.ret == 0
    assert list(baseline_of(project)["suites"]) == ["sub/test_evals.py::test_answers"]
    result = project.runpytest("sub", f"--rootdir={sub}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["sub/test_evals.py::test_answers *UNCHANGED*"])
    result.stdout.no_fnmatch_line("*no longer exist*")
    result.stdout.no_fnmatch_line("*NEW*")
