"""The ``bwrap`` provider: bubblewrap namespaces around the base interpreter.

Inside the sandbox the program sees:

- ``/python/bin/python3.X`` and ``/python/lib/python3.X`` (the standard library, its
  site-packages hidden under an empty read-only tmpfs), ``/python/lib/libpython*`` when the build
  is shared: the base interpreter, read-only, at a neutral path, so no home directory, project
  or virtual environment path appears;
- the directories of the system libraries that interpreter links (``ldd`` says which), read-only,
  with the host's ``/lib -> usr/lib`` style links;
- ``/proc`` of its own pid namespace, a minimal ``/dev``, and ``/tmp``: a private tmpfs of
  ``disk_mb`` that is its working directory, HOME and TMPDIR; the rest of ``/`` is read-only.

Namespaces: network (only its own loopback), pid, ipc, uts, cgroup where possible; a new
session; killed with its parent. As root, bwrap keeps only CAP_SETUID/CAP_SETGID for the
harness, which drops to a user id of the run's own (random, unprivileged) before the program
starts; as another user, bwrap adds a user namespace and the program runs as that user without
capabilities. The environment is empty but for HOME, TMPDIR, PATH and, for a shared build,
LD_LIBRARY_PATH.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path, PurePosixPath

from pytest_llmeval.scoring.code.interpreter import LIBRARY_ROOTS, Interpreter, base_interpreter, linked_libraries
from pytest_llmeval.scoring.code.runner import run_harness
from pytest_llmeval.scoring.code.sandbox import INSTALL_HINT, Job, SandboxUnavailable
from pytest_llmeval.scoring.code.verdict import Verdict

__all__ = ["BwrapSandbox", "bwrap_prefix"]

ROOT_PYTHON = PurePosixPath("/python")
RUN_UID_BASE = 3_000_000_000
RUN_UID_SPAN = 1 << 30
"""A run's user id when bwrap starts as root: random in [3e9, 3e9 + 2**30), one no account uses,
so the kernel's process count for it is the run's own."""


class _Plan:
    """bwrap arguments that build a file system view: directories first, then links and mounts."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.made: set[PurePosixPath] = {PurePosixPath("/")}
        self.bound: list[PurePosixPath] = []

    def directory(self, path: PurePosixPath) -> None:
        for parent in [*reversed(path.parents), path]:
            if parent not in self.made and not self.covered(parent):
                self.args += ["--perms", "0755", "--dir", str(parent)]
                self.made.add(parent)

    def covered(self, path: PurePosixPath) -> bool:
        return any(path == b or b in path.parents for b in self.bound)

    def bind(self, source: Path, dest: PurePosixPath) -> None:
        if self.covered(dest):
            return
        self.directory(dest.parent)
        self.args += ["--ro-bind", str(source), str(dest)]
        self.bound.append(dest)
        self.made.add(dest)

    def expose(self, host_dir: Path) -> None:
        """Make ``host_dir`` visible at the same path, recreating symbolic links on the way."""
        current = PurePosixPath("/")
        for part in PurePosixPath(host_dir).parts[1:]:
            step = current / part
            if os.path.islink(step):
                if step not in self.made:
                    self.directory(step.parent)
                    self.args += ["--symlink", os.readlink(step), str(step)]
                    self.made.add(step)
                current = PurePosixPath(os.path.realpath(step))
            else:
                current = step
        if os.path.isdir(current):
            self.bind(Path(current), current)


def _library_dirs(interpreter: Interpreter) -> tuple[list[Path], list[Path]]:
    """(system directories to expose, libraries of the interpreter's own prefix to map to /python/lib)."""
    libraries = linked_libraries(interpreter)
    if libraries is None:  # no ldd: the usual library roots
        return [Path(p) for p in LIBRARY_ROOTS if os.path.exists(p)], []
    system_roots = [Path(os.path.realpath(p)) for p in LIBRARY_ROOTS]

    def own(real: Path) -> bool:  # in the interpreter's own prefix (a pyenv build), not a system directory
        return interpreter.prefix in real.parents and not any(root in real.parents for root in system_roots)

    real = [Path(os.path.realpath(p)) for p in libraries]
    mine = sorted({r for r in real if own(r) and r != interpreter.libpython})
    system = sorted({p.parent for p, r in zip(libraries, real) if not own(r)})
    return system, mine


