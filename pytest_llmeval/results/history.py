"""Run history: every eval run appended to one SQLite file, and a suite's trend read back.

The file (``.llmeval/history.sqlite`` by default) holds, per run: an id, the time, the git
commit, a label (a checkpoint name, a training step), whether the run was interrupted, and per
suite its figures (n, passed, failed, errors, skipped, xfailed, pass rate with its Wilson
interval, graded metrics, fingerprint) and every case's outcome. Writers append in one
``BEGIN IMMEDIATE`` transaction (a rollback journal: the file alone holds every run), so several
processes (xdist controllers, a training job and a CI run) can share the file; readers open it
read-only. A file of an older schema is brought up to
date by the next run that writes to it; until then it is read as it is.

The file itself (schema, migrations, opening) is :mod:`~pytest_llmeval.results.history_file`;
``python -m pytest_llmeval history`` prints a suite's trend (:mod:`pytest_llmeval.cli.history`).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from pytest_llmeval.results.history_file import HistoryError, column_or_zero, connect, ensure_schema, open_for_reading
from pytest_llmeval.results.fingerprint import Fingerprint
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.stats import SuiteResult

__all__ = [
    "DEFAULT_PATH", "HistoryError", "RunSummary", "TrendPoint", "case_outcomes", "git_commit", "list_runs", "record_run",
    "suite_names", "suite_trend",
]  # fmt: skip

DEFAULT_PATH = Path(".llmeval") / "history.sqlite"


@dataclass(frozen=True)
class TrendPoint:
    """One suite in one run: the figures ``history`` prints as a row. ``result`` holds the
    suite's figures (without per-case outcomes); the others say which run it was."""

    run_id: str
    created_at: str
    git_commit: str | None
    label: str | None
    step: int | None
    result: SuiteResult
    interrupted: bool = False

    suite = property(lambda self: self.result.name)
    n = property(lambda self: self.result.n)
    passed = property(lambda self: self.result.passed)
    failed = property(lambda self: self.result.failed)
    errors = property(lambda self: self.result.errors)
    skipped = property(lambda self: self.result.skipped)
    xfailed = property(lambda self: self.result.xfailed)
    pass_rate = property(lambda self: self.result.pass_rate)
    metrics = property(lambda self: self.result.metrics)
    fingerprint = property(lambda self: self.result.fingerprint)
    limited = property(lambda self: self.result.limited)
    ci_low = property(lambda self: self.result.interval()[0])
    ci_high = property(lambda self: self.result.interval()[1])

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "run_id": self.run_id, "created_at": self.created_at, "git_commit": self.git_commit, "label": self.label,
            "step": self.step, "interrupted": self.interrupted, "suite": r.name, "n": r.n, "passed": r.passed,
            "failed": r.failed, "errors": r.errors, "skipped": r.skipped, "xfailed": r.xfailed, "pass_rate": r.pass_rate,
            "ci_low": self.ci_low, "ci_high": self.ci_high, "metrics": dict(r.metrics),
            "fingerprint": r.fingerprint.to_json(), "limited": r.limited,
        }  # fmt: skip


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
    interrupted: bool = False


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
    interrupted: bool = False,
) -> str:
    """Append one run (its suites' figures and every case's outcome) and return its run id.

    ``git_commit`` defaults to the commit of the current directory (``None`` outside git);
    ``label`` names what was evaluated (a checkpoint, ``"ci"``), ``step`` a training step;
    ``interrupted`` marks a run that did not end normally (its suites may lack cases).
    Everything is written in one transaction: a reader never sees half a run.
    """
    from pytest_llmeval.results.stats import aggregate_suites, merge_case_records

    path = Path(path)
    moment = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    run_id = run_id or new_run_id(moment)
    commit = git_commit if git_commit is not None else _default_commit(path)
    suites = aggregate_suites(list(records))
    models = {str(s.fingerprint.model) for s in suites if s.fingerprint.model}
    model = models.pop() if len(models) == 1 else None
    with closing(connect(path, create=True)) as conn:
        try:
            conn.execute("BEGIN IMMEDIATE")
            ensure_schema(conn, path)
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                raise HistoryError(f"run id {run_id!r} is already in {path}; give a new run id or leave it out")
            conn.execute(
                "INSERT INTO runs (run_id, created_at, git_commit, label, step, model, interrupted) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, moment.isoformat(timespec="seconds"), commit, label, step, model, int(interrupted)),
            )
            conn.executemany(f"INSERT INTO suites ({', '.join(_SUITE_COLUMNS)}) VALUES ({', '.join('?' * len(_SUITE_COLUMNS))})",
                             [_suite_row(run_id, s) for s in suites])  # fmt: skip
            conn.executemany(
                "INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (run_id, r.suite, r.case_id if r.repeats <= 1 else f"{r.case_id}:r{r.repeat}", r.outcome.value, (r.reason or "")[:500], json.dumps(dict(r.scores), sort_keys=True))
                    for r in merge_case_records(list(records)).values()
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return run_id


_SUITE_COLUMNS = (
    "run_id", "suite", "n", "passed", "failed", "errors", "skipped", "xfailed", "pass_rate", "ci_low", "ci_high",
    "metrics", "fingerprint", "limited",
)  # fmt: skip


def _suite_row(run_id: str, s: SuiteResult) -> tuple[Any, ...]:
    low, high = s.interval()
    metrics = json.dumps(dict(s.metrics), sort_keys=True)
    fingerprint = json.dumps(s.fingerprint.to_json(), sort_keys=True, default=str)
    return (run_id, s.name, s.n, s.passed, s.failed, s.errors, s.skipped, s.xfailed, s.pass_rate, low, high, metrics, fingerprint, int(s.limited))


def _default_commit(path: Path) -> str | None:
    if os.environ.get("LLMEVAL_GIT_COMMIT"):
        return os.environ["LLMEVAL_GIT_COMMIT"]
    return git_commit(None)


# --------------------------------------------------------------------------- reading


def suite_names(path: str | Path) -> list[str]:
    """Every suite the history has seen, sorted."""
    with closing(open_for_reading(path)) as conn:
        return [r[0] for r in conn.execute("SELECT DISTINCT suite FROM suites ORDER BY suite")]


def suite_trend(path: str | Path, suite: str | None = None, *, limit: int | None = None) -> list[TrendPoint]:
    """Each run's figures for ``suite`` (every suite when ``None``), oldest run first.

    ``suite`` may be a full suite id or a unique part of one (``test_addition``). ``limit``
    keeps the most recent runs.
    """
    with closing(open_for_reading(path)) as conn:
        where, params = "", []
        if suite is not None:
            names = [r[0] for r in conn.execute("SELECT DISTINCT suite FROM suites ORDER BY suite")]
            where, params = "WHERE s.suite = ?", [_resolve_suite(suite, names, Path(path))]
        extra = [column_or_zero(conn, t, a, c) for t, a, c in (("suites", "s", "skipped"), ("suites", "s", "xfailed"), ("runs", "r", "interrupted"))]
        rows = conn.execute(
            "SELECT r.run_id, r.created_at, r.git_commit, r.label, r.step, s.suite, s.n, s.passed, s.failed,"
            f" s.errors, s.metrics, s.fingerprint, s.limited, {', '.join(extra)}"
            f" FROM suites s JOIN runs r ON r.run_id = s.run_id {where} ORDER BY r.seq, s.suite",
            params,
        ).fetchall()
    points = [_trend_point(r) for r in rows]
    if limit is not None and suite is not None:
        points = points[-limit:] if limit > 0 else []
    return points


def _trend_point(r: Sequence[Any]) -> TrendPoint:
    result = SuiteResult(
        name=r[5], n=r[6], passed=r[7], failed=r[8], errors=r[9], metrics=json.loads(r[10]),
        fingerprint=Fingerprint.from_json(json.loads(r[11])), limited=bool(r[12]), skipped=r[13], xfailed=r[14],
    )  # fmt: skip
    return TrendPoint(run_id=r[0], created_at=r[1], git_commit=r[2], label=r[3], step=r[4], result=result, interrupted=bool(r[15]))


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
    with closing(open_for_reading(path)) as conn:
        rows = conn.execute(
            "SELECT r.run_id, r.created_at, r.git_commit, r.label, r.step, r.model,"
            " (SELECT COUNT(*) FROM suites s WHERE s.run_id = r.run_id),"
            " (SELECT COUNT(*) FROM cases c WHERE c.run_id = r.run_id),"
            f" {column_or_zero(conn, 'runs', 'r', 'interrupted')}"
            " FROM runs r ORDER BY r.seq"
        ).fetchall()
    return [RunSummary(*row[:8], interrupted=bool(row[8])) for row in rows]


def case_outcomes(path: str | Path, run_id: str, suite: str | None = None) -> dict[str, dict[str, str]]:
    """``{suite: {case_id: outcome}}`` for one run (one suite when given)."""
    with closing(open_for_reading(path)) as conn:
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
