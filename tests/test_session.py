"""EvalSession: the gate decided from case records, the baseline workflow, and the reports."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_llmeval.results.records import CaseRecord, Outcome
from pytest_llmeval.results.session import EvalSession, GateOptions, RunStatus
from pytest_llmeval.results.samplefile import read_samples

FP = {"prompt": "sha256:p", "dataset": "sha256:d", "num_fewshot": 0, "generation": {"do_sample": False, "max_new_tokens": 8}}


def records(suite: str, n: int, failing=(), errors=(), **kw) -> list[CaseRecord]:
    kw.setdefault("fingerprint", FP)
    return [
        CaseRecord(
            suite=suite,
            case_id=f"c{i:03d}",
            outcome="error" if i in errors else "fail" if i in failing else "pass",  # type: ignore[arg-type]
            reason="KeyError: 'answer'" if i in errors else "wrong" if i in failing else "",
            **kw,
        )
        for i in range(n)
    ]


def run(tmp_path: Path, recs: list[CaseRecord], status: RunStatus | None = None, **opts) -> tuple:
    opts.setdefault("baseline", tmp_path / "baseline.json")
    opts.setdefault("invocation", ("evals",))
    session = EvalSession(GateOptions(rootdir=tmp_path, **opts), cwd=tmp_path)
    session.add_all(recs)
    report = session.finish(status)
    return report, "\n".join(t for t, _ in report.lines())


@pytest.fixture(autouse=True)
def _no_ci_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "evals").mkdir()
    for name in ("test_math.py", "test_qa.py"):
        (tmp_path / "evals" / name).write_text("")
    return tmp_path


MATH = "evals/test_math.py::test_add"
QA = "evals/test_qa.py::test_capitals"


def test_no_records_no_report(tmp_path: Path):
    report, text = run(tmp_path, [])
    assert not report.gate_failed and text == ""
    assert not (tmp_path / "baseline.json").exists()


def test_wrong_answers_alone_do_not_fail_the_gate(project: Path):
    report, text = run(project, records(MATH, 10, failing={1, 2}), baseline=None)
    assert not report.gate_failed
    assert "llmeval: 8 passed, 2 missed in 1 suite" in text
    assert "gate passed" in text


def test_strict_fails_on_wrong_answers(project: Path):
    report, text = run(project, records(MATH, 10, failing={1}), baseline=None, strict=True)
    assert report.gate_failed
    assert f"{MATH}: 1 missed case (--llmeval-strict)" in report.failures


def test_any_error_fails_the_gate(project: Path):
    report, _ = run(project, records(MATH, 10, errors={3}), baseline=None)
    assert report.gate_failed
    assert report.failures == (f"{MATH}: 1 error (a broken test, not a wrong answer)",)


def test_min_pass_rate_from_the_suite_wins_over_the_default(project: Path):
    recs = records(MATH, 10, failing={0, 1, 2}, min_pass_rate=0.9) + records(QA, 10, failing={0, 1, 2})
    report, _ = run(project, recs, baseline=None, min_pass_rate=0.5)
    assert report.failures == (f"{MATH}: pass rate 70.0% is under min_pass_rate 90.0%",)
    report, _ = run(project, records(QA, 10, failing={0, 1, 2}), baseline=None, min_pass_rate=0.75)
    assert report.failures == (f"{QA}: pass rate 70.0% is under min_pass_rate 75.0%",)


def test_missing_baseline_is_not_a_failure_and_says_how_to_record(project: Path):
    report, text = run(project, records(MATH, 5), invocation=("evals", "-k", "add", "-v"))
    assert not report.gate_failed
    assert "no baseline at baseline.json yet" in text
    assert "record one with: pytest evals -v --llmeval-update-baseline" in text
    assert not (project / "baseline.json").exists()


@pytest.mark.parametrize("content, kind", [("", "empty"), ("{oops", "corrupt")])
def test_empty_or_corrupt_baseline_fails_and_is_not_overwritten(project: Path, content: str, kind: str):
    path = project / "baseline.json"
    path.write_text(content)
    report, text = run(project, records(MATH, 5))
    assert report.gate_failed
    assert f"baseline baseline.json is unusable ({kind})" in report.failures
    assert "baseline baseline.json " in text and "re-record it with: pytest evals --llmeval-update-baseline" in text
    assert path.read_text() == content


UNREADABLE = {
    "merge conflict": ("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> other\n", "merge-conflict markers", "resolve the merge conflict"),
    "newer schema": ('{"schema": 999, "suites": {}}\n', "newer than this pytest-llmeval reads", "upgrade pytest-llmeval"),
    "invalid JSON": ('{"schema": 1, "suites": {\n', "is not valid JSON", "fix the file"),
}


@pytest.mark.parametrize("force", [False, True], ids=["plain", "forced"])
@pytest.mark.parametrize("name", list(UNREADABLE))
def test_update_over_an_unreadable_baseline_is_refused_and_keeps_the_file(project: Path, name: str, force: bool):
    content, problem, fix = UNREADABLE[name]
    path = project / "baseline.json"
    path.write_text(content)
    report, text = run(project, records(MATH, 5), update_baseline=True, force=force)
    assert report.gate_failed and not report.recorded
    assert report.failures == ("baseline update refused: baseline.json could not be read (corrupt)",)
    assert f"baseline baseline.json not updated: it {problem}" in text or problem in text
    assert "would drop the suites it holds" in text and fix in text and "--llmeval-update-baseline" in text
    assert path.read_text() == content


def test_update_over_an_empty_baseline_records(project: Path):
    path = project / "baseline.json"
    path.write_text("\n")
    report, _ = run(project, records(MATH, 5), update_baseline=True)
    assert report.recorded == {MATH} and not report.gate_failed
    assert list(json.loads(path.read_text())["suites"]) == [MATH]


def test_lifecycle_record_unchanged_regress_update(project: Path):
    path = project / "baseline.json"
    # record
    report, text = run(project, records(MATH, 200, failing=set(range(40))) + records(QA, 20), update_baseline=True)
    assert not report.gate_failed and report.recorded == {MATH, QA}
    assert "recorded 2 suites in baseline.json (2 new, 0 updated)" in text
    recorded = path.read_text()
    # same results: unchanged, and the file is not touched
    report, text = run(project, records(MATH, 200, failing=set(range(40))) + records(QA, 20))
    assert not report.gate_failed
    assert report.comparisons[MATH].verdict.value == "UNCHANGED"
    assert path.read_text() == recorded
    # a handful flipping both ways: still unchanged
    report, _ = run(project, records(MATH, 200, failing=set(range(3, 40)) | {50, 51, 52, 53}) + records(QA, 20))
    assert not report.gate_failed and report.comparisons[MATH].verdict.value == "UNCHANGED"
    # a drop of 15 points: regressed, and the cases are named
    report, text = run(project, records(MATH, 200, failing=set(range(70))) + records(QA, 20))
    assert report.gate_failed
    assert report.comparisons[MATH].verdict.value == "REGRESSED"
    assert any(f.startswith(f"{MATH}: REGRESSED 80.0% -> 65.0% (-15.0 pts") for f in report.failures)
    assert "newly failing (30): c040, c041" in text
    assert f"re-record with: pytest {MATH} --llmeval-update-baseline" in text
    assert path.read_text() == recorded
    # accept it
    report, text = run(project, records(MATH, 200, failing=set(range(70))) + records(QA, 20), update_baseline=True)
    assert not report.gate_failed
    assert "(0 new, 2 updated)" in text
    report, _ = run(project, records(MATH, 200, failing=set(range(70))) + records(QA, 20))
    assert not report.gate_failed
    assert json.loads(path.read_text())["suites"][MATH]["passed"] == 130


def test_suite_new_to_an_existing_baseline_fails_with_the_command(project: Path):
    run(project, records(MATH, 5), update_baseline=True)
    invocation = ("-n", "2", "evals", "--llmeval-model", "m.gguf")
    report, text = run(project, records(MATH, 5) + records(QA, 5), invocation=invocation, value_flags=frozenset({"--llmeval-model"}))
    assert report.gate_failed
    assert report.failures == (f"{QA}: NEW, not in the baseline",)
    assert f"record with: pytest -n 2 --llmeval-model m.gguf {QA} --llmeval-update-baseline" in text


def test_incomparable_fails_and_names_fields(project: Path):
    run(project, records(MATH, 5), update_baseline=True)
    changed = dict(FP, prompt="sha256:other")
    report, text = run(project, records(MATH, 5, fingerprint=changed))
    assert report.gate_failed
    assert report.failures == (f"{MATH}: INCOMPARABLE with the baseline (prompt differs)",)
    assert "ran with a different prompt than the baseline records" in text
    assert "  prompt: sha256:p -> sha256:other" in text


def test_update_records_only_the_suites_that_ran(project: Path):
    run(project, records(MATH, 5) + records(QA, 5), update_baseline=True)
    before = json.loads((project / "baseline.json").read_text())
    run(project, records(MATH, 5, failing={0}), update_baseline=True, invocation=(f"{MATH}",))
    after = json.loads((project / "baseline.json").read_text())
    assert after["suites"][QA] == before["suites"][QA]
    assert after["suites"][MATH]["cases"]["c000"] == 0


@pytest.mark.parametrize(
    "opts, words",
    [
        ({"narrowed_by": ("-k",)}, "narrowed by -k"),
        ({"narrowed_by": ("--llmeval-limit",), "limit": 3}, "narrowed by --llmeval-limit"),
        ({"limit": 3}, "cut by --llmeval-limit"),
    ],
)
def test_update_refuses_narrowed_runs_unless_forced(project: Path, opts: dict, words: str):
    report, text = run(project, records(MATH, 5), update_baseline=True, **opts)
    assert report.gate_failed and not report.recorded
    assert words in text and "add --llmeval-force to record anyway" in text
    assert not (project / "baseline.json").exists()
    report, text = run(project, records(MATH, 5), update_baseline=True, force=True, **opts)
    assert report.recorded == {MATH} and "forced" in text


def test_update_refuses_runs_with_errors_unless_forced(project: Path):
    report, text = run(project, records(MATH, 5, errors={2}), update_baseline=True)
    assert not report.recorded
    assert "1 case errored" in text and "fix the errors and re-run" in text
    report, _ = run(project, records(MATH, 5, errors={2}), update_baseline=True, force=True)
    assert report.recorded == {MATH}
    assert report.gate_failed  # the error itself still fails the gate
    entry = json.loads((project / "baseline.json").read_text())["suites"][MATH]
    assert entry["errors"] == 1 and entry["cases"]["c002"] == 0


def test_update_without_a_baseline_path(project: Path):
    report, text = run(project, records(MATH, 5), update_baseline=True, baseline=None)
    assert report.gate_failed and "no baseline file is configured" in text and "--llmeval-baseline=PATH" in text


def test_stale_entries_respect_selection(project: Path):
    old = "evals/test_math.py::test_removed"
    gone = "evals/test_deleted.py::test_x"
    other = "evals/test_qa.py::test_other"
    run(project, records(MATH, 3) + records(old, 3) + records(gone, 3) + records(other, 3), update_baseline=True)
    report, text = run(project, records(MATH, 3))
    # test_math.py ran without test_removed; test_deleted.py is gone; test_qa.py did not run
    assert report.stale == (gone, old)
    assert not report.gate_failed
    assert f"python -m pytest_llmeval prune baseline.json {gone} {old}" in text
    # narrowed by -k: only the deleted file counts
    report, _ = run(project, records(MATH, 3), narrowed_by=("-k",))
    assert report.stale == (gone,)
    # a node id picked one test of the file
    report, _ = run(project, records(MATH, 3), invocation=(MATH,))
    assert report.stale == (gone,)


def test_limited_run_warns(project: Path):
    _, text = run(project, records(MATH, 3, limited=True), baseline=None, limit=3)
    assert "cut by --llmeval-limit" in text and "run without --llmeval-limit" in text


def test_same_report_in_any_arrival_order(project: Path):
    recs = records(MATH, 50, failing={1, 5, 9}) + records(QA, 30, failing={2}, errors={7})
    run(project, recs, update_baseline=True, force=True)
    first, first_text = run(project, recs, output_dir=project / "out1")
    shuffled = list(recs)
    random.Random(4).shuffle(shuffled)
    second, second_text = run(project, shuffled, output_dir=project / "out2")
    assert first_text == second_text
    a = json.loads((project / "out1" / "results.json").read_text())
    b = json.loads((project / "out2" / "results.json").read_text())
    for data in (a, b):
        data.pop("timings")
    assert a == b
    assert (project / "out1" / "samples.jsonl").read_text() == (project / "out2" / "samples.jsonl").read_text()


def test_reports_are_written(project: Path, monkeypatch: pytest.MonkeyPatch):
    summary = project / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    recs = records(MATH, 4, failing={1}, prompt="2+2?", completion="5", tokens_in=3, tokens_out=1, latency_s=0.01, scores={"f1": 0.5})
    report, _ = run(project, recs, baseline=None, output_dir=project / "out", markdown=project / "pr.md")
    assert not report.gate_failed
    data = json.loads((project / "out" / "results.json").read_text())
    suite = data["suites"][MATH]
    assert (suite["n"], suite["passed"], suite["failed"]) == (4, 3, 1)
    assert suite["cases"]["c001"] == "fail" and suite["metrics"] == {"f1": 0.5}
    assert suite["fingerprint"] == FP and len(suite["ci"]) == 2
    assert set(data["versions"]) >= {"python", "pytest", "torch", "transformers", "pytest-llmeval"}
    assert "session_s" in data["timings"]
    lines = read_samples(project / "out" / "samples.jsonl")
    assert len(lines) == 4
    sample = lines[1]
    assert sample["id"] == "c001" and sample["outcome"] == "fail" and sample["reason"] == "wrong"
    assert sample["prompt"] == "2+2?" and sample["completion"] == "5" and sample["tokens_out"] == 1
    md = (project / "pr.md").read_text()
    assert "gate passed" in md and f"`{MATH}`" in md
    assert summary.read_text().startswith("earlier step\n") and "gate passed" in summary.read_text()


def test_unwritable_outputs_become_messages(project: Path):
    blocker = project / "not-a-dir"
    blocker.write_text("")
    report, text = run(project, records(MATH, 2), baseline=None, output_dir=blocker / "out")
    assert report.gate_failed
    assert "could not write reports to not-a-dir/out" in text


def test_records_may_arrive_as_json(project: Path):
    session = EvalSession(GateOptions(rootdir=project), cwd=project)
    session.add(records(MATH, 1)[0].to_json())
    assert session.finish().suites[0].n == 1


# ---------------------------------------------------------------- runs that did not finish


def sized(suite: str, n: int, ran: range | list[int], **kw) -> list[CaseRecord]:
    """Records of the cases in ``ran`` of a suite that has ``n`` cases."""
    return [r for i, r in enumerate(records(suite, n, suite_size=n, **kw)) if i in ran]


def test_update_refuses_a_suite_with_deselected_cases_unless_forced(project: Path):
    path = project / "baseline.json"
    run(project, records(MATH, 6, suite_size=6) + records(QA, 4, suite_size=4), update_baseline=True)
    before = path.read_text()
    status = RunStatus(selected={MATH: 5, QA: 4})  # --deselect 'evals/test_math.py::test_add[c005]'
    recs = sized(MATH, 6, range(5), failing={0}) + sized(QA, 4, range(4))
    report, text = run(project, recs, update_baseline=True, status=status)
    assert report.gate_failed and not report.recorded
    assert f"1 suite did not run every case: {MATH} (5 of 6 cases ran: 1 deselected)" in text
    assert "re-run the whole suite, or add --llmeval-force to record anyway" in text
    assert path.read_text() == before
    report, text = run(project, recs, update_baseline=True, force=True, status=status)
    assert report.recorded == {MATH, QA} and "forced: 1 suite did not run every case" in text


def test_update_refuses_a_run_stopped_early(project: Path):
    status = RunStatus(stopped_early=True, selected={MATH: 10, QA: 4})
    recs = sized(MATH, 10, range(3), failing={2})  # -x: stopped at the first miss, QA never started
    report, text = run(project, recs, update_baseline=True, status=status)
    assert not report.recorded and not (project / "baseline.json").exists()
    assert "2 suites did not run every case" in text
    assert f"{MATH} (3 of 10 cases ran: 7 stopped early)" in text and f"{QA} (0 of 4 cases ran: 4 stopped early)" in text
    # without an update it is a warning, not a failed gate: the verdict covers what ran
    report, text = run(project, recs, status=status)
    assert not report.gate_failed
    assert "the run stopped early (-x / --maxfail): 11 selected cases did not run" in text


@pytest.mark.parametrize("force", [False, True], ids=["plain", "forced"])
def test_an_interrupted_run_never_writes_the_baseline(project: Path, force: bool):
    path = project / "baseline.json"
    run(project, records(MATH, 10, suite_size=10), update_baseline=True)
    before = path.read_text()
    status = RunStatus(interrupted=True, selected={MATH: 10})
    report, text = run(project, sized(MATH, 10, range(4), failing={0, 1, 2, 3}), update_baseline=True, force=force, status=status)
    assert not report.recorded and path.read_text() == before
    assert f"baseline baseline.json not updated: the run was interrupted: {MATH} (4 of 10 cases ran: 6 interrupted)" in text
    assert "an interrupted run never writes the baseline" in text
    assert report.failures[0] == "baseline update refused: the run was interrupted"


def test_an_interrupted_run_fails_the_gate_and_says_so_in_results_json(project: Path):
    status = RunStatus(interrupted=True, selected={MATH: 10})
    report, text = run(project, sized(MATH, 10, range(4)), baseline=None, output_dir=project / "out", status=status)
    assert report.gate_failed and report.interrupted
    assert report.failures == ("the run was interrupted: 6 selected cases did not run",)
    data = json.loads((project / "out" / "results.json").read_text())
    assert data["interrupted"] is True and data["gate"]["failed"] is True and data["run"]["interrupted"] is True


def test_an_interrupted_run_before_any_result_still_writes_its_report(project: Path):
    report, _ = run(project, [], baseline=None, output_dir=project / "out", status=RunStatus(interrupted=True, selected={MATH: 3}))
    data = json.loads((project / "out" / "results.json").read_text())
    assert data["interrupted"] is True and data["gate"]["failed"] is True and data["suites"] == {}


def test_a_complete_run_with_suite_sizes_records(project: Path):
    report, _ = run(project, records(MATH, 6, suite_size=6), update_baseline=True, status=RunStatus(selected={MATH: 6}))
    assert report.recorded == {MATH} and not report.gate_failed


# ---------------------------------------------------------------- skipped and xfailed cases


def test_skipped_and_xfailed_cases_are_counted_apart_and_not_recorded_as_passes(project: Path):
    recs = records(MATH, 10, failing={1}, suite_size=10)
    recs[8] = replace(recs[8], outcome=Outcome.SKIPPED, reason="no GPU")
    recs[9] = replace(recs[9], outcome=Outcome.XFAILED, reason="known bug")
    report, text = run(project, recs, update_baseline=True, output_dir=project / "out")
    assert report.recorded == {MATH}
    (suite,) = report.suites
    assert (suite.n, suite.passed, suite.failed, suite.skipped, suite.xfailed) == (8, 7, 1, 1, 1)
    assert suite.pass_rate == 7 / 8
    assert "llmeval: 7 passed, 1 missed, 1 skipped, 1 xfailed in 1 suite" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("suite "))
    assert header.split()[:7] == ["suite", "n", "pass", "miss", "err", "skip", "rate"]
    assert next(line for line in lines if line.startswith(MATH)).split()[1:7] == ["8", "7", "1", "0", "2", "87.5%"]
    assert "(skip: skipped and xfailed cases, not counted in n or the rate)" in lines
    entry = json.loads((project / "baseline.json").read_text())["suites"][MATH]
    assert set(entry["cases"]) == {f"c{i:03d}" for i in range(8)}
    assert (entry["n"], entry["passed"], entry["skipped"], entry["xfailed"]) == (8, 7, 1, 1)
    data = json.loads((project / "out" / "results.json").read_text())
    assert data["summary"]["skipped"] == 1 and data["summary"]["xfailed"] == 1
    assert data["suites"][MATH]["not_counted"] == {"c008": "skipped", "c009": "xfailed"}
    assert "c008" not in data["suites"][MATH]["cases"]


def test_a_case_that_passed_and_then_errored_in_teardown_is_an_error(project: Path):
    passed = records(MATH, 3, suite_size=3)
    teardown = replace(passed[1], outcome=Outcome.ERROR, reason="RuntimeError: fixture teardown failed")
    report, _ = run(project, passed + [teardown], update_baseline=True, force=True)
    (suite,) = report.suites
    assert (suite.passed, suite.errors) == (2, 1) and report.gate_failed
    assert json.loads((project / "baseline.json").read_text())["suites"][MATH]["cases"]["c001"] == 0


def test_a_suite_whose_every_case_was_skipped_keeps_its_baseline_entry(project: Path):
    path = project / "baseline.json"
    run(project, records(MATH, 4, failing={0}) + records(QA, 2), update_baseline=True)
    before = json.loads(path.read_text())
    skipped = [replace(r, outcome=Outcome.SKIPPED, reason="needs a GPU") for r in records(MATH, 4)]
    report, text = run(project, skipped + records(QA, 2, failing={1}), update_baseline=True)
    assert report.recorded == {QA} and not report.gate_failed
    assert f"not recorded, every case skipped or xfailed: {MATH}" in text
    after = json.loads(path.read_text())
    assert after["suites"][MATH] == before["suites"][MATH] and after["suites"][QA]["cases"]["c001"] == 0
    # compared again, a skipped suite has no verdict (not INCOMPARABLE, not NEW)
    report, text = run(project, skipped + records(QA, 2, failing={1}))
    assert MATH not in report.comparisons and not report.gate_failed
    assert next(line for line in text.splitlines() if line.startswith(MATH)).split()[1:7] == ["0", "0", "0", "0", "4", "-"]


def test_a_read_only_baseline_is_not_replaced_and_the_message_says_how(project: Path, monkeypatch: pytest.MonkeyPatch):
    import os
    import stat

    path = project / "baseline.json"
    run(project, records(MATH, 3), update_baseline=True)
    os.chmod(path, 0o444)
    before = path.read_text()
    real_access = os.access  # as root every file is writable: answer as the mode says for a user
    monkeypatch.setattr(os, "access", lambda p, m, **kw: False if Path(p) == path and m == os.W_OK else real_access(p, m, **kw))
    report, text = run(project, records(MATH, 3, failing={0}), update_baseline=True)
    assert report.failures == ("baseline baseline.json could not be written",) and not report.recorded
    assert "baseline baseline.json not updated: the file is read-only" in text
    assert "make it writable (chmod u+w baseline.json), then re-run with --llmeval-update-baseline" in text
    assert path.read_text() == before and stat.S_IMODE(os.stat(path).st_mode) == 0o444


def test_a_run_stopped_early_is_refused_even_when_no_suite_is_known_to_lack_cases(project: Path):
    # under xdist the controller may not know which suites were selected: -x alone refuses
    report, text = run(project, records(MATH, 3), update_baseline=True, status=RunStatus(stopped_early=True))
    assert not report.recorded and "the run stopped early (-x / --maxfail), so selected cases may not have run" in text
    assert "the run stopped early (-x / --maxfail); rates and verdicts cover only the cases that ran" in text
    report, _ = run(project, records(MATH, 3), update_baseline=True, force=True, status=RunStatus(stopped_early=True))
    assert report.recorded == {MATH}
