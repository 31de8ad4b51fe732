"""The run history's SQLite file: its schema, bringing an older file up to date, and opening it
for writing (WAL, so several processes can share it) or for reading (refusing a file that is not
one, or is newer than this version reads). :mod:`~pytest_llmeval.results.history` reads and
writes the runs in it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

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


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """A connection in WAL mode, waiting up to 30 s for other writers; ``create`` makes the
    file (and its folder) when missing, otherwise a missing file is a :class:`HistoryError`."""
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
        conn.execute("PRAGMA busy_timeout=%d" % int(_TIMEOUT_S * 1000))
        _set_wal(conn)
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as exc:
        raise _unusable(path, exc) from None
    return conn


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. While another process creates the file, SQLite answers "database is
    locked" at once here (its busy handler is not called for this pragma): wait and retry."""
    deadline = time.monotonic() + _TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables if needed and bring an older file up to date (inside the caller's
    transaction); refuse a newer one."""
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
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
    """A connection to an existing history file of a schema this version reads."""
    path = Path(path)
    conn = connect(path, create=False)
    try:
        _check_readable(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def column_or_zero(conn: sqlite3.Connection, table: str, alias: str, column: str) -> str:
    """``alias.column``, or ``0`` in a file from before the column existed."""
    return f"{alias}.{column}" if column in _columns(conn, table) else "0"
