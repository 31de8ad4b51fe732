"""The sandbox interface: a job, its limits, the provider protocol and the providers by name.

A provider runs one :class:`Job` (a program, its tests, an entry point, :class:`Limits`) and
returns a :class:`~pytest_llmeval.scoring.code.verdict.Verdict`, or raises
:class:`SandboxError` when it cannot run anything at all. Two are built in:

- ``bwrap`` (the default): Debian's bubblewrap, the engine Flatpak uses; namespaces, a
  read-only view of the interpreter and its standard library, a private tmpfs;
- ``none``: a plain subprocess with the same limits, empty environment and temporary directory,
  but no namespaces: for trusted code only.

Others come from installed packages, registered under the entry-point group
``pytest_llmeval.sandboxes`` (``name = "package.module:factory"``; the factory takes no
arguments and returns an object with ``name``, ``protections`` and ``run(job)``). A provider
that starts its own interpreter can reuse :func:`pytest_llmeval.scoring.code.runner.run_harness`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from pytest_llmeval.scoring.code.verdict import Verdict

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "INSTALL_HINT",
    "PROTECTIONS",
    "START_HINT",
    "Job",
    "Limits",
    "Sandbox",
    "SandboxError",
    "SandboxUnavailable",
    "available_sandboxes",
    "get_sandbox",
]

ENTRY_POINT_GROUP = "pytest_llmeval.sandboxes"
BUILTIN: dict[str, str] = {
    "bwrap": "pytest_llmeval.scoring.code.bwrap:BwrapSandbox",
    "none": "pytest_llmeval.scoring.code.local:LocalSandbox",
}
INSTALL_HINT = (
    "install bubblewrap (apt-get install bubblewrap), or set llmeval_code_sandbox = none to run trusted code "
    "without a sandbox"
)
START_HINT = (
    "make the sandbox work here (bubblewrap needs root or unprivileged user namespaces), or set "
    "llmeval_code_sandbox = none to run trusted code without a sandbox"
)

PROTECTIONS: dict[str, str] = {
    "network-namespace": "no network: a private network namespace with only its own loopback",
    "pid-namespace": "sees and signals only its own processes; all of them die with the run",
    "ipc-namespace": "private System V IPC and message queues",
    "uts-namespace": "private host name",
    "filesystem-view": "sees only the interpreter, its standard library and system libraries, read-only",
    "private-tmpfs": "a private, size-bounded tmpfs as working directory, HOME and TMPDIR",
    "private-tmpdir": "a fresh temporary directory as working directory, HOME and TMPDIR (the rest of the disk is reachable)",
    "empty-environment": "no environment variable of the caller reaches the program",
    "unprivileged-user": "runs as an unprivileged user id of its own, no capabilities",
    "rlimits": "limits on CPU seconds, address space, file size, open files and process count",
    "process-limit": "the kernel enforces the process-count limit (it exempts root)",
    "new-session": "its own session: cannot reach the caller's terminal",
    "stdin-closed": "stdin reads end-of-file",
    "killed-on-timeout": "its process group (or namespace) is killed at the time limit",
    "output-truncated": "only the end of its output is kept",
}
"""Every protection a provider may report as in force, and what it means."""


class SandboxError(RuntimeError):
    """The sandbox could not run the program at all: an error of the set-up, never a miss."""


class SandboxUnavailable(SandboxError):
    """The chosen sandbox is missing or unusable on this machine (the message says how to fix it)."""


@dataclass(frozen=True)
class Limits:
    """What one run may use. ``timeout`` is wall-clock seconds for the whole run (the CPU limit
    is one second more, so the wall clock decides); ``memory_mb`` is each process's address
    space; ``processes`` counts processes and threads of the run; ``disk_mb`` bounds the private
    tmpfs where a provider has one."""

    timeout: float = 10.0
    memory_mb: int = 1024
    file_mb: int = 16
    disk_mb: int = 64
    processes: int = 8
    open_files: int = 256
    output_tail: int = 4096
    """Bytes of output kept (the end); the rest is read and dropped."""

    def __post_init__(self) -> None:
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)) or not 0 < self.timeout <= 86400:
            raise ValueError(f"timeout must be a number of seconds above 0, got {self.timeout!r}")
        for name in ("memory_mb", "file_mb", "disk_mb", "processes", "open_files", "output_tail"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
        if self.memory_mb < 64:
            raise ValueError(f"memory_mb must be at least 64 (the interpreter alone needs about 30), got {self.memory_mb}")

    def rlimits(self) -> dict[str, int]:
        """The values the harness sets (see :mod:`pytest_llmeval.scoring.code.harness`)."""
        return {
            "cpu_s": math.ceil(self.timeout) + 1,
            "memory_bytes": self.memory_mb << 20,
            "file_bytes": self.file_mb << 20,
            "processes": self.processes,
            "open_files": self.open_files,
        }


@dataclass(frozen=True)
class Job:
    """A program and its tests: run ``program``, then ``tests``, then ``check(entry_point)``."""

    program: str
    tests: str = ""
    entry_point: str | None = None
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if not isinstance(self.program, str) or not isinstance(self.tests, str):
            raise TypeError("program and tests must be strings of Python source")
        if self.entry_point is not None and not (isinstance(self.entry_point, str) and self.entry_point.isidentifier()):
            raise ValueError(f"entry_point must be a function name (an identifier), got {self.entry_point!r}")

    def key(self, sandbox: str = "") -> str:
        """Equal for two jobs that must give the same verdict in the same sandbox."""
        text = json.dumps([sandbox, self.program, self.tests, self.entry_point, asdict(self.limits)], sort_keys=True)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@runtime_checkable
class Sandbox(Protocol):
    """What a provider offers: its name, the protections it puts in force, and ``run``."""

    name: str

    @property
    def protections(self) -> tuple[str, ...]: ...

    def run(self, job: Job) -> Verdict:
        """Run ``job``; a verdict for anything the program did, :class:`SandboxError` when the
        sandbox itself could not start (:class:`SandboxUnavailable` with a fix when missing)."""
        ...


_cache: dict[str, Sandbox] = {}
_lock = threading.RLock()
"""Re-entrant: a provider may get another provider by name while it is made or checked (a
``protections`` property that asks ``get_sandbox("none")``, read by the protocol check)."""


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_sandboxes() -> list[str]:
    """The names ``llmeval_code_sandbox`` accepts here: the built-in ones and installed ones."""
    return sorted(set(BUILTIN) | set(_entry_points()))


def _factory(name: str) -> Callable[[], Any]:
    if name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    found = _entry_points().get(name)
    if found is None:
        raise SandboxUnavailable(
            f"llmeval_code_sandbox: no sandbox named {name!r}; choose one of {', '.join(available_sandboxes())} "
            f"(others register under the entry-point group {ENTRY_POINT_GROUP})"
        )
    try:
        return found.load()
    except Exception as exc:
        raise SandboxUnavailable(f"llmeval_code_sandbox: the sandbox {name!r} ({found.value}) failed to load: {exc}") from exc


def get_sandbox(name: str = "bwrap") -> Sandbox:
    """The provider called ``name``, made once per process; :class:`SandboxUnavailable` if none is."""
    with _lock:
        if name not in _cache:
            provider = _factory(name)()
            if not isinstance(provider, Sandbox):
                raise SandboxUnavailable(
                    f"llmeval_code_sandbox: the sandbox {name!r} gives a {type(provider).__name__}, "
                    "which has no name, protections and run(job)"
                )
            _cache[name] = provider
        return _cache[name]
