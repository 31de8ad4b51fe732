"""Content hashes of what determines a model's outputs, cached so a session pays them once."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import stat
import tempfile
from pathlib import Path
from typing import Collection, Iterable, Sequence

CHUNK = 1 << 20


def cache_dir() -> Path:
    """Where converted models and hash caches live: ``$LLMEVAL_CACHE_DIR`` or ``~/.cache/pytest-llmeval``."""
    root = os.environ.get("LLMEVAL_CACHE_DIR")
    if root:
        return Path(root).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-llmeval"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cached_file_hash(path: Path, cache: Path | None = None) -> str:
    """sha256 of ``path``, remembered by (absolute path, size, mtime) so a file is read once."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = (cache or cache_dir()) / "hashes.json"
    table: dict[str, str] = {}
    try:
        table = json.loads(cache_file.read_text())
        if not isinstance(table, dict):
            table = {}
    except (OSError, ValueError):
        table = {}
    if key in table:
        return table[key]
    digest = sha256_file(path)
    table = {k: v for k, v in table.items() if not k.startswith(f"{path}|")}
    table[key] = digest
    try:
        atomic_write_text(cache_file, json.dumps(table, sort_keys=True, indent=1) + "\n")
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return digest


def hash_files(paths: Iterable[Path]) -> str:
    """One digest over several files (by name and content hash), order-independent."""
    parts = sorted(f"{p.name}:{cached_file_hash(p)}" for p in paths)
    return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def sha256_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class ReadOnlyFileError(PermissionError):
    """The file exists and the user may not write it: it was left as it is."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader never sees half a file (temp file, fsync, rename).

    A file that exists keeps its permission bits; a new file gets the usual mode for new
    files (0666 less the umask). A symbolic link is followed, so the file it names is
    replaced and the link stays. A file the user may not write is not replaced:
    :class:`ReadOnlyFileError` says so (renaming over it would succeed in a writable folder).
    """
    path = Path(os.path.realpath(path))
    mode = _existing_mode(path)
    if mode is not None and not os.access(path, os.W_OK):
        raise ReadOnlyFileError(errno.EACCES, "the file is read-only (make it writable to let it be replaced)", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _existing_mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------- our SQLite files


def _tables(path: Path, options: str) -> set[str] | None:
    """The tables of the SQLite file ``path``, opened read-only; None when it cannot be read."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro{'&' + options if options else ''}", uri=True)
    except sqlite3.Error:
        return None
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def create_sqlite_file(path: Path, statements: Sequence[str]) -> bool:
    """Create the SQLite file ``path`` holding the tables ``statements`` make, atomically: it is
    built beside ``path`` and linked into place only when nothing is there, so no process ever
    sees a half-made or empty file (of two that create it at once, one wins and both use its
    file). The file uses a rollback journal: everything committed is in the file itself.
    Returns whether this call created it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")
            for statement in statements:
                conn.execute(statement)
        finally:
            conn.close()
        os.chmod(tmp, 0o666 & ~_umask())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: the rename is atomic, only not exclusive
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def foreign_sqlite(path: Path, ours: Collection[str], what: str) -> str | None:
    """Why the existing file ``path`` is not one of our SQLite files (``what``: "a completion
    cache"), or None when it is: a SQLite file with no table but ``ours`` (an older version's
    may lack some; one with no table at all is ours to fill). An empty file is not one (SQLite
    would make it a database). The file is read, never changed. A file that is not SQLite at
    all is None here: the caller's own open says so (it may be a damaged file of ours)."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return f"{path} is an empty file, not {what}"
    except OSError:
        return None
    tables = _tables(path, "immutable=1")  # reads the file alone: no lock, no -wal or -shm file made
    wal = path.with_name(path.name + "-wal")
    if not tables and wal.is_file() and wal.stat().st_size:  # its tables may be in the WAL file still
        tables = _tables(path, "")
    if tables is None:
        return None
    if tables <= set(ours):
        return None
    listed = ", ".join(sorted(tables)[:5]) + (" ..." if len(tables) > 5 else "")
    return f"{path} is a SQLite file of another kind (tables: {listed}), not {what}"


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5")


def weight_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in Path(model_dir).iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
