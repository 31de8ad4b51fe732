"""A lock file beside a file, so that two processes never read-modify-write it at once.

``with locked(path):`` holds ``<path>.lock``: an ``fcntl.flock`` lock where there is one (the
kernel lets it go if the process dies), else an exclusively created file. The lock file is
removed on release; a holder checks that the file it locked is still the one at the path, so
removing it is safe while others wait.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux or macOS
    fcntl = None  # type: ignore[assignment]

LOCK_TIMEOUT_S = 120.0
_POLL_S = 0.01


class LockTimeout(TimeoutError):
    """Another process held the lock longer than the timeout; the message names the lock file."""


def lock_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextmanager
def locked(path: Path, *, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the lock of ``path`` for the ``with`` block; raise :class:`LockTimeout` after
    ``timeout`` seconds of waiting, ``OSError`` when the lock file cannot be created."""
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    release = _acquire_flock(lock, deadline) if fcntl is not None else None
    if release is None:
        release = _acquire_exclusive(lock, deadline)
    try:
        yield
    finally:
        release()


def _acquire_flock(lock: Path, deadline: float) -> Callable[[], None] | None:
    """Lock ``lock`` with flock; ``None`` when the file system does not support it."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            _wait(lock, deadline)
            continue
        except OSError:  # no flock on this file system (some network mounts)
            os.close(fd)
            return None
        if _still_at(lock, fd):
            return lambda: _release_flock(lock, fd)
        os.close(fd)  # its holder removed it before we got it: lock the file now at the path


def _still_at(lock: Path, fd: int) -> bool:
    try:
        current = os.stat(lock)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino)


def _release_flock(lock: Path, fd: int) -> None:
    try:
        os.unlink(lock)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)  # closing the last descriptor lets the lock go


def _acquire_exclusive(lock: Path, deadline: float) -> Callable[[], None]:
    """The fallback: the lock is held by whoever created the file."""
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            _wait(lock, deadline)
            continue
        os.close(fd)
        return lambda: _unlink(lock)


def _unlink(lock: Path) -> None:
    try:
        os.unlink(lock)
    except FileNotFoundError:
        pass


def _wait(lock: Path, deadline: float) -> None:
    if time.monotonic() >= deadline:
        raise LockTimeout(
            f"{lock} is held by another run; wait for it to finish "
            f"(or delete {lock.name} if no pytest-llmeval run is writing the file)"
        )
    time.sleep(_POLL_S)