def bwrap_version(bwrap: str) -> tuple[int, ...]:
    """``bwrap --version`` as numbers; () when it does not say."""
    try:
        text = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in found.groups() if g is not None) if found else ()


def bwrap_prefix(
    bwrap: str, interpreter: Interpreter, *, root: bool, disk_mb: int, version: tuple[int, ...] = (0, 8)
) -> tuple[list[str], str, dict[str, str]]:
    """The bwrap command line up to the interpreter, the interpreter's path inside, its environment."""
    plan = _plan_view(interpreter)
    namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if root:
        privileges = ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]  # for the harness's drop, then gone
    else:  # no user namespaces of its own inside ours, where bwrap can say so (0.8.0 on)
        privileges = ["--unshare-user", *(["--disable-userns"] if version >= (0, 8) else [])]
    python = str(ROOT_PYTHON / "bin" / interpreter.name)
    argv = [
        bwrap, *namespaces, *privileges, "--die-with-parent", "--new-session",
        *plan.args,
        "--proc", "/proc", "--dev", "/dev",
        "--perms", "01777", "--size", str(disk_mb << 20), "--tmpfs", "/tmp",
        "--remount-ro", "/",
        "--chdir", "/tmp",
    ]  # fmt: skip
    env = {"HOME": "/tmp", "TMPDIR": "/tmp", "PATH": str(ROOT_PYTHON / "bin")}
    if interpreter.libpython is not None:
        env["LD_LIBRARY_PATH"] = str(ROOT_PYTHON / "lib")
    for name, value in env.items():
        argv += ["--setenv", name, value]
    return argv, python, env


@functools.lru_cache(maxsize=None)
def _plan_view(interpreter: Interpreter) -> _Plan:
    plan = _Plan()
    system, own = _library_dirs(interpreter)
    for directory in system:
        plan.expose(directory)
    lib = ROOT_PYTHON / "lib"
    plan.bind(interpreter.executable, ROOT_PYTHON / "bin" / interpreter.name)
    stdlib = lib / interpreter.name
    plan.bind(interpreter.stdlib, stdlib)
    if interpreter.dynload and interpreter.stdlib not in interpreter.dynload.parents:
        plan.args += ["--ro-bind", str(interpreter.dynload), str(stdlib / "lib-dynload")]
    if interpreter.libpython is not None:
        plan.args += ["--ro-bind", str(interpreter.libpython), str(lib / interpreter.libpython.name)]
    for library in own:
        plan.args += ["--ro-bind", str(library), str(lib / library.name)]
    for hidden in interpreter.hidden:
        inside = str(stdlib / hidden.relative_to(interpreter.stdlib))
        plan.args += ["--size", "4096", "--tmpfs", inside, "--remount-ro", inside]
    return plan


class BwrapSandbox:
    """Runs each job under bubblewrap; :class:`SandboxUnavailable` at creation when ``bwrap`` is missing."""

    name = "bwrap"

    def __init__(self, bwrap: str | None = None) -> None:
        found = bwrap or shutil.which("bwrap")
        if not found:
            raise SandboxUnavailable(f"assert_code: bubblewrap (bwrap) is not installed; {INSTALL_HINT}")
        self.bwrap = found
        try:
            self.interpreter = base_interpreter()
        except FileNotFoundError as exc:
            raise SandboxUnavailable(f"assert_code: {exc}; the bwrap sandbox runs the base interpreter") from None
        self.root = os.geteuid() == 0
        self.version = bwrap_version(found)

    @property
    def protections(self) -> tuple[str, ...]:
        return (
            "network-namespace", "pid-namespace", "ipc-namespace", "uts-namespace", "filesystem-view",
            "private-tmpfs", "empty-environment", "unprivileged-user", "rlimits", "process-limit",
            "new-session", "stdin-closed", "killed-on-timeout", "output-truncated",
        )  # fmt: skip

    def run(self, job: Job) -> Verdict:
        prefix, python, _ = bwrap_prefix(
            self.bwrap, self.interpreter, root=self.root, disk_mb=job.limits.disk_mb, version=self.version
        )
        uid = RUN_UID_BASE + secrets.randbelow(RUN_UID_SPAN) if self.root else None
        return run_harness(prefix, python, job, sandbox=self.name, protections=self.protections, env={}, uid=uid)
