"""A backend in a worker process: a crash inside a native engine ends the worker, not pytest.

An engine in native code (llama.cpp) can die in ways Python cannot catch: a segfault in a build
made for another CPU, an abort in one of its assertions. :class:`WorkerBackend` runs such a backend
in a child process (``multiprocessing``'s spawn: a fresh interpreter that inherits nothing but its
arguments) and forwards the backend protocol to it: ``run_generate`` and ``run_rank`` send their
requests and receive the outputs, and the progress as it comes.

- When the worker dies during a call, each request of that call gets an
  :class:`~.protocol.OutputError` saying how it died (those cases error, never pass or miss) and
  the other cases go on: the next call starts a new worker, which loads the model again. After
  :data:`MAX_CRASHES` crashes in a row no worker is started again; the remaining requests error
  at once, with the same line.
- An exception the backend raises in Python (a bad option, a bug) comes back as itself; the worker
  lives on.
- A call interrupted in the parent (Ctrl-C, pytest-timeout) ends the worker, which may be half-way
  through it; the next call starts a new one.
- What the plugin reads without computing (fingerprint, ``describe``, ``has_chat_template``,
  capabilities, batch size, longest context) is fetched once when the worker has loaded the model.
  ``check`` returns None: an engine behind a worker has no state a test can change.

The backend in the worker is made by ``target`` (``"module:function"``, called as
``function(spec, settings, rootdir=...)``), which must be importable in a fresh interpreter.
"""

from __future__ import annotations

import importlib
import multiprocessing
import pickle
import signal
import time
import weakref
from pathlib import Path
from typing import Any, Mapping, Sequence

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.models.protocol import GENERATE, ModelLoadError, OutputError, Progress
from pytest_llmeval.settings import LLMSettings

MAX_CRASHES = 3
"""Crashes in a row after which no new worker is started."""
POLL_SECONDS = 0.5
STOP_SECONDS = 5.0
CALLS = frozenset({"run_generate", "run_rank", "generate", "loglikelihood", "render"})


class WorkerDied(RuntimeError):
    """The worker process ended during a call; the message says how."""


