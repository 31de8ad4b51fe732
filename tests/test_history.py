from __future__ import annotations

import argparse
import json
import multiprocessing
import sqlite3
import subprocess
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmeval.__main__ import main
from pytest_llmeval.cli import history as history_command
from pytest_llmeval.results import history, history_file
from pytest_llmeval.results.history import HistoryError, case_outcomes, list_runs, record_run, suite_names, suite_trend
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.stats import wilson_interval

SUITE = "evals/test_math.py::test_addition"
OTHER = "evals/test_caps.py::test_capitals"
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)


def _records(suite: str, outcomes: list[str], model: str = "sha256:aa") -> list[CaseRecord]:
    return [
        CaseRecord(suite=suite, case_id=f"c{i:03d}", outcome=o, fingerprint={"model": model}, scores={"len": float(i)})  # type: ignore[arg-type]
        for i, o in enumerate(outcomes)
    ]


def test_record_and_read_back(tmp_path: Path) -> None:
    db = tmp_path / "h" / "history.sqlite"
    recs = _records(SUITE, ["pass", "fail", "pass", "error"]) + _records(OTHER, ["pass"])
    run = record_run(db, recs, git_commit="abc123", label="ckpt-100", step=100, when=T0)
    assert run.startswith("20250101T120000Z-")
    points = suite_trend(db, SUITE)
    assert len(points) == 1
    p = points[0]
    assert (p.n, p.passed, p.failed, p.errors) == (4, 2, 1, 1)
    assert p.pass_rate == 0.5
    assert (p.ci_low, p.ci_high) == pytest.approx(wilson_interval(2, 4))
    assert (p.git_commit, p.label, p.step, p.run_id) == ("abc123", "ckpt-100", 100, run)
    assert p.metrics == {"len": 1.5}
    assert p.fingerprint.to_json() == {"model": "sha256:aa"}
    assert case_outcomes(db, run, SUITE) == {SUITE: {"c000": "pass", "c001": "fail", "c002": "pass", "c003": "error"}}
    assert suite_names(db) == sorted([SUITE, OTHER])
    [summary] = list_runs(db)
    assert (summary.suites, summary.cases, summary.model) == (2, 5, "sha256:aa")


def test_trend_is_in_run_order_and_suite_matches_by_part(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    rates = [["fail"] * 4, ["pass", "fail", "fail", "fail"], ["pass", "pass", "pass", "fail"]]
    ids = [record_run(db, _records(SUITE, o), git_commit="c", when=T0 + timedelta(minutes=i)) for i, o in enumerate(rates)]
    points = suite_trend(db, "test_addition")
    assert [p.run_id for p in points] == ids
    assert [p.pass_rate for p in points] == [0.0, 0.25, 0.75]
    assert [p.run_id for p in suite_trend(db, "test_addition", limit=2)] == ids[1:]


def test_case_counted_once_worst_outcome(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    recs = [
        CaseRecord(suite=SUITE, case_id="a", outcome="pass"),
        CaseRecord(suite=SUITE, case_id="a", outcome="error", reason="teardown broke"),
    ]
    run = record_run(db, recs, git_commit="c")
    [p] = suite_trend(db, SUITE)
    assert (p.n, p.errors) == (1, 1)
    assert case_outcomes(db, run) == {SUITE: {"a": "error"}}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["pass", "fail", "error"]), min_size=1, max_size=12), min_size=1, max_size=5))
def test_figures_match_the_records(tmp_path_factory: pytest.TempPathFactory, runs: list[list[str]]) -> None:
    db = tmp_path_factory.mktemp("h") / "history.sqlite"
    for outcomes in runs:
        record_run(db, _records(SUITE, outcomes), git_commit="c")
    points = suite_trend(db, SUITE)
    assert len(points) == len(runs)
    for p, outcomes in zip(points, runs):
        assert p.n == len(outcomes)
        assert p.passed == outcomes.count("pass")
        assert p.failed == outcomes.count("fail")
        assert p.errors == outcomes.count("error")
        assert p.pass_rate == pytest.approx(outcomes.count("pass") / len(outcomes))


