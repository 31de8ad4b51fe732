"""Run history: every eval run appended to one SQLite file, and a suite's trend read back.

The file (``.llmeval/history.sqlite`` by default) holds, per run: an id, the time, the git
commit, a label (a checkpoint name, a training step), and per suite its figures (n, passed,
failed, errors, pass rate with its Wilson interval, graded metrics, fingerprint) and every
case's outcome. Writers append in one ``BEGIN IMMEDIATE`` transaction in WAL mode, so several
processes (xdist controllers, a training job and a CI run) can share the file.

``python -m pytest_llmeval history`` prints a suite's trend; see :func:`register_cli`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from pytest_llmeval.results.records import CaseRecord

__all__ = [
    "DEFAULT_PATH",
    "SCHEMA_VERSION",
    "HistoryError",
    "RunSummary",
    "TrendPoint",
    "case_outcomes",
    "git_commit",
    "list_runs",
    "record_run",
    "register_cli",
    "suite_names",
    "suite_trend",
]

DEFAULT_PATH = Path(".llmeval") / "history.sqlite"
SCHEMA_VERSION = 1
EXIT_USAGE = 3  # as every ``python -m pytest_llmeval`` subcommand
_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    git_commit TEXT,
    label TEXT,
    step INTEGER,
    model TEXT
);
CREATE TABLE IF NOT EXISTS suites (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    suite TEXT NOT NULL,
    n INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    pass_rate REAL NOT NULL,
    ci_low REAL NOT NULL,
    ci_high REAL NOT NULL,
    metrics TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    limited INTEGER NOT NULL,
    PRIMARY KEY (run_id, suite)
);
CREATE TABLE IF NOT EXISTS cases (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    suite TEXT NOT NULL,
    case_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    scores TEXT NOT NULL,
    PRIMARY KEY (run_id, suite, case_id)
);
CREATE INDEX IF NOT EXISTS suites_by_name ON suites (suite);
"""


class HistoryError(RuntimeError):
    """The history file cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class TrendPoint:
    """One suite in one run: the figures ``history`` prints as a row."""

    run_id: str
    created_at: str
    git_commit: str | None
    label: str | None
    step: int | None
    suite: str
    n: int
    passed: int
    failed: int
    errors: int
    pass_rate: float
    ci_low: float
    ci_high: float
    metrics: Mapping[str, float]
    fingerprint: Mapping[str, Any]
    limited: bool


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    created_at: str
    git_commit: str | None
    label: str | None
    step: int | None
    model: str | None
    suites: int
    cases: int


# --------------------------------------------------------------------------- connection


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    path = Path(path)
    if not create and not path.exists():
        raise HistoryError(
            f"no run history at {path}; run the evals first (every run appends to it), "
            "or pass --db with the right file"
        )
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), timeout=_TIMEOUT_S, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=%d" % int(_TIMEOUT_S * 1000))
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"{path} is not a usable SQLite history file ({exc}); move it away to start a new one") from None
    return conn


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables if needed (inside the caller's transaction) and check the version."""
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"{path} is not a usable SQLite history file ({exc}); move it away to start a new one") from None
    if row is None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
    elif int(row[0]) > SCHEMA_VERSION:
        raise HistoryError(
            f"{path} has history schema {row[0]}, newer than this pytest-llmeval understands ({SCHEMA_VERSION}); "
            "upgrade pytest-llmeval or use another history file"
        )


def _check_readable(conn: sqlite3.Connection, path: Path) -> None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"{path} is not a pytest-llmeval history file ({exc}); check the path given to --db") from None
    if row is None or int(row[0]) > SCHEMA_VERSION:
        raise HistoryError(
            f"{path} has history schema {row[0] if row else 'none'}, not one this pytest-llmeval reads "
            f"({SCHEMA_VERSION}); upgrade pytest-llmeval or use another history file"
        )


# --------------------------------------------------------------------------- writing