class WorkerBackend:
    """The backend ``target`` makes, run in a worker process (see the module docstring)."""

    def __init__(self, target: str, spec: str, settings: LLMSettings, rootdir: Path | None = None, *,
                 engine: str = "the engine", hint: str = "") -> None:
        self.settings = settings
        self.engine = engine
        self.hint = hint
        self.crashes = 0  # in a row
        self.workers_started = 0
        self._args = (target, spec, settings, rootdir)
        self._process: Any = None
        self._conn: Any = None
        self._gave_up: str | None = None
        started = time.perf_counter()
        try:
            self._info = self._start()
        except WorkerDied as died:
            raise ModelLoadError(f"{spec}: {died}") from None
        self.load_seconds = time.perf_counter() - started

    # what the plugin reads ---------------------------------------------------

    @property
    def fingerprint(self) -> Mapping[str, Any]:
        return self._info["fingerprint"]

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self._info["capabilities"])

    @property
    def has_chat_template(self) -> bool | None:
        return self._info["has_chat_template"]

    def describe(self) -> str:
        return f"{self._info['describe']} in a worker process"

    def batch_size(self) -> int:
        return int(self._info["batch_size"] or 1)

    def max_length(self) -> int | None:
        return self._info["max_length"]

    def check(self) -> str | None:
        return None

    @property
    def pid(self) -> int | None:
        """The worker's process id (None: no worker is running)."""
        return None if self._process is None else self._process.pid

    # computing ---------------------------------------------------------------

    def run_generate(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        return self._per_request("run_generate", requests, progress)

    def run_rank(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Ranked]:
        return self._per_request("run_rank", requests, progress)

    def generate(self, prompt: Any, **overrides: Any) -> Any:
        """As the backend's ``generate``; a crash raises its :class:`OutputError`."""
        return self._raising("generate", prompt, **overrides)

    def loglikelihood(self, context: str, continuations: Any) -> Ranked:
        return self._raising("loglikelihood", context, continuations)

    def render(self, text: str, **options: Any) -> str:
        return self._raising("render", text, **options)

    def close(self) -> None:
        """Stop the worker (it closes its backend first)."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is not None:
            _stop(process, conn, polite=True)

    # the worker --------------------------------------------------------------

    def _per_request(self, name: str, requests: Sequence[Request], progress: Progress | None) -> list[Any]:
        if not requests:
            return []
        try:
            return self._call(name, (list(requests),), {}, progress)
        except WorkerDied as died:
            return [OutputError(str(died)) for _ in requests]

    def _raising(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._call(name, args, kwargs, None)
        except WorkerDied as died:
            raise OutputError(str(died)) from None

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], progress: Progress | None) -> Any:
        if self._conn is None:
            if self._gave_up is not None:
                raise WorkerDied(self._gave_up)
            try:
                self._start()
            except (WorkerDied, ModelLoadError) as exc:
                self._crashed()
                raise WorkerDied(f"{self.engine} could not start again after a crash: {exc}") from None
        try:
            self._conn.send(("call", name, args, kwargs))
            while True:
                kind, value = self._receive()
                if kind == "progress":
                    if progress is not None:
                        progress(value)
                    continue
                break
        except WorkerDied:
            self._crashed()
            raise
        except BaseException:  # Ctrl-C, a timeout: the worker may be mid-call; it cannot serve another
            self.close()
            raise
        self.crashes = 0
        if kind == "raised":
            raise value
        return value

    def _crashed(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is not None:
            _stop(process, conn, polite=False)
        self.crashes += 1
        if self.crashes >= MAX_CRASHES:
            self._gave_up = (f"{self.engine} crashed {self.crashes} times in a row; no new worker is started for the "
                             f"rest of the run{'; ' + self.hint if self.hint else ''}")

    def _start(self) -> dict[str, Any]:
        """Start a worker and wait until its backend is loaded: its info, or the load's exception."""
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=serve, args=(child, *self._args), daemon=True, name="llmeval-engine")
        process.start()
        child.close()  # the worker's end lives in the worker only: its death reads as end of file here
        self._process, self._conn = process, parent
        self.workers_started += 1
        weakref.finalize(self, _stop, process, parent, False)
        try:
            kind, value = self._receive(loading=True)
        except BaseException:
            self.close()
            raise
        if kind == "raised":
            self.close()
            raise value
        return value

    def _receive(self, loading: bool = False) -> tuple[str, Any]:
        conn, process = self._conn, self._process
        while True:
            try:
                if conn.poll(POLL_SECONDS):
                    return conn.recv()
            except (EOFError, OSError):
                pass
            else:
                if process.is_alive():
                    continue
                if conn.poll(0):  # it answered, then ended
                    try:
                        return conn.recv()
                    except (EOFError, OSError):
                        pass
            process.join(STOP_SECONDS)
            raise WorkerDied(self._death(process.exitcode, loading))

    def _death(self, exitcode: int | None, loading: bool) -> str:
        how = _how(exitcode)
        doing = "loading the model" if loading else "computing this case's batch"
        then = "" if loading else "; the other cases go on in a new worker"
        return f"{self.engine} crashed while {doing} (its worker process {how}){then}{'; ' + self.hint if self.hint else ''}"


def _how(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def _stop(process: Any, conn: Any, polite: bool) -> None:
    """End a worker: ask it to close its backend and exit (``polite``), else terminate it."""
    try:
        if polite and process.is_alive():
            conn.send(("close",))
            process.join(STOP_SECONDS)
    except (OSError, ValueError):
        pass
    if process.is_alive():
        process.kill()
        process.join(STOP_SECONDS)
    try:
        conn.close()
    except OSError:
        pass


# ----------------------------------------------------------------------------- in the worker


def serve(conn: Any, target: str, spec: str, settings: LLMSettings, rootdir: Path | None) -> None:
    """The worker's loop: load the backend, say what it is, then answer calls until told to close."""
    try:
        module, _, name = target.partition(":")
        backend = getattr(importlib.import_module(module), name)(spec, settings, rootdir=rootdir)
        conn.send(("ready", _info(backend)))
    except Exception as exc:
        conn.send(("raised", _sendable(exc)))
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            break
        if message[0] != "call":
            break
        _, name, args, kwargs = message
        try:
            if name not in CALLS:
                raise AttributeError(f"a worker backend does not forward {name!r}")
            if name in ("run_generate", "run_rank"):
                kwargs = {**kwargs, "progress": lambda n: conn.send(("progress", n))}
            conn.send(("done", getattr(backend, name)(*args, **kwargs)))
        except Exception as exc:
            conn.send(("raised", _sendable(exc)))
    close = getattr(backend, "close", None)
    if callable(close):
        close()


def _info(backend: Any) -> dict[str, Any]:
    def optional(name: str) -> Any:
        method = getattr(backend, name, None)
        return method() if callable(method) else None

    return {
        "fingerprint": dict(backend.fingerprint),
        "describe": backend.describe(),
        "has_chat_template": getattr(backend, "has_chat_template", None),
        "capabilities": sorted(getattr(backend, "capabilities", (GENERATE,))),
        "batch_size": optional("batch_size"),
        "max_length": optional("max_length"),
    }


def _sendable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
