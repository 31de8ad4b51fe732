"""Start the harness under a command prefix, enforce the time limit, read what comes back.

Providers differ in the command that starts the interpreter (``bwrap ... python``, or the bare
``python``); everything after that is the same and lives here: the job handed over on a file
descriptor, the status channel, the merged output read into a bounded tail, the process group
killed at the time limit, and the verdict made from the harness's report.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from pytest_llmeval.escaping import one_line
from pytest_llmeval.scoring.code.sandbox import INSTALL_HINT, START_HINT, Job, SandboxError
from pytest_llmeval.scoring.code.verdict import Verdict

__all__ = ["HARNESS_SOURCE", "PYTHON_FLAGS", "harness_argv", "run_harness"]

HARNESS_SOURCE = (Path(__file__).with_name("harness.py")).read_text(encoding="utf-8")
PYTHON_FLAGS = ("-I", "-S", "-B", "-X", "utf8")
"""Isolated mode (no PYTHON* variables, no user site, no script directory on the path), no
``site`` (no site-packages on the path), no bytecode files, UTF-8 I/O whatever the locale."""

STATUS_LIMIT = 1 << 16
DRAIN_AFTER_KILL_S = 2.0
"""How long the output is still read after a kill, for processes that escaped the group."""
AFTER_DONE_S = 1.0
"""How long the output is still read after the harness reported (background processes may hold it)."""


def harness_argv(python: str) -> list[str]:
    """The interpreter command that runs the harness (the two descriptors are appended later)."""
    return [python, *PYTHON_FLAGS, "-c", HARNESS_SOURCE]


class _Tail:
    """The last ``size`` bytes written, and how many there were in all."""

    def __init__(self, size: int) -> None:
        self.size, self.total, self.data = size, 0, bytearray()

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > 2 * self.size:
            del self.data[: len(self.data) - self.size]

    def text(self) -> str:
        return bytes(self.data[-self.size :]).decode("utf-8", "replace")


def run_harness(
    prefix: Sequence[str],
    python: str,
    job: Job,
    *,
    sandbox: str,
    protections: tuple[str, ...],
    env: Mapping[str, str],
    cwd: str | None = None,
    uid: int | None = None,
    processes_relative: bool = False,
) -> Verdict:
    """Run ``job`` through the harness started as ``prefix + [python, flags, -c, harness]``.

    ``uid``: the user id the harness drops to when it starts as root. ``processes_relative``:
    the process limit is counted on top of the user's current processes (no namespace).
    """
    marker = secrets.token_hex(16)
    limits = {**job.limits.rlimits(), "processes_relative": processes_relative}
    payload = {"marker": marker, "program": job.program, "tests": job.tests, "entry_point": job.entry_point,
               "uid": uid, "limits": limits}  # fmt: skip
    proc, out_r, status_r, start = _spawn([*prefix, *harness_argv(python)], payload, env, cwd, sandbox)
    deadline = start + job.limits.timeout
    tail, status, timed_out = _collect(proc, out_r, status_r, deadline, job.limits.output_tail, f"{marker} done".encode())
    duration = time.monotonic() - start
    report = _parse_status(status, marker)
    common: dict[str, Any] = {
        "duration_s": duration,
        "output_tail": tail.text(),
        "output_bytes": tail.total,
        "sandbox": sandbox,
        "protections": protections,
        "limits": asdict(job.limits),
    }
    if "setup-failed" in report:
        raise SandboxError(f"{sandbox} sandbox: could not set up the run ({report['setup-failed'].get('error', '?')})")
    if timed_out:
        return Verdict("timeout", f"timed out after {job.limits.timeout:g} s", None, **common)
    exit_status = _exit_status(proc.returncode, prefix)
    if "started" not in report:
        said = tail.text().strip().splitlines()[-1:] or [f"exit status {exit_status}"]
        raise SandboxError(f"{sandbox} sandbox did not start: {said[0][:300]}; {START_HINT}")
    return _verdict(report.get("done"), exit_status, job, **common)


def _spawn(
    argv: list[str], payload: dict[str, Any], env: Mapping[str, str], cwd: str | None, sandbox: str
) -> tuple[subprocess.Popen, int, int, float]:
    """Start the harness with the job on one descriptor and the status channel on another; the
    process, the read ends of its output and status pipes, and when it started."""
    with tempfile.TemporaryFile() as job_file:
        job_file.write(json.dumps(payload).encode("utf-8", "surrogatepass"))
        job_file.flush()
        job_file.seek(0)
        status_r, status_w = os.pipe()
        out_r, out_w = os.pipe()
        fds = (job_file.fileno(), status_w)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                [*argv, *map(str, fds)], stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, env=dict(env),
                cwd=cwd, pass_fds=fds, start_new_session=True, close_fds=True,
            )  # fmt: skip
        except OSError as exc:
            for fd in (status_r, out_r):
                os.close(fd)
            raise SandboxError(f"{sandbox} sandbox: cannot start {argv[0]} ({exc.strerror or exc}); {INSTALL_HINT}") from None
        finally:
            os.close(status_w)
            os.close(out_w)
    return proc, out_r, status_r, start


def _collect(
    proc: subprocess.Popen, out_r: int, status_r: int, deadline: float, tail_size: int, done: bytes
) -> tuple[_Tail, bytearray, bool]:
    """Read output and status until both close. At ``deadline`` kill the run (a timeout). Once the
    harness has said ``done``, whatever still holds the pipes gets :data:`AFTER_DONE_S` more."""
    tail, status, timed_out, finished = _Tail(tail_size), bytearray(), False, False
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ)
    sel.register(status_r, selectors.EVENT_READ)
    open_fds = {out_r, status_r}
    try:
        while open_fds:
            now = time.monotonic()
            if now >= deadline:
                if timed_out or finished:
                    break  # the drain after a kill, or the grace after done, is over
                timed_out = True
                _kill_group(proc)
                deadline = now + DRAIN_AFTER_KILL_S
                continue
            for key, _ in sel.select(timeout=deadline - now):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fd)
                    open_fds.discard(key.fd)
                elif key.fd == out_r:
                    tail.add(chunk)
                elif len(status) < STATUS_LIMIT:
                    status += chunk
                    if not finished and done in status:
                        finished = True
                        deadline = min(deadline, time.monotonic() + AFTER_DONE_S)
    finally:
        sel.close()
        os.close(out_r)
        os.close(status_r)
        _kill_group(proc)  # stragglers: background processes of a run without a pid namespace
        _reap(proc)
    return tail, status, timed_out


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the run's process group; called before the leader is reaped, so its id is still its own."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _reap(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process SIGKILL did not end
        proc.kill()
        proc.wait()


def _exit_status(returncode: int, prefix: Sequence[str]) -> int:
    """The program's exit status; a wrapper (bwrap) reports death by signal N as 128 + N."""
    if prefix and returncode > 128 and returncode - 128 < signal.NSIG:
        return -(returncode - 128)
    return returncode


