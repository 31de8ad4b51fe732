"""The completion cache's SQLite file: shared by concurrent sessions and xdist workers (a busy
timeout, retries), set aside when corrupt, a warning when it cannot be used.

The file uses a rollback journal, not WAL: every committed batch of outputs is in the file
itself, so the one file is the whole cache (a CI step may cache or upload it alone), also after
a process was killed. Concurrent writers stay safe (each write is one short ``BEGIN
IMMEDIATE`` transaction, and a busy file is waited for); WAL's gain, readers that never wait
for a writer, is worth little next to a model's seconds per batch. A file left in WAL mode by
an older version is switched back when no other process has it open, and folded in
(checkpointed) when closed. A file at the cache path that is not a cache (an empty file,
another application's SQLite file) is never written: the run goes on without a cache."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from pytest_llmeval.files import create_sqlite_file, foreign_sqlite
from pytest_llmeval.own_warnings import warn

BUSY_TIMEOUT_S = 30.0
RETRIES = 6
T = TypeVar("T")


class LLMEvalCacheWarning(UserWarning):
    """The completion cache could not be used as asked (corrupt, unwritable, locked)."""


def _is_corrupt(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text or "corrupt" in text)


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock next to the cache while it is opened (and maybe set aside)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, the rename is still atomic
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_TABLE_NAMES = ("outputs", "backends")
_TABLES = (
    "CREATE TABLE IF NOT EXISTS outputs (key TEXT PRIMARY KEY, identity TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS outputs_identity ON outputs (identity)",
    "CREATE TABLE IF NOT EXISTS backends (identity TEXT PRIMARY KEY, info TEXT NOT NULL)",
)


class CacheStore:
    """The SQLite file. Every failure becomes one warning and turns the cache off for the run."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.problem: str | None = None
        self._conn: sqlite3.Connection | None = None

    def _warn(self, text: str) -> None:
        warn(LLMEvalCacheWarning(f"llmeval: {text}"), stacklevel=3)

    def _disable(self, why: str, hint: str) -> None:
        if self.problem is None:
            self.problem = why
            self._warn(f"the completion cache {self.path} {why}; this run goes on without it ({hint})")
        self.close()

    def connection(self) -> sqlite3.Connection | None:
        if self._conn is not None or self.problem is not None:
            return self._conn
        try:
            self._conn = self._open()
        except sqlite3.Error as exc:
            self._disable(f"cannot be used ({exc})", "check the path and its permissions, or set llmeval_cache_path")
        except OSError as exc:
            self._disable(f"cannot be created ({exc.strerror or exc})", "make its folder writable, or set llmeval_cache_path")
        return self._conn

    def _open(self) -> sqlite3.Connection | None:
        if self.readonly:
            if not self.path.is_file():
                return None
            return self._connect(f"file:{self.path}?mode=ro", uri=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.path):
            if not self.path.exists():
                create_sqlite_file(self.path, _TABLES)
            foreign = foreign_sqlite(self.path, _TABLE_NAMES, "a completion cache")
            if foreign is not None:
                self._disable(f"cannot be used: {foreign}", "set llmeval_cache_path to a file of its own, or move that file away")
                return None
            try:
                return self._initialized(self._connect(str(self.path)))
            except sqlite3.DatabaseError as exc:
                if not _is_corrupt(exc):
                    raise
                problem = str(exc)
            aside = self._set_aside()
            self._warn(
                f"the completion cache {self.path} is corrupt ({problem}); it was set aside as {aside.name} and a new one started "
                f"(delete {aside.name} when you no longer need it)"
            )
            return self._initialized(self._connect(str(self.path)))

    @staticmethod
    def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, uri=uri, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    def _initialized(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        try:
            _leave_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            for statement in _TABLES:
                _retrying(lambda s=statement: conn.execute(s))
            conn.execute("SELECT count(*) FROM outputs").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def _set_aside(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{os.getpid()}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            try:
                os.replace(self.path.with_name(self.path.name + suffix), aside.with_name(aside.name + suffix))
            except FileNotFoundError:
                pass
        return aside

    def run(self, what: str, action: Callable[[sqlite3.Connection], T], default: T) -> T:
        """``action`` on the connection, retried while the file is busy; ``default`` on failure."""
        conn = self.connection()
        if conn is None:
            return default
        try:
            return _retrying(lambda: action(conn))
        except sqlite3.Error as exc:
            if _is_corrupt(exc):
                self._disable(f"is corrupt ({exc})", "it is set aside at the start of the next run")
            elif "readonly" in str(exc).lower() or "read-only" in str(exc).lower():
                self._disable(f"cannot be written ({exc})", "make it writable, or run with --llmeval-cache=readonly")
            else:
                self._disable(f"could not {what} ({exc})", "re-run; if it persists, delete the file")
            return default

    def close(self) -> None:
        """Close the file (at the end of every session, workers' included): a file still in WAL
        mode (another process had it open when this one switched) is folded in first."""
        if self._conn is not None:
            try:
                if not self.readonly:
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # busy: the last process to close it folds it in
            finally:
                self._conn.close()
                self._conn = None


def _leave_wal(conn: sqlite3.Connection) -> None:
    """A rollback journal for a file an older version left in WAL mode; while another process
    has it open SQLite refuses the switch, and the file stays in WAL for now."""
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.OperationalError as exc:
        if not _is_busy(exc):
            raise


def _retrying(action: Callable[[], T]) -> T:
    """``action``, tried again with growing, jittered pauses while SQLite says the file is busy
    (the busy timeout covers most waits; a WAL checkpoint or schema change can still refuse)."""
    for attempt in range(RETRIES):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or attempt == RETRIES - 1:
                raise
            time.sleep(0.05 * 2**attempt * (1 + random.random()))
    raise AssertionError("unreachable")  # pragma: no cover


def transaction(conn: sqlite3.Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> bool:
    return transaction_many(conn, [(sql, rows)])


def transaction_many(conn: sqlite3.Connection, statements: Sequence[tuple[str, Sequence[tuple[Any, ...]]]]) -> bool:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, rows in statements:
            conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return True
