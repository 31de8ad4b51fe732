"""Helpers for the code-execution tests: the sandboxes that can run here, and the machine's state."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

import pytest

from pytest_llmeval.scoring.code import Job, Limits, Sandbox, SandboxError, get_sandbox
from pytest_llmeval.scoring.code.runner import DRAIN_AFTER_KILL_S

LOAD_MARGIN_S = 8.0
"""Slack on top of "the time limit, then the kill": on an idle machine a killed run ends about
0.1 s after its limit, but a CI runner with every core busy can delay any process by seconds.
A run that is *not* contained outlives its limit by far more: every hostile program here is
written to go on for a minute or more (children that sleep 600 s, endless loops)."""


def could_install_bwrap() -> bool:
    """Whether ``scripts/setup`` installs bubblewrap here: root, with apt-get."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def bwrap_or_skip() -> Sandbox:
    """The bwrap provider, after one trivial run; skips (saying why) where bubblewrap cannot run.

    In CI (``CI=true``) on a machine where ``scripts/setup`` installs it (root with apt-get), a
    bubblewrap that cannot run is a failure: the sandbox's tests must run there, not skip."""
    try:
        sandbox = get_sandbox("bwrap")
        verdict = sandbox.run(Job("pass"))
    except SandboxError as exc:
        if os.environ.get("CI", "").lower() == "true" and could_install_bwrap():
            pytest.fail(f"bubblewrap cannot run in CI, where scripts/setup installs it (as root, with apt-get): {exc}")
        pytest.skip(f"bubblewrap cannot run here: {exc}")
    assert verdict.passed, verdict
    return sandbox


def sandbox_named(name: str) -> Sandbox:
    """The provider a ``params=["bwrap", "none"]`` fixture asks for: bwrap after its check (a skip,
    or a failure in CI, where it cannot run), any other by name."""
    return bwrap_or_skip() if name == "bwrap" else get_sandbox(name)


def within_limit(verdict_duration: float, limits: Limits) -> bool:
    """The run ended by its time limit: the limit, the drain after the kill, and load slack."""
    return verdict_duration <= limits.timeout + DRAIN_AFTER_KILL_S + LOAD_MARGIN_S


def token() -> str:
    """A process name (``/proc/PID/comm``, at most 15 characters) no other process has."""
    return "le" + secrets.token_hex(6)


def processes_named(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def wait_gone(name: str, seconds: float = 10.0) -> list[int]:
    """The processes still named ``name`` after up to ``seconds`` (a kill's teardown is quick, but
    a loaded machine may be slow to reap)."""
    deadline = time.monotonic() + seconds
    while True:
        left = processes_named(name)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def name_self(name: str) -> str:
    """Program text that names the running process (and its children) ``name``: prctl(PR_SET_NAME),
    since a process that changed its user id may not write its own ``/proc/self/comm``."""
    return f"import ctypes\nctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0)\n"
