"""Runs in parallel: a pool of sandbox runs, and the prefetch pass that fills it ahead of pytest.

Each run is a child process (bwrap or python), so the pool is a set of threads that start a
child and wait on its pipes: no pickling, and no fork of a process that holds a model and its
threads. ``workers`` runs proceed at once (default: the CPUs this process may use).

pytest calls ``assert_code`` one item at a time. To run a window of items' programs at once,
the plugin calls each code suite's test body ahead of time in a *prefetch pass*
(:func:`prefetch`): there ``assert_code`` only submits its job and stops the body (it raises
:class:`Prefetched`, which no ``except Exception`` catches). When pytest later runs the item,
``assert_code`` builds the same job, finds its run under the same key, and waits for the
verdict (:meth:`CodePool.take`). A job nobody prefetched is submitted and waited for then.
"""

from __future__ import annotations

import inspect
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterable, Iterator

from pytest_llmeval.scoring.code.sandbox import Job, Sandbox
from pytest_llmeval.scoring.code.verdict import Verdict
from pytest_llmeval.scoring.recording import collecting_scores

__all__ = ["CodePool", "Prefetched", "can_prefetch", "default_workers", "prefetch", "prefetching"]


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class CodePool:
    """Sandbox runs in flight, by job key; each verdict is handed to every ``take`` of its key."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="llmeval-code")
        self._pending: dict[str, tuple[Future[Verdict], int]] = {}
        self._lock = threading.Lock()
        self.started = 0

    def submit(self, sandbox: Sandbox, job: Job) -> Future[Verdict]:
        """Start ``job`` (or join the run of an equal job already in flight); one ``take`` owed."""
        key = job.key(sandbox.name)
        with self._lock:
            future, owed = self._in_flight(key, sandbox, job)
            self._pending[key] = (future, owed + 1)
            return future

    def take(self, sandbox: Sandbox, job: Job, timeout: float | None = None) -> Verdict:
        """The verdict of ``job``: from its prefetched run, or from a run started now."""
        key = job.key(sandbox.name)
        with self._lock:
            future, owed = self._in_flight(key, sandbox, job)
            if owed > 1:
                self._pending[key] = (future, owed - 1)
            elif owed == 1:
                del self._pending[key]
        return future.result(timeout)

    def _in_flight(self, key: str, sandbox: Sandbox, job: Job) -> tuple[Future[Verdict], int]:
        """The run of ``key`` and the ``take`` calls owed to it; a run started now (none owed) when
        no equal job is queued or running. Called with the lock held."""
        future, owed = self._pending.get(key, (None, 0))
        if future is None:
            future = self._executor.submit(sandbox.run, job)
            self.started += 1
        return future, owed

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def shutdown(self, wait: bool = True) -> None:
        """Drop the runs nobody took (queued ones are cancelled; running ones finish)."""
        with self._lock:
            self._pending.clear()
        self._executor.shutdown(wait=wait, cancel_futures=True)

    def map(self, sandbox: Sandbox, jobs: Iterable[Job]) -> list[Verdict]:
        """Every job's verdict, run in parallel, in the order given."""
        futures = [self._executor.submit(sandbox.run, job) for job in jobs]
        return [f.result() for f in futures]


class Prefetched(BaseException):
    """Raised by ``assert_code`` in a prefetch pass once its job is submitted: the test body stops
    there. A ``BaseException`` so that a body's ``except Exception`` does not swallow it."""


_prefetch: ContextVar[list[str] | None] = ContextVar("llmeval_code_prefetch", default=None)


def prefetch_active() -> bool:
    return _prefetch.get() is not None


def note_prefetched(key: str) -> None:
    submitted = _prefetch.get()
    if submitted is not None:
        submitted.append(key)


@contextmanager
def prefetching() -> Iterator[list[str]]:
    """Inside the block ``assert_code`` submits and stops; yields the keys it submitted."""
    submitted: list[str] = []
    token = _prefetch.set(submitted)
    try:
        with collecting_scores():  # le.score() calls of a prefetch pass are not the item's
            yield submitted
    finally:
        _prefetch.reset(token)


def prefetch(call: Callable[[], Any]) -> list[str]:
    """Run a test body in a prefetch pass; the keys of the jobs it submitted (usually one).

    Whatever the body raises before ``assert_code`` (a miss of another scorer, a bug, and also
    ``pytest.skip``, ``pytest.fail`` or ``sys.exit``) is left for the real call to raise: here it
    only means nothing was submitted. Only a ``KeyboardInterrupt`` goes through.
    """
    with prefetching() as submitted:
        try:
            call()
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - Prefetched, or what the real call will raise again
            pass
    return submitted


def can_prefetch(function: Callable[..., Any], available: Iterable[str] = ("case", "completion")) -> bool:
    """Whether a prefetch pass may call ``function``: it uses ``assert_code`` and needs no
    argument but the ``available`` ones (no fixture with set-up, no model call of its own)."""
    target = inspect.unwrap(function)
    code = getattr(target, "__code__", None)
    if code is None or "assert_code" not in _names(code):
        return False
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    allowed = set(available)
    for p in parameters:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name not in allowed and p.default is p.empty:
            return False
    return True


def _names(code: Any) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _names(const)
    return names
