"""``le.assert_code``: run a program and its tests in the sandbox, pass or miss by the verdict.

Which sandbox runs it is set once per session (:func:`configure`, from the plugin's
``llmeval_code_sandbox``; ``bwrap`` unless told otherwise), as is the pool that runs jobs in
parallel. Every verdict is also handed to the :func:`recording_verdicts` block around the
call, so the plugin can put it in the case's record.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

from pytest_llmeval.scoring.code.pool import CodePool, Prefetched, note_prefetched, prefetch_active
from pytest_llmeval.scoring.code.sandbox import Job, Limits, Sandbox, get_sandbox
from pytest_llmeval.scoring.code.verdict import Verdict
from pytest_llmeval.scoring.failures import EvalFailure

__all__ = ["CodeFailure", "assert_code", "configure", "current_pool", "extract_code", "recording_verdicts", "shutdown"]

DEFAULT_SANDBOX = "bwrap"

_settings: dict[str, Any] = {"sandbox": DEFAULT_SANDBOX, "workers": None}
_pool: CodePool | None = None
_lock = threading.Lock()
_verdicts: ContextVar[list[Verdict] | None] = ContextVar("llmeval_code_verdicts", default=None)


class CodeFailure(EvalFailure):
    """A miss of ``assert_code``: an :class:`EvalFailure` that carries the run's :class:`Verdict`."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(verdict.reason or verdict.status, score=0.0, scorer="assert_code")


def configure(sandbox: str | None = None, workers: int | None = None) -> None:
    """Choose the sandbox by name and the number of parallel runs for this session; the pool is
    made anew (runs in flight finish first)."""
    global _pool
    with _lock:
        if sandbox is not None:
            _settings["sandbox"] = sandbox
        if workers is not None:
            if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
                raise ValueError(f"workers must be a whole number of at least 1, got {workers!r}")
            _settings["workers"] = workers
        old, _pool = _pool, None
    if old is not None:
        old.shutdown()


def current_sandbox() -> Sandbox:
    return get_sandbox(_settings["sandbox"])


def current_pool() -> CodePool:
    global _pool
    with _lock:
        if _pool is None:
            _pool = CodePool(_settings["workers"])
        return _pool


def shutdown() -> None:
    """End the session's pool and go back to the default sandbox and pool size (the plugin calls
    this when the session finishes, so a later session in the same process starts afresh)."""
    global _pool
    with _lock:
        old, _pool = _pool, None
        _settings.update(sandbox=DEFAULT_SANDBOX, workers=None)
    if old is not None:
        old.shutdown()


@contextmanager
def recording_verdicts() -> Iterator[list[Verdict]]:
    """Collect the verdicts of the ``assert_code`` calls made inside the block."""
    found: list[Verdict] = []
    token = _verdicts.set(found)
    try:
        yield found
    finally:
        _verdicts.reset(token)


_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.#-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.#-]*)[^\n]*\n", re.MULTILINE)
_PYTHON = {"python", "py", "python3", "py3"}


def extract_code(text: str) -> str:
    """The code of a chat answer: the first fenced block tagged Python (```python), else the first
    fenced block, else the text after an opening fence that was never closed (a cut answer),
    else the whole text as it is."""
    if not isinstance(text, str):
        raise TypeError(f"extract_code takes a string, got {type(text).__name__}")
    blocks = [(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(text)]
    for language, body in blocks:
        if language in _PYTHON:
            return body
    if blocks:
        return blocks[0][1]
    opening = _OPEN.search(text)
    if opening is not None:
        return text[opening.end() :]
    return text


def assert_code(
    program: str,
    tests: str,
    *,
    entry_point: str | None = None,
    timeout: float = 10,
    memory_mb: int = 1024,
    extract: bool = False,
) -> float:
    """Run ``program``, then ``tests``, then ``check(entry_point)`` (when given) in the sandbox.

    1.0 when the tests pass. A miss (:class:`CodeFailure`, an ``EvalFailure``) when a test fails,
    the program raises, exits before the tests finished (``sys.exit(0)`` included), runs past
    ``timeout`` seconds, or exceeds ``memory_mb`` MiB; its reason says which. When the sandbox
    cannot start it raises :class:`~pytest_llmeval.scoring.code.sandbox.SandboxError` (an error,
    never a miss). ``extract=True`` takes the program from the answer's fenced code block.
    """
    if not isinstance(program, str):
        raise TypeError(f"assert_code: program must be a string, got {type(program).__name__}")
    if not isinstance(tests, str):
        raise TypeError(f"assert_code: tests must be a string of Python source, got {type(tests).__name__}")
    if extract:
        program = extract_code(program)
    job = Job(program, tests, entry_point, Limits(timeout=timeout, memory_mb=memory_mb))
    sandbox = current_sandbox()
    pool = current_pool()
    if prefetch_active():
        pool.submit(sandbox, job)
        note_prefetched(job.key(sandbox.name))
        raise Prefetched()
    verdict = pool.take(sandbox, job)
    found = _verdicts.get()
    if found is not None:
        found.append(verdict)
    if not verdict.passed:
        raise CodeFailure(verdict)
    return 1.0