def test_duplicate_run_id_is_refused_and_nothing_half_written(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    record_run(db, _records(SUITE, ["pass"]), run_id="r1", git_commit="c")
    with pytest.raises(HistoryError, match="already in"):
        record_run(db, _records(SUITE, ["fail", "fail"]), run_id="r1", git_commit="c")
    assert [p.n for p in suite_trend(db, SUITE)] == [1]


def test_git_commit_never_fails(tmp_path: Path) -> None:
    assert history.git_commit(tmp_path) is None  # not a repository
    assert history.git_commit(tmp_path / "missing") is None
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    repo = tmp_path / "repo"
    (repo / "f.txt").write_text("x")
    env = ["-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", *env, "-C", str(repo), "add", "f.txt"], check=True)
    subprocess.run(["git", *env, "-C", str(repo), "commit", "-qm", "init"], check=True)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert history.git_commit(repo) == head
    (repo / "f.txt").write_text("changed")
    assert history.git_commit(repo) == head + "+dirty"


def test_default_commit_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_GIT_COMMIT", "feedbeef")
    record_run(tmp_path / "h.sqlite", _records(SUITE, ["pass"]))
    assert suite_trend(tmp_path / "h.sqlite")[0].git_commit == "feedbeef"


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="no run history"):
        suite_trend(tmp_path / "nope.sqlite")
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(HistoryError, match="not a pytest-llmeval history"):
        suite_trend(foreign)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(HistoryError, match="not a"):
        record_run(garbage, _records(SUITE, ["pass"]), git_commit="c")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    record_run(db, _records(SUITE, ["pass"]), git_commit="c")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(HistoryError, match="upgrade pytest-llmeval"):
        record_run(db, _records(SUITE, ["pass"]), git_commit="c")
    with pytest.raises(HistoryError, match="upgrade pytest-llmeval"):
        suite_trend(db)