def git_commit(cwd: str | Path | None = None) -> str | None:
    """``git rev-parse HEAD`` in ``cwd``, with ``+dirty`` when tracked files changed; ``None``
    outside a repository, without git, or on any failure (it never raises)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
        if head.returncode != 0:
            return None
        commit = head.stdout.strip()
        if not commit:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5, check=False,
        )
        if dirty.returncode == 0 and dirty.stdout.strip():
            commit += "+dirty"
        return commit
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def new_run_id(when: datetime | None = None) -> str:
    """A sortable, unique run id: ``20250101T120000Z-3f9a1c``."""
    moment = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def record_run(
    path: str | Path,
    records: Sequence[CaseRecord],
    *,
    run_id: str | None = None,
    git_commit: str | None = None,
    label: str | None = None,
    step: int | None = None,
    when: datetime | None = None,
) -> str:
    """Append one run (its suites' figures and every case's outcome) and return its run id.

    ``git_commit`` defaults to the commit of the current directory (``None`` outside git);
    ``label`` names what was evaluated (a checkpoint, ``"ci"``), ``step`` a training step.
    Everything is written in one transaction: a reader never sees half a run.
    """
    from pytest_llmeval.results.stats import aggregate_suites, merge_case_records

    path = Path(path)
    moment = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    run_id = run_id or new_run_id(moment)
    commit = git_commit if git_commit is not None else _default_commit(path)
    suites = aggregate_suites(list(records))
    models = {str(s.fingerprint.get("model")) for s in suites if s.fingerprint.get("model")}
    model = models.pop() if len(models) == 1 else None
    with closing(_connect(path, create=True)) as conn:
        try:
            conn.execute("BEGIN IMMEDIATE")
            _ensure_schema(conn, path)
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                raise HistoryError(f"run id {run_id!r} is already in {path}; give a new run id or leave it out")
            conn.execute(
                "INSERT INTO runs (run_id, created_at, git_commit, label, step, model) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, moment.isoformat(timespec="seconds"), commit, label, step, model),
            )
            for s in suites:
                low, high = s.interval()
                conn.execute(
                    "INSERT INTO suites VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id, s.name, s.n, s.passed, s.failed, s.errors, s.pass_rate, low, high,
                        json.dumps(dict(s.metrics), sort_keys=True),
                        json.dumps(dict(s.fingerprint), sort_keys=True, default=str),
                        int(s.limited),
                    ),
                )
            merged = merge_case_records(list(records))
            conn.executemany(
                "INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (run_id, r.suite, r.case_id, r.outcome, (r.reason or "")[:500], json.dumps(dict(r.scores), sort_keys=True))
                    for r in merged.values()
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return run_id


def _default_commit(path: Path) -> str | None:
    if os.environ.get("LLMEVAL_GIT_COMMIT"):
        return os.environ["LLMEVAL_GIT_COMMIT"]
    return git_commit(None)


# --------------------------------------------------------------------------- reading


def _open_for_reading(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    conn = _connect(path, create=False)
    try:
        _check_readable(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def suite_names(path: str | Path) -> list[str]:
    """Every suite the history has seen, sorted."""
    with closing(_open_for_reading(path)) as conn:
        return [r[0] for r in conn.execute("SELECT DISTINCT suite FROM suites ORDER BY suite")]


def suite_trend(path: str | Path, suite: str | None = None, *, limit: int | None = None) -> list[TrendPoint]:
    """Each run's figures for ``suite`` (every suite when ``None``), oldest run first.

    ``suite`` may be a full suite id or a unique part of one (``test_addition``). ``limit``
    keeps the most recent runs.
    """
    with closing(_open_for_reading(path)) as conn:
        where, params = "", []
        if suite is not None:
            names = [r[0] for r in conn.execute("SELECT DISTINCT suite FROM suites ORDER BY suite")]
            name = _resolve_suite(suite, names, Path(path))
            where, params = "WHERE s.suite = ?", [name]
        rows = conn.execute(
            "SELECT r.run_id, r.created_at, r.git_commit, r.label, r.step, s.suite, s.n, s.passed, s.failed,"
            " s.errors, s.pass_rate, s.ci_low, s.ci_high, s.metrics, s.fingerprint, s.limited"
            f" FROM suites s JOIN runs r ON r.run_id = s.run_id {where} ORDER BY r.seq, s.suite",
            params,
        ).fetchall()
    points = [
        TrendPoint(
            run_id=r[0], created_at=r[1], git_commit=r[2], label=r[3], step=r[4], suite=r[5], n=r[6],
            passed=r[7], failed=r[8], errors=r[9], pass_rate=r[10], ci_low=r[11], ci_high=r[12],
            metrics=json.loads(r[13]), fingerprint=json.loads(r[14]), limited=bool(r[15]),
        )
        for r in rows
    ]
    if limit is not None and suite is not None:
        points = points[-limit:] if limit > 0 else []
    return points


def _resolve_suite(wanted: str, names: Sequence[str], path: Path) -> str:
    if wanted in names:
        return wanted
    matches = [n for n in names if wanted in n]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        raise HistoryError(
            f"no suite matching {wanted!r} in {path} (known: {known or 'none'}); "
            "run `python -m pytest_llmeval history` to list them"
        )
    raise HistoryError(f"{wanted!r} matches {len(matches)} suites: {', '.join(matches)}; give more of the suite id")


def list_runs(path: str | Path) -> list[RunSummary]:
    """Every run, oldest first, with how many suites and cases it holds."""
    with closing(_open_for_reading(path)) as conn:
        rows = conn.execute(
            "SELECT r.run_id, r.created_at, r.git_commit, r.label, r.step, r.model,"
            " (SELECT COUNT(*) FROM suites s WHERE s.run_id = r.run_id),"
            " (SELECT COUNT(*) FROM cases c WHERE c.run_id = r.run_id)"
            " FROM runs r ORDER BY r.seq"
        ).fetchall()
    return [RunSummary(*row) for row in rows]


def case_outcomes(path: str | Path, run_id: str, suite: str | None = None) -> dict[str, dict[str, str]]:
    """``{suite: {case_id: outcome}}`` for one run (one suite when given)."""
    with closing(_open_for_reading(path)) as conn:
        if not conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
            raise HistoryError(f"no run {run_id!r} in {path}; list the runs with `python -m pytest_llmeval history --runs`")
        sql, params = "SELECT suite, case_id, outcome FROM cases WHERE run_id = ?", [run_id]
        if suite is not None:
            sql += " AND suite = ?"
            params.append(suite)
        out: dict[str, dict[str, str]] = {}
        for s, case_id, outcome in conn.execute(sql + " ORDER BY suite, case_id", params):
            out.setdefault(s, {})[case_id] = outcome
    return out


# --------------------------------------------------------------------------- command line


def register_cli(subparsers: Any) -> None:
    """Add the ``history`` subcommand to an ``argparse`` subparsers object.

    The parser's ``func`` default is :func:`cli_main`, called with the parsed namespace; it
    returns the exit status.
    """
    parser = subparsers.add_parser(
        "history",
        help="show a suite's pass rate across runs and checkpoints",
        description="Show the pass-rate trend of eval suites across the runs recorded in the history file.",
    )
    add_arguments(parser)
    parser.set_defaults(func=cli_main)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", nargs="?", help="suite id, or a unique part of it (default: every suite)")
    parser.add_argument("--db", default=str(DEFAULT_PATH), help=f"history file (default: {DEFAULT_PATH})")
    parser.add_argument("--last", type=int, default=20, metavar="N", help="show the last N runs per suite (default 20)")
    parser.add_argument("--runs", action="store_true", help="list the runs instead of the suites' trends")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def cli_main(args: argparse.Namespace) -> int:
    try:
        return _cli(args)
    except BrokenPipeError:  # `history | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _cli(args: argparse.Namespace) -> int:
    try:
        if args.runs:
            runs = list_runs(args.db)
            if args.json:
                print(json.dumps([r.__dict__ for r in runs], indent=2))
            else:
                for line in format_runs(runs, args.db):
                    print(line)
            return 0
        points = suite_trend(args.db, args.suite)  # format_trend keeps the last N, with their changes
    except HistoryError as exc:
        print(f"history: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        if args.last > 0:
            points = _last_per_suite(points, args.last)
        print(json.dumps([{**p.__dict__, "metrics": dict(p.metrics), "fingerprint": dict(p.fingerprint)} for p in points], indent=2))
        return 0
    for line in format_trend(points, args.db, last=args.last):
        print(line)
    return 0


def _last_per_suite(points: Sequence[TrendPoint], last: int) -> list[TrendPoint]:
    by_suite: dict[str, list[TrendPoint]] = {}
    for p in points:
        by_suite.setdefault(p.suite, []).append(p)
    keep = {id(p) for rows in by_suite.values() for p in rows[-last:]}
    return [p for p in points if id(p) in keep]


def format_trend(points: Sequence[TrendPoint], path: str | Path, last: int = 20) -> Iterator[str]:
    """The ``history`` table: one block per suite, one row per run, with the change since the
    previous run and a mark where the model changed or the run was narrowed."""
    by_suite: dict[str, list[TrendPoint]] = {}
    for p in points:
        by_suite.setdefault(p.suite, []).append(p)
    if not by_suite:
        yield f"history {path}: no runs recorded yet; run the evals (every run appends here)"
        return
    runs = len({p.run_id for p in points})
    yield f"history {path}: {len(by_suite)} suite(s), {runs} run(s)"
    for suite, rows in by_suite.items():
        shown = rows[-last:] if last > 0 else rows
        yield ""
        yield suite + (f"  (last {len(shown)} of {len(rows)} runs)" if len(shown) < len(rows) else "")
        yield f"  {'when (UTC)':<19}  {'run':<23}  {'label':<16}  {'commit':<9}  {'n':>5}  {'pass':>6}  {'95% CI':<13}  {'change':>7}  trend"
        previous: TrendPoint | None = rows[len(rows) - len(shown) - 1] if len(shown) < len(rows) else None
        for p in shown:
            change = ""
            if previous is not None:
                change = f"{(p.pass_rate - previous.pass_rate) * 100:+.1f}"
                if previous.fingerprint.get("model") != p.fingerprint.get("model"):
                    change += "*"
            label = p.label or ""
            if p.step is not None and label != f"step-{p.step}":
                label = f"{label} @{p.step}" if label else f"step {p.step}"
            flags = " (limited)" if p.limited else ""
            flags += f" errors={p.errors}" if p.errors else ""
            yield (
                f"  {p.created_at[:19].replace('T', ' '):<19}  {p.run_id:<23}  {label[:16]:<16}  {(p.git_commit or '-')[:9]:<9}"
                f"  {p.n:>5}  {p.pass_rate * 100:5.1f}%  [{p.ci_low * 100:4.1f}, {p.ci_high * 100:5.1f}]  {change:>7}  "
                f"{_bar(p.pass_rate)}{flags}"
            )
            previous = p
    yield ""
    yield "change is in points of pass rate since the run above; * marks a different model (a new checkpoint)"


def format_runs(runs: Sequence[RunSummary], path: str | Path) -> Iterator[str]:
    if not runs:
        yield f"history {path}: no runs recorded yet; run the evals (every run appends here)"
        return
    yield f"history {path}: {len(runs)} run(s)"
    yield f"  {'when (UTC)':<19}  {'run':<23}  {'label':<16}  {'step':>6}  {'commit':<9}  {'suites':>6}  {'cases':>6}"
    for r in runs:
        step = "" if r.step is None else str(r.step)
        yield (
            f"  {r.created_at[:19].replace('T', ' '):<19}  {r.run_id:<23}  {(r.label or '')[:16]:<16}  {step:>6}"
            f"  {(r.git_commit or '-')[:9]:<9}  {r.suites:>6}  {r.cases:>6}"
        )


def _bar(rate: float, width: int = 20) -> str:
    filled = int(round(max(0.0, min(1.0, rate)) * width))
    return "#" * filled + "." * (width - filled)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``history`` on its own (``python -m pytest_llmeval.history``)."""
    parser = argparse.ArgumentParser(prog="python -m pytest_llmeval history")
    add_arguments(parser)
    return cli_main(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
