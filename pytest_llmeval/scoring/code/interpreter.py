"""Which interpreter runs generated code, and which files it needs.

The program runs on the *base* interpreter of the running Python (``sys.base_prefix``): the
same version as the tests, without the virtual environment's packages. A virtual environment's
``python`` is a link into the project or the home directory; its base lives elsewhere (a system
``/usr/bin/python3.X``, or a pyenv build under ``~/.pyenv``), and that is what we find here: the
real executable, its standard library (the directory holding ``os.py``), the extension modules
(``lib-dynload``), a shared ``libpython`` when the build has one, and the system libraries all of
those link against. The sandbox mounts exactly these, read-only.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Interpreter", "base_interpreter", "linked_libraries"]

LIBRARY_ROOTS = ("/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32")
"""Where system libraries live when ``ldd`` cannot say which ones are needed."""


@dataclass(frozen=True)
class Interpreter:
    executable: Path
    """The real path of the interpreter binary."""
    version: str
    """``"3.11"``."""
    prefix: Path
    stdlib: Path
    """The directory with ``os.py``."""
    dynload: Path | None
    """The extension modules' directory (usually inside ``stdlib``)."""
    libpython: Path | None
    """The shared ``libpython`` the executable loads, when the build has one."""
    hidden: tuple[Path, ...]
    """Package directories inside ``stdlib`` the sandbox hides (site-packages, dist-packages)."""

    @property
    def name(self) -> str:
        return f"python{self.version}"


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@functools.lru_cache(maxsize=None)
def base_interpreter() -> Interpreter:
    """The base interpreter of this Python; :class:`FileNotFoundError` when it cannot be found."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    prefix = Path(sys.base_prefix)
    candidates = [prefix / "bin" / f"python{version}", prefix / "bin" / "python3"]
    base_executable = getattr(sys, "_base_executable", None)
    if base_executable:
        candidates.append(Path(base_executable))
    executable = next((Path(os.path.realpath(c)) for c in candidates if _is_executable(Path(os.path.realpath(c)))), None)
    if executable is None:
        raise FileNotFoundError(f"no interpreter found for Python {version} under {prefix}")
    stdlib = Path(os.path.realpath(sysconfig.get_path("stdlib")))
    if not (stdlib / "os.py").is_file():
        raise FileNotFoundError(f"the standard library of Python {version} is not at {stdlib}")
    dynload_var = sysconfig.get_config_var("DESTSHARED")
    dynload = Path(os.path.realpath(dynload_var)) if dynload_var and Path(dynload_var).is_dir() else None
    libpython = None
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        name = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY")
        libdir = sysconfig.get_config_var("LIBDIR")
        if name and libdir and (Path(libdir) / name).is_file():
            libpython = Path(os.path.realpath(Path(libdir) / name))
    hidden = tuple(stdlib / d for d in ("site-packages", "dist-packages") if (stdlib / d).is_dir())
    return Interpreter(executable, version, prefix, stdlib, dynload, libpython, hidden)


@functools.lru_cache(maxsize=None)
def linked_libraries(interpreter: Interpreter) -> tuple[Path, ...] | None:
    """The shared libraries the executable, ``libpython`` and the extension modules load, at the
    paths ``ldd`` resolves them to (links not followed: ``/lib64/ld-linux-x86-64.so.2``); None
    when ``ldd`` is missing or fails."""
    ldd = shutil.which("ldd") or ("/usr/bin/ldd" if Path("/usr/bin/ldd").exists() else None)
    if ldd is None:
        return None
    files = [interpreter.executable]
    if interpreter.libpython:
        files.append(interpreter.libpython)
    if interpreter.dynload:
        files += sorted(interpreter.dynload.glob("*.so"))
    try:
        done = subprocess.run([ldd, *map(str, files)], capture_output=True, text=True, timeout=60, env={"LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    found: set[Path] = set()
    for line in done.stdout.splitlines():
        line = line.strip()
        target = line.split("=>", 1)[1].strip() if "=>" in line else line
        path = target.split(" (", 1)[0].strip()
        if path.startswith("/") and Path(path).exists():
            found.add(Path(path))
    return tuple(sorted(found)) or None