def test_unknown_and_ambiguous_suite(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    record_run(db, _records(SUITE, ["pass"]) + _records(OTHER, ["pass"]), git_commit="c")
    with pytest.raises(HistoryError, match="no suite matching 'nothing'"):
        suite_trend(db, "nothing")
    with pytest.raises(HistoryError, match="matches 2 suites"):
        suite_trend(db, "evals/")
    with pytest.raises(HistoryError, match="no run 'zzz'"):
        case_outcomes(db, "zzz")


def _writer(db: str, worker: int) -> None:
    for i in range(5):
        record_run(db, _records(SUITE, ["pass"] * (worker + 1)), run_id=f"w{worker}-{i}", git_commit="c")


def test_concurrent_writers(tmp_path: Path) -> None:
    db = str(tmp_path / "history.sqlite")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(db, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    runs = list_runs(db)
    assert sorted(r.run_id for r in runs) == sorted(f"w{w}-{i}" for w in range(3) for i in range(5))
    assert all(r.cases == int(r.run_id[1]) + 1 for r in runs)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_llmeval")
    sub = parser.add_subparsers(dest="command")
    history_command.COMMAND.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_trend_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "history.sqlite"
    record_run(db, _records(SUITE, ["fail", "fail", "pass", "fail"], model="m1"), git_commit="abcdef0123", label="ckpt-a", step=100)
    record_run(db, _records(SUITE, ["pass", "pass", "pass", "fail"], model="m2"), git_commit="abcdef0123", label="step-200", step=200)
    assert _cli(["history", "test_addition", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert SUITE in out
    assert "25.0%" in out and "75.0%" in out
    assert "+50.0*" in out  # change since the previous run, model changed
    assert "ckpt-a @100" in out and "abcdef012" in out
    assert "step-200" in out and "@200" not in out  # a step label is not repeated
    assert _cli(["history", "--db", str(db), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["pass_rate"] for d in data] == [0.25, 0.75]
    assert _cli(["history", "test_addition", "--db", str(db), "--last", "1"]) == 0
    out = capsys.readouterr().out
    assert "(last 1 of 2 runs)" in out and "25.0%" not in out and "+50.0*" in out
    assert _cli(["history", "--db", str(db), "--json", "--last", "1"]) == 0
    assert [d["pass_rate"] for d in json.loads(capsys.readouterr().out)] == [0.75]
    assert _cli(["history", "--db", str(db), "--runs"]) == 0
    assert "ckpt-a" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["history", "--db", str(tmp_path / "none.sqlite")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("history: no run history at") and err.count("\n") == 1


def test_module_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "history.sqlite"
    record_run(db, _records(SUITE, ["pass"]), git_commit="c")
    assert main(["history", "--db", str(db)]) == 0
    assert "1 suite(s), 1 run(s)" in capsys.readouterr().out


def test_an_interrupted_run_is_marked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "history.sqlite"
    record_run(db, _records(SUITE, ["pass", "pass"]), run_id="full", git_commit="c")
    record_run(db, _records(SUITE, ["pass"]), run_id="cut", git_commit="c", interrupted=True)
    record_run(db, [], run_id="empty", git_commit="c", interrupted=True)  # Ctrl-C before any result
    assert [(r.run_id, r.interrupted, r.cases) for r in list_runs(db)] == [("full", False, 2), ("cut", True, 1), ("empty", True, 0)]
    assert [p.interrupted for p in suite_trend(db, SUITE)] == [False, True]
    assert _cli(["history", "--db", str(db), "--runs"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[2].endswith("complete") and rows[3].endswith("interrupted") and rows[4].endswith("interrupted")
    assert _cli(["history", SUITE, "--db", str(db)]) == 0
    assert "(interrupted)" in capsys.readouterr().out.splitlines()[-3]
    assert _cli(["history", "--db", str(db), "--json"]) == 0
    assert [d["interrupted"] for d in json.loads(capsys.readouterr().out)] == [False, True]


def test_skipped_and_xfailed_cases_are_counted_apart(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    run = record_run(db, _records(SUITE, ["pass", "fail", "skipped", "xfailed", "pass"]), git_commit="c")
    [p] = suite_trend(db, SUITE)
    assert (p.n, p.passed, p.failed, p.skipped, p.xfailed, p.pass_rate) == (3, 2, 1, 1, 1, pytest.approx(2 / 3))
    assert case_outcomes(db, run)[SUITE]["c002"] == "skipped"


_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
    git_commit TEXT, label TEXT, step INTEGER, model TEXT);
CREATE TABLE suites (run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE, suite TEXT NOT NULL,
    n INTEGER NOT NULL, passed INTEGER NOT NULL, failed INTEGER NOT NULL, errors INTEGER NOT NULL,
    pass_rate REAL NOT NULL, ci_low REAL NOT NULL, ci_high REAL NOT NULL, metrics TEXT NOT NULL,
    fingerprint TEXT NOT NULL, limited INTEGER NOT NULL, PRIMARY KEY (run_id, suite));
CREATE TABLE cases (run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE, suite TEXT NOT NULL,
    case_id TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL, scores TEXT NOT NULL,
    PRIMARY KEY (run_id, suite, case_id));
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO runs (run_id, created_at, git_commit, label, step, model) VALUES ('old', '2025-01-01T12:00:00+00:00', 'c', NULL, NULL, 'm');
INSERT INTO suites VALUES ('old', 'evals/test_math.py::test_addition', 4, 3, 1, 0, 0.75, 0.3, 0.95, '{}', '{"model": "m"}', 0);
INSERT INTO cases VALUES ('old', 'evals/test_math.py::test_addition', 'c000', 'pass', '', '{}');
"""


def test_a_file_of_the_first_schema_is_read_as_it_is_and_migrated_by_the_next_write(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    with closing(sqlite3.connect(db)) as conn:
        conn.executescript(_SCHEMA_1)
    # read without writing: the file keeps its schema
    [old] = suite_trend(db, SUITE)
    assert (old.n, old.passed, old.skipped, old.interrupted) == (4, 3, 0, False)
    assert [r.interrupted for r in list_runs(db)] == [False]
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("1",)
    # the next run brings it up to date and keeps the old run
    record_run(db, _records(SUITE, ["pass", "skipped"]), run_id="new", git_commit="c", interrupted=True)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (str(history_file.SCHEMA_VERSION),)
    assert [(p.run_id, p.n, p.skipped, p.interrupted) for p in suite_trend(db, SUITE)] == [("old", 4, 0, False), ("new", 1, 1, True)]


def test_history_marks_the_runs_whose_prompt_version_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "history.sqlite"

    def run(prompt: str | None, outcomes: list[str]) -> None:
        fingerprint = {"model": "m1", **({"prompt": prompt} if prompt else {})}
        records = [CaseRecord(suite=SUITE, case_id=f"c{i}", outcome=o, fingerprint=fingerprint) for i, o in enumerate(outcomes)]  # type: ignore[arg-type]
        record_run(db, records)

    run("sha256:old", ["pass", "fail"])
    run("sha256:old", ["pass", "fail"])
    run("sha256:new", ["pass", "pass"])
    run(None, ["pass", "pass"])  # a run that recorded no prompt (an older version): not a change
    assert _cli(["history", "test_addition", "--db", str(db)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  20")]
    assert ["(prompt changed)" in row for row in rows] == [False, False, True, False]
    assert _cli(["history", "--db", str(db), "--json", "--last", "2"]) == 0
    assert [d["prompt_changed"] for d in json.loads(capsys.readouterr().out)] == [True, False]


# ----------------------------------------------------------------------------- whose file it is


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _foreign(path: Path, journal: str) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA journal_mode = {journal}")
        conn.execute("CREATE TABLE orders (id INTEGER)")
        conn.execute("INSERT INTO orders VALUES (7)")
        conn.commit()


@pytest.mark.parametrize("kind", ["empty", "foreign-delete", "foreign-wal", "text"])
def test_no_command_changes_a_file_that_is_not_a_history_file(tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Reading commands open the file read-only; a run refuses to write to it: one line each, the
    file and its folder exactly as they were (no journal-mode switch, no -wal or -shm file)."""
    folder = tmp_path / "app"
    folder.mkdir()
    db = folder / "app.db"
    if kind == "empty":
        db.write_bytes(b"")
    elif kind == "text":
        db.write_text("name,email\nann,ann@example.com\n")
    else:
        _foreign(db, kind.split("-")[1])
    before = _snapshot(folder)
    for args in (["history", "--db", str(db)], ["history", "--db", str(db), "--runs"], ["history", SUITE, "--db", str(db), "--json"]):
        assert main(args) == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(db) in err[0] and "Traceback" not in err[0], err
    with pytest.raises(HistoryError, match=r"app\.db (is an empty file|is a SQLite file of another kind|is not a usable SQLite)"):
        record_run(db, _records(SUITE, ["pass"]), git_commit="c")
    assert _snapshot(folder) == before


def test_the_history_file_alone_holds_every_run_and_reading_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "h" / "history.sqlite"
    first = record_run(db, _records(SUITE, ["pass", "fail"]), git_commit="c")
    second = record_run(db, _records(SUITE, ["pass", "pass"]), git_commit="c")
    assert sorted(p.name for p in db.parent.iterdir()) == ["history.sqlite"]
    alone = tmp_path / "copy" / "history.sqlite"
    alone.parent.mkdir()
    alone.write_bytes(db.read_bytes())  # what a CI cache step restores when it keeps only this file
    assert [r.run_id for r in list_runs(alone)] == [first, second]
    before = _snapshot(alone.parent)
    assert main(["history", "--db", str(alone)]) == 0 and main(["history", "--db", str(alone), "--runs", "--json"]) == 0
    capsys.readouterr()
    assert _snapshot(alone.parent) == before


def test_an_older_history_file_in_wal_mode_is_switched_back_by_the_next_run(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    record_run(db, _records(SUITE, ["pass"]), git_commit="c")
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
    assert len(suite_trend(db, SUITE)) == 1  # read as it is
    record_run(db, _records(SUITE, ["fail"]), git_commit="c")
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [p.passed for p in suite_trend(db, SUITE)] == [1, 0]


def test_two_processes_creating_the_file_at_once_both_write_to_it(tmp_path: Path) -> None:
    db = tmp_path / "new" / "history.sqlite"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        ids = pool.starmap(_record_one, [(str(db), i) for i in range(8)])
    assert sorted(r.run_id for r in list_runs(db)) == sorted(ids)


def _record_one(db: str, i: int) -> str:
    return record_run(db, _records(SUITE, ["pass"] * (i + 1)), run_id=f"run-{i}", git_commit="c")
