"""``python -m pytest_llmeval compare A B`` on results.json files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmeval.__main__ import main
from pytest_llmeval.cli.compare import exit_code
from pytest_llmeval.results.compare import compare_runs, load_results, ResultsError
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.session import EvalSession, GateOptions

FP = {"prompt": "sha256:p", "dataset": "sha256:d", "num_fewshot": 0, "generation": {"max_new_tokens": 8}, "model": "sha256:m1"}


def write_results(path: Path, suites: dict[str, set[int]], n: int = 200, **kw) -> Path:
    """Run an EvalSession over synthetic records and keep its results.json."""
    fingerprint = kw.pop("fingerprint", FP)
    out = path.parent / (path.name + ".out")
    session = EvalSession(GateOptions(rootdir=path.parent, output_dir=out), cwd=path.parent)
    for suite, failing in suites.items():
        for i in range(n):
            session.add(CaseRecord(suite, f"c{i:03d}", "fail" if i in failing else "pass", fingerprint=fingerprint, **kw))
    session.finish()
    (out / "results.json").replace(path)
    return path


@pytest.fixture(autouse=True)
def _no_ci_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


A_SUITE = "evals/test_a.py::test_a"
B_SUITE = "evals/test_b.py::test_b"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unchanged(tmp_path: Path, capsys):
    a = write_results(tmp_path / "a.json", {A_SUITE: set(range(40))})
    b = write_results(tmp_path / "b.json", {A_SUITE: set(range(3, 40)) | {100, 101}})
    code, out, _ = cli(capsys, str(a), str(b))
    assert code == 0
    assert out.strip().endswith("UNCHANGED: no significant difference")
    assert "80.0% [" in out and "n=200" in out


def test_keep(tmp_path: Path, capsys):
    a = write_results(tmp_path / "a.json", {A_SUITE: set(range(60)), B_SUITE: set(range(10))})
    b = write_results(tmp_path / "b.json", {A_SUITE: set(range(20)), B_SUITE: set(range(10))})
    code, out, _ = cli(capsys, str(a), str(b))
    assert code == 0
    assert f"KEEP: better: {A_SUITE}; nothing significantly worse" in out
    assert "newly passing in B (40): c020, c021" in out


def test_discard_names_the_regression(tmp_path: Path, capsys):
    a = write_results(tmp_path / "a.json", {A_SUITE: set(range(40))})
    b = write_results(tmp_path / "b.json", {A_SUITE: set(range(70))})
    code, out, _ = cli(capsys, str(a), str(b))
    assert code == 1
    assert f"DISCARD: significantly worse: {A_SUITE}" in out
    assert "-15.0 pts" in out and "p<0.001" in out
    assert "newly failing in B (30): c040" in out


def test_mixed_names_both_sides_and_fail_on(tmp_path: Path, capsys):
    a = write_results(tmp_path / "a.json", {A_SUITE: set(range(40)), B_SUITE: set()})
    b = write_results(tmp_path / "b.json", {A_SUITE: set(), B_SUITE: set(range(40))})
    code, out, _ = cli(capsys, str(a), str(b))
    assert code == 2
    assert f"MIXED: better: {A_SUITE}; worse: {B_SUITE}" in out
    assert cli(capsys, str(a), str(b), "--fail-on", "discard")[0] == 0
    assert cli(capsys, str(a), str(b), "--fail-on", "never")[0] == 0


def test_tolerance_and_alpha_options(tmp_path: Path, capsys):
    a = write_results(tmp_path / "a.json", {A_SUITE: set(range(40))})
    b = write_results(tmp_path / "b.json", {A_SUITE: set(range(70))})
    assert cli(capsys, str(a), str(b), "--tolerance", "0.2")[0] == 0
    assert cli(capsys, str(a), str(b), "--alpha", "1e-12")[0] == 0
    code, _, err = cli(capsys, str(a), str(b), "--tolerance", "5")
    assert code == 3 and "between 0 and 1" in err


def test_incomparable_is_refused_unless_forced(tmp_path: Path, capsys):
    a = write_results(tmp_path / "a.json", {A_SUITE: set(range(40))})
    b = write_results(tmp_path / "b.json", {A_SUITE: set(range(70))}, fingerprint=dict(FP, prompt="sha256:q"))
    code, out, _ = cli(capsys, str(a), str(b))
    assert code == 3
    assert "INCOMPARABLE" in out and "prompt" in out and "--force" in out
    assert cli(capsys, str(a), str(b), "--force")[0] == 1


def test_a_different_model_is_comparable(tmp_path: Path):
    a = write_results(tmp_path / "a.json", {A_SUITE: set(range(40))})
    b = write_results(tmp_path / "b.json", {A_SUITE: set(range(40))}, fingerprint=dict(FP, model="sha256:m2"))
    result = compare_runs(load_results(a), load_results(b))
    assert result.verdict == "UNCHANGED" and not result.incomparable and exit_code(result) == 0


def test_limited_runs_warn(tmp_path: Path, capsys):
    a = write_results(tmp_path / "a.json", {A_SUITE: set()}, n=20, limited=True)
    b = write_results(tmp_path / "b.json", {A_SUITE: set()}, n=20)
    code, out, _ = cli(capsys, str(a), str(b))
    assert code == 0 and "A came from an --llmeval-limit run" in out


def test_suites_in_one_file_only_are_listed(tmp_path: Path, capsys):
    a = write_results(tmp_path / "a.json", {A_SUITE: set(), B_SUITE: set()}, n=10)
    b = write_results(tmp_path / "b.json", {A_SUITE: set()}, n=10)
    code, out, _ = cli(capsys, str(a), str(b))
    assert code == 0 and f"only in A (1): {B_SUITE}" in out


def test_output_folder_is_accepted(tmp_path: Path):
    a = write_results(tmp_path / "a.json", {A_SUITE: set()}, n=5)
    folder = tmp_path / "run"
    folder.mkdir()
    a.replace(folder / "results.json")
    assert set(load_results(folder)) == {A_SUITE}


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "no such file"),
        ("{nope", "not valid JSON"),
        ('{"hello": 1}', 'no "suites" object'),
        ('{"suites": {"f.py::t": {"n": 3}}}', '.suites["f.py::t"].cases: expected an object, the key is missing'),
    ],
)
def test_bad_files_exit_3_with_a_message(tmp_path: Path, capsys, content, words):
    good = write_results(tmp_path / "good.json", {A_SUITE: set()}, n=5)
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    with pytest.raises(ResultsError, match=re.escape(words)):
        load_results(bad)
    code, _, err = cli(capsys, str(good), str(bad))
    assert code == 3 and words in err and "--llmeval-output" in err


def test_usage_errors_exit_3(capsys):
    for argv in (["compare", "only-one.json"], ["compare", "a", "b", "--fail-on", "sometimes"], ["nonsense"]):
        assert main(argv) == 3  # never 2, which means MIXED
    assert main([]) == 3


def test_module_entry_point(tmp_path: Path):
    a = write_results(tmp_path / "a.json", {A_SUITE: set(range(40))})
    b = write_results(tmp_path / "b.json", {A_SUITE: set(range(70))})
    proc = subprocess.run([sys.executable, "-m", "pytest_llmeval", "compare", str(a), str(b)], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "DISCARD" in proc.stdout


def test_prune_subcommand(tmp_path: Path, capsys):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"schema": 1, "suites": {"a.py::t": {"cases": {"x": 1}}, "b.py::t": {"cases": {"x": 0}}}}))
    assert main(["prune", str(path), "a.py::t"]) == 0
    assert "removed a.py::t" in capsys.readouterr().out
    assert list(json.loads(path.read_text())["suites"]) == ["b.py::t"]
    assert main(["prune", str(path), "zzz"]) == 3
    path.write_text("")
    assert main(["prune", str(path), "b.py::t"]) == 3
    assert "is empty" in capsys.readouterr().err


def test_skipped_cases_are_left_out_of_the_pairing(tmp_path: Path, capsys):
    a = write_results(tmp_path / "a.json", {A_SUITE: set(range(40))})
    data = json.loads(a.read_text())
    suite = data["suites"][A_SUITE]
    for case in ("c000", "c001"):  # skipped in B: neither a pass nor a miss
        del suite["cases"][case]
        suite["not_counted"][case] = "skipped"
    b = tmp_path / "b.json"
    b.write_text(json.dumps(data))
    before, after = load_results(a)[A_SUITE], load_results(b)[A_SUITE]
    assert (after.n, after.skipped) == (198, 2) and "c000" not in after.passes()
    result = compare_runs({A_SUITE: before}, {A_SUITE: after})
    assert result.deltas[0].paired.shared == 198 and result.verdict == "UNCHANGED"


def test_results_of_an_older_version_still_load(tmp_path: Path):
    old = tmp_path / "old.json"  # no skipped counts, no not_counted, no interrupted flag
    old.write_text(json.dumps({"schema": 1, "suites": {A_SUITE: {"n": 3, "cases": {"a": "pass", "b": "fail", "c": "error"}, "fingerprint": FP}}}))
    suite = load_results(old)[A_SUITE]
    assert (suite.n, suite.passed, suite.failed, suite.errors, suite.skipped) == (3, 1, 1, 1, 0)
    assert suite.fingerprint.to_json() == FP


def test_an_interrupted_run_is_flagged(tmp_path: Path, capsys):
    a = write_results(tmp_path / "a.json", {A_SUITE: set(range(40))})
    b = write_results(tmp_path / "b.json", {A_SUITE: set(range(40))})
    data = json.loads(b.read_text())
    data["interrupted"] = True
    b.write_text(json.dumps(data))
    code, out, _ = cli(capsys, str(a), str(b))
    assert code == 0 and "warning: B was interrupted: its suites may lack cases" in out
