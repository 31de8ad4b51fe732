"""The program that runs inside the sandbox: one job, its limits, the program, its tests, a report.

It uses the standard library only (the sandbox exposes nothing else) and is run from its
source text: ``python -I -S -B -X utf8 -c <this file> JOB_FD STATUS_FD``. It

1. reads the job (JSON) from ``JOB_FD`` and closes it;
2. sets the resource limits (CPU seconds, address space, file size, process count, no core
   files) and, when it starts as root and the job names a user id, drops to that id with no
   supplementary groups (so the kernel's process limit applies: it exempts root);
3. writes ``<marker> started`` on ``STATUS_FD``;
4. runs ``program + "\\n" + tests + "\\n" + "check(<entry_point>)"`` with one ``exec`` in a fresh
   namespace, as the official HumanEval harness does (so ``__name__`` is not ``"__main__"``);
5. writes ``<marker> done <json>`` with the outcome, and exits at once (threads the program
   left running do not hold the process).

The marker is random per run and only this process knows it, so a program that ends the
process early (``sys.exit(0)``, ``os._exit(0)``, a signal) leaves no ``done`` line, and the host
counts the run as unfinished. A program that reads this process's memory can forge the line:
the sandbox contains what a program does to the machine, not what it does to its own tests.
"""

from __future__ import annotations

import sys

FILENAME = "<llmeval-code>"
"""The file name the combined program and tests are compiled under (tracebacks show it)."""


def main(argv: list[str]) -> None:
    import json
    import os

    job_fd, status_fd = int(argv[1]), int(argv[2])
    with os.fdopen(job_fd, "rb") as fh:
        job = json.loads(fh.read().decode("utf-8"))
    marker = job["marker"]
    write, exit_now, dumps = os.write, os._exit, json.dumps  # kept before the program can rebind them

    def report(kind: str, payload: object = None) -> None:
        text = f"{marker} {kind}" + ("" if payload is None else " " + dumps(payload))
        try:
            write(status_fd, (text + "\n").encode("utf-8", "replace"))
        except OSError:
            pass

    try:
        _apply_limits(job["limits"])
        _drop_privileges(job.get("uid"))
    except Exception as exc:  # the sandbox is not what the host asked for: an error, not a verdict
        report("setup-failed", {"error": f"{type(exc).__name__}: {exc}"})
        exit_now(70)
    report("started")
    _builtins()
    source, parts = _assemble(job["program"], job["tests"], job.get("entry_point"))
    outcome = _run(source, parts)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    report("done", outcome)
    exit_now(0 if outcome["status"] == "passed" else 1)


def _apply_limits(limits: dict) -> None:
    import os
    import resource

    wanted = {
        resource.RLIMIT_CPU: (limits["cpu_s"], limits["cpu_s"] + 1),
        resource.RLIMIT_AS: (limits["memory_bytes"],) * 2,
        resource.RLIMIT_FSIZE: (limits["file_bytes"],) * 2,
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_NOFILE: (limits["open_files"],) * 2,
    }
    nproc = limits["processes"]
    if os.geteuid() != 0 and limits.get("processes_relative"):
        nproc += _own_processes()  # the kernel counts every process of this user
    wanted[resource.RLIMIT_NPROC] = (nproc, nproc)
    for which, (soft, hard) in wanted.items():
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY and os.geteuid() != 0:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(which, (soft, hard))


def _own_processes() -> int:
    import os

    uid, count = os.getuid(), 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/status", encoding="ascii", errors="replace") as fh:
                    for line in fh:
                        if line.startswith("Uid:"):
                            count += int(line.split()[1]) == uid
                            break
            except OSError:
                continue
    return count


def _drop_privileges(uid: int | None) -> None:
    import os

    if uid is None or os.getuid() != 0:
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgroups():
        raise OSError(f"could not drop to user id {uid}")


def _builtins() -> None:
    """``exit``/``quit`` and friends, as a normal interpreter has them (``-S`` leaves them out)."""
    try:
        import site

        site.setquit()
        site.setcopyright()
    except Exception:
        pass


def _assemble(program: str, tests: str, entry_point: str | None) -> tuple[str, list[tuple[str, int, int]]]:
    """The combined source and its parts as ``(name, first line, last line)``."""
    source = program + "\n" + tests
    program_end = program.count("\n") + 1
    tests_end = source.count("\n") + 1
    parts = [("program", 1, program_end), ("tests", program_end + 1, tests_end)]
    if entry_point:
        source += f"\ncheck({entry_point})"
        parts.append((f"check({entry_point})", tests_end + 1, tests_end + 1))
    return source, parts


def _run(source: str, parts: list[tuple[str, int, int]]) -> dict:
    import linecache

    linecache.cache[FILENAME] = (len(source), None, source.splitlines(True), FILENAME)
    try:
        code = compile(source, FILENAME, "exec")
        exec(code, {})
    except SystemExit as exc:
        code = _message(exc) if exc.code is not None else "None"
        return {"status": "exited", "reason": f"the program raised SystemExit({code}) (sys.exit, exit or quit) before the tests finished"}
    except MemoryError as exc:
        _show(exc)
        return {"status": "memory", "where": _where(exc, source, parts)}
    except AssertionError as exc:
        _show(exc)
        return {"status": "failed", "where": _where(exc, source, parts), "message": _message(exc)}
    except BaseException as exc:  # KeyboardInterrupt and friends included: the program raised them
        _show(exc)
        return {"status": "raised", "type": type(exc).__name__, "message": _message(exc), "where": _where(exc, source, parts)}
    return {"status": "passed"}


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:
        text = "<a message that cannot be shown>"
    return text[:300]


def _show(exc: BaseException) -> None:
    """The traceback on stderr, from the first frame of the program or tests on."""
    import traceback

    try:
        sys.stdout.flush()
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != FILENAME:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb, limit=-20)
    except BaseException:
        pass


def _where(exc: BaseException, source: str, parts: list[tuple[str, int, int]]) -> str:
    """``"<part> line N: <text>"`` for the innermost line of the program or tests the error passed."""
    import traceback

    lineno = None
    if isinstance(exc, SyntaxError) and exc.filename == FILENAME:
        lineno = exc.lineno
    else:
        try:
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == FILENAME]
        except BaseException:
            frames = []
        if frames:
            lineno = frames[-1].lineno
    if not lineno:
        return ""
    lines = source.splitlines()
    text = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
    for name, first, last in parts:
        if first <= lineno <= last:
            where = name if name.startswith("check(") else f"{name} line {lineno - first + 1}"
            return f"{where}: {text[:200]}"
    return f"line {lineno}: {text[:200]}"


if __name__ == "__main__":
    main(sys.argv)
