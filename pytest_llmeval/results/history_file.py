"""The run history's SQLite file: its schema, bringing an older file up to date, and opening it
for writing (a rollback journal and a busy timeout, so several processes can share it and the
file alone holds every run) or for reading (read-only; refusing a file that is not one, or is
newer than this version reads). A file that is not a history file is never written. :mod:`~pytest_llmeval.results.history` reads and
writes the runs in it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from pytest_llmeval.files import create_sqlite_file, foreign_sqlite

__all__ = ["SCHEMA_VERSION", "HistoryError", "column_or_zero", "connect", "ensure_schema", "open_for_reading"]

SCHEMA_VERSION = 2
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
    model TEXT,
    interrupted INTEGER NOT NULL DEFAULT 0
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
    skipped INTEGER NOT NULL DEFAULT 0,
    xfailed INTEGER NOT NULL DEFAULT 0,
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

# columns each schema version added: (table, column, declaration)
_MIGRATIONS: dict[int, tuple[tuple[str, str, str], ...]] = {
    2: (
        ("runs", "interrupted", "INTEGER NOT NULL DEFAULT 0"),
        ("suites", "skipped", "INTEGER NOT NULL DEFAULT 0"),
        ("suites", "xfailed", "INTEGER NOT NULL DEFAULT 0"),
    ),
}


class HistoryError(RuntimeError):
    """The history file cannot be used; the message says why and what to do."""


def _unusable(path: Path, exc: Exception) -> HistoryError:
    return HistoryError(f"{path} is not a usable SQLite history file ({exc}); move it away to start a new one")


_TABLE_NAMES = ("meta", "runs", "suites", "cases")
_WHAT = "a pytest-llmeval history file"


def _statements() -> list[str]:
    return [statement for statement in _SCHEMA.split(";") if statement.strip()]


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """A connection for writing runs, waiting up to 30 s for other writers; ``create`` makes the
    file (and its folder) when missing, otherwise a missing file is a :class:`HistoryError`.

    A file that is not a history file (an empty file, another application's SQLite file) is
    refused before anything is written to it. The file uses a rollback journal (one left in WAL
    mode by an older version is switched back when no other process has it open), so the file
    alone holds every run."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise _missing(path)
        try:
            create_sqlite_file(path, _statements())
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot create the run history {path} ({exc}); check the folder's permissions, or set llmeval_history") from None
    _refuse_foreign(path)
    try:
        conn = sqlite3.connect(str(path), timeout=_TIMEOUT_S, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=%d" % int(_TIMEOUT_S * 1000))
        _leave_wal(conn)
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as exc:
        raise _unusable(path, exc) from None
    return conn


def _missing(path: Path) -> HistoryError:
    return HistoryError(f"no run history at {path}; run the evals first (every run appends to it), or pass --db with the right file")


def _refuse_foreign(path: Path) -> None:
    problem = foreign_sqlite(path, _TABLE_NAMES, _WHAT)
    if problem is not None:
        raise HistoryError(f"{problem}; it was left as it is: pass --db (or set llmeval_history) with a history file, or a new path")


def _leave_wal(conn: sqlite3.Connection) -> None:
    """A rollback journal for a file an older version left in WAL mode; while another process
    has it open SQLite refuses the switch at once, and the file stays in WAL for now (closing
    the last connection folds it in)."""
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise


def ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables if needed and bring an older file up to date (inside the caller's
    transaction); refuse a newer one."""
    try:
        for statement in _statements():
            conn.execute(statement)
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise _unusable(path, exc) from None
    version = _version(row, path)
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"{path} has history schema {version}, newer than this pytest-llmeval understands ({SCHEMA_VERSION}); "
            "upgrade pytest-llmeval or use another history file"
        )
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for table, column, declaration in _MIGRATIONS.get(step, ()):
            if column not in _columns(conn, table):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))


def _version(row: Any, path: Path) -> int:
    """The schema version in a ``meta`` row (none yet: this version's)."""
    if row is None:
        return SCHEMA_VERSION
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise HistoryError(f"{path} has an unreadable history schema {row[0]!r}; move it away to start a new one") from None


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _check_readable(conn: sqlite3.Connection, path: Path) -> None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"{path} is not a pytest-llmeval history file ({exc}); check the path given to --db") from None
    if row is None or _version(row, path) > SCHEMA_VERSION:
        raise HistoryError(
            f"{path} has history schema {row[0] if row else 'none'}, not one this pytest-llmeval reads "
            f"({SCHEMA_VERSION}); upgrade pytest-llmeval or use another history file"
        )


def open_for_reading(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to an existing history file of a schema this version reads
    (the file is never changed: not its journal mode, not an empty or foreign file)."""
    path = Path(path)
    if not path.exists():
        raise _missing(path)
    if path.is_dir():
        raise HistoryError(f"{path} is a folder, not a history file; pass --db with the history file (default .llmeval/history.sqlite)")
    _refuse_foreign(path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise _unusable(path, exc) from None
    try:
        _check_readable(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def column_or_zero(conn: sqlite3.Connection, table: str, alias: str, column: str) -> str:
    """``alias.column``, or ``0`` in a file from before the column existed."""
    return f"{alias}.{column}" if column in _columns(conn, table) else "0"
