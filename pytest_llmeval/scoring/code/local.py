"""The ``none`` provider: a plain subprocess, for trusted code only.

The same harness, limits, empty environment and fresh temporary directory as ``bwrap``, and the
same base interpreter, but no namespaces: the program can read and write whatever the user
running the tests can, open network connections, see other processes (``/proc/<pid>/environ``
of its parent included) and signal them. When that user is root, the kernel does not enforce
the process-count limit either. Choose it with ``llmeval_code_sandbox = none`` where
bubblewrap cannot run and the code is yours.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from pytest_llmeval.scoring.code.interpreter import base_interpreter
from pytest_llmeval.scoring.code.runner import run_harness
from pytest_llmeval.scoring.code.sandbox import Job, SandboxUnavailable
from pytest_llmeval.scoring.code.verdict import Verdict

__all__ = ["LocalSandbox"]


class LocalSandbox:
    """Runs each job as a child process of this one, in its own session and temporary directory."""

    name = "none"

    def __init__(self) -> None:
        try:
            self.interpreter = base_interpreter()
        except FileNotFoundError as exc:
            raise SandboxUnavailable(f"assert_code: {exc}") from None

    @property
    def protections(self) -> tuple[str, ...]:
        found = ["private-tmpdir", "empty-environment", "rlimits", "new-session", "stdin-closed", "killed-on-timeout",
                 "output-truncated"]  # fmt: skip
        if os.geteuid() != 0:
            found.insert(3, "process-limit")
        return tuple(found)

    def run(self, job: Job) -> Verdict:
        workdir = tempfile.mkdtemp(prefix="llmeval-code-")
        try:
            env = {"HOME": workdir, "TMPDIR": workdir, "PATH": str(self.interpreter.executable.parent)}
            return run_harness(
                [], str(self.interpreter.executable), job, sandbox=self.name, protections=self.protections,
                env=env, cwd=workdir, processes_relative=True,
            )  # fmt: skip
        finally:
            shutil.rmtree(workdir, onerror=_force)


def _force(function: object, path: str, _exc: object) -> None:
    """Remove what the program made read-only or unsearchable."""
    try:
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
    except OSError:
        return
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass
