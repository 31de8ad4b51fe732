"""Every outcome counted as what it is, and a baseline update that loses nothing, in real runs:
skipped, xfailed and teardown errors; -x, --deselect and Ctrl-C during an update.

The eval suite needs no model: which cases "the model gets wrong" is read from a file next to
the test, and a case can be told to skip, to be expected to fail, to break in teardown, or to
interrupt the run.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import pytest

pytest_plugins = ["pytester"]

EVALS = """
import pathlib
import pytest
import pytest_llmeval as le

HERE = pathlib.Path(__file__).parent
BROKEN = set((HERE / "broken.txt").read_text().split())
ACTIONS = dict(line.split() for line in (HERE / "actions.txt").read_text().splitlines() if line.strip())

@pytest.fixture
def teardown_check(case):
    yield
    if ACTIONS.get(case["id"]) == "teardown-error":
        raise RuntimeError("fixture teardown failed")

@le.cases([{"id": f"q{i:03d}"} for i in range(20)])
def test_answers(case, teardown_check):
    action = ACTIONS.get(case["id"])
    if action == "skip":
        pytest.skip("needs a GPU")
    if action == "xfail":
        pytest.xfail("known bug")
    if action == "interrupt":
        raise KeyboardInterrupt
    assert case["id"] not in BROKEN

@le.cases([{"id": "a"}, {"id": "b"}])
def test_other(case):
    pass
"""

BASELINE = "llmeval-baseline.json"
SUITE = "test_evals.py::test_answers"
OTHER = "test_evals.py::test_other"


@pytest.fixture(autouse=True)
def _no_ci_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(f"[pytest]\nllmeval_baseline = {BASELINE}\nllmeval_history = history.sqlite\n")
    pytester.makepyfile(test_evals=EVALS)
    set_up(pytester, broken=range(3))
    return pytester


def set_up(pytester: pytest.Pytester, broken=(), **actions: str) -> None:
    (pytester.path / "broken.txt").write_text(" ".join(f"q{i:03d}" for i in broken))
    (pytester.path / "actions.txt").write_text("".join(f"{case} {action}\n" for case, action in actions.items()))


def baseline_text(pytester: pytest.Pytester) -> str:
    return (pytester.path / BASELINE).read_text()


def record(pytester: pytest.Pytester) -> str:
    result = pytester.runpytest("--llmeval-update-baseline")
    assert result.ret == 0, result.stdout.str()
    return baseline_text(pytester)


def test_skipped_and_xfailed_cases_are_counted_and_not_recorded(project: pytest.Pytester):
    set_up(project, broken=range(3), q010="skip", q011="xfail")
    result = project.runpytest("--llmeval-update-baseline", "--llmeval-output", "out")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "llmeval: 17 passed, 3 missed, 1 skipped, 1 xfailed in 2 suites",
            "suite * n * pass * miss * err * skip * rate *",
            f"{SUITE} * 18 * 15 * 3 * 0 * 2 * 83.3% *",
            "(skip: skipped and xfailed cases, not counted in n or the rate)",
        ]
    )
    entry = json.loads(baseline_text(project))["suites"][SUITE]
    assert (entry["n"], entry["passed"], entry["skipped"], entry["xfailed"]) == (18, 15, 1, 1)
    assert "q010" not in entry["cases"] and "q011" not in entry["cases"]
    data = json.loads((project.path / "out" / "results.json").read_text())
    assert data["suites"][SUITE]["not_counted"] == {"q010": "skipped", "q011": "xfailed"}


def test_a_teardown_error_after_a_pass_is_an_error(project: pytest.Pytester):
    set_up(project, q005="teardown-error")
    result = project.runpytest("--llmeval-update-baseline")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"{SUITE} * 20 * 19 * 0 * 1 * 95.0% *",
            "*llmeval gate FAILED*",
            f"*{SUITE}: 1 error (a broken test, not a wrong answer)*",
        ]
    )
    assert not (project.path / BASELINE).exists()  # an update with errors is refused


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_an_update_with_deselected_cases_is_refused_unless_forced(project: pytest.Pytester, xdist: tuple[str, ...]):
    recorded = record(project)
    set_up(project, broken=range(6))
    deselect = ("--deselect", f"{SUITE}[q019]")
    result = project.runpytest(*xdist, *deselect, "--llmeval-update-baseline")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"baseline {BASELINE} not updated: *1 suite did not run every case: {SUITE} (19 of 20 cases ran*"])
    assert baseline_text(project) == recorded
    result = project.runpytest(*xdist, *deselect, "--llmeval-update-baseline", "--llmeval-force")
    assert result.ret == 0
    assert json.loads(baseline_text(project))["suites"][SUITE]["n"] == 19


def test_an_update_stopped_by_x_is_refused(project: pytest.Pytester):
    recorded = record(project)
    set_up(project, broken=[1], q002="teardown-error")  # a miss does not stop -x; an error does
    result = project.runpytest("-x", "--llmeval-update-baseline")
    result.stdout.fnmatch_lines([f"baseline {BASELINE} not updated: *2 suites did not run every case: {SUITE} (3 of 20 cases ran: 17 stopped early), {OTHER} (0 of 2*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert baseline_text(project) == recorded
    assert "no longer exist" not in result.stdout.str()  # test_other did not run, it was not removed


@pytest.mark.parametrize("force", [(), ("--llmeval-force",)], ids=["plain", "forced"])
def test_an_interrupted_update_writes_nothing_and_is_marked(project: pytest.Pytester, force: tuple[str, ...]):
    recorded = record(project)
    set_up(project, broken=range(10), q012="interrupt")
    result = project.runpytest("--llmeval-update-baseline", *force, "--llmeval-output", "out", no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"baseline {BASELINE} not updated: the run was interrupted*", "*llmeval gate FAILED*"])
    assert baseline_text(project) == recorded
    data = json.loads((project.path / "out" / "results.json").read_text())
    assert data["interrupted"] is True and data["gate"]["failed"] is True
    with closing(sqlite3.connect(project.path / "history.sqlite")) as conn:
        assert [r[0] for r in conn.execute("SELECT interrupted FROM runs ORDER BY seq")] == [0, 1]