def _parse_status(status: bytes, marker: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for line in bytes(status).decode("utf-8", "replace").splitlines():
        head, _, rest = line.partition(" ")
        if head != marker:
            continue
        kind, _, payload = rest.partition(" ")
        try:
            found[kind] = json.loads(payload) if payload else {}
        except ValueError:
            found[kind] = {}
    return found


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _verdict(done: Mapping[str, Any] | None, exit_status: int, job: Job, **common: Any) -> Verdict:
    limits = job.limits
    if done is None or not isinstance(done.get("status"), str):
        if exit_status < 0:
            sig = -exit_status
            if sig == signal.SIGXCPU:
                reason = f"killed: CPU time limit {limits.rlimits()['cpu_s']} s"
            elif sig == signal.SIGXFSZ:
                reason = f"killed: file size limit {limits.file_mb} MiB"
            else:
                reason = f"killed by {_signal_name(sig)} before the tests finished"
            return Verdict("killed", reason, exit_status, **common)
        return Verdict("exited", f"the program exited with status {exit_status} before the tests finished", exit_status, **common)
    status = done["status"]
    where = done.get("where") or ""
    if status == "passed":
        return Verdict("passed", "", exit_status, **common)
    if status == "failed":
        message = done.get("message") or ""
        reason = "assertion failed" + (f": {where}" if where else "") + (f" ({message})" if message else "")
    elif status == "memory":
        reason = f"killed: memory limit {limits.memory_mb} MiB (MemoryError" + (f" at {where})" if where else ")")
    elif status == "raised":
        reason = f"{done.get('type', 'Exception')}: {done.get('message', '')}" + (f" ({where})" if where else "")
    elif status == "exited":
        reason = str(done.get("reason") or "the program exited before the tests finished")
    else:
        status, reason = "raised", f"unexpected report {status!r}"
    return Verdict(status, _one_line(reason), exit_status, **common)


def _one_line(text: str, limit: int = 400) -> str:
    """One line of at most ``limit`` characters, as :func:`~pytest_llmeval.escaping.one_line` writes
    it (a program's terminal escapes in their ``\\xNN`` form)."""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
