"""The commands the gate prints: the exact ``pytest`` command that records a baseline."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Collection, Sequence

UPDATE_FLAG = "--llmeval-update-baseline"

# options that narrow what runs: dropped from a suggested recording command
_NARROWING_VALUE = {"-k", "-m", "--llmeval-limit", "--deselect", "--maxfail"}
_NARROWING_FLAG = {UPDATE_FLAG, "--llmeval-force", "--lf", "--last-failed", "--sw", "--stepwise", "-x", "--exitfirst"}
# pytest's (and common plugins') options known to take their value as the next argument
_VALUE_OPTIONS = {
    "-k", "-m", "-p", "-c", "-o", "-n", "-W", "-r", "--rootdir", "--confcutdir", "--basetemp",
    "--deselect", "--ignore", "--ignore-glob", "--junitxml", "--junit-xml", "--maxfail", "--dist",
    "--numprocesses", "--tb", "--durations", "--override-ini", "--config-file", "--log-level",
    "--capture", "--import-mode", "--color", "--junit-prefix", "--cov", "--timeout",
}  # fmt: skip


def record_command(
    invocation: Sequence[str], suites: Sequence[str] | None, *, rootdir: Path, cwd: Path, value_flags: Collection[str] = ()
) -> str:
    """The command that records ``suites`` (node ids, relative to ``rootdir``), or everything
    ``invocation`` selected: the same options, without those that narrow the selection.
    ``value_flags``: the plugin's options that take their value as the next argument."""
    args = list(invocation)
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        opt = arg.split("=", 1)[0]
        takes_value = "=" not in arg and (opt in _VALUE_OPTIONS or opt in value_flags)
        value = [args[i + 1]] if takes_value and i + 1 < len(args) else []
        i += 1 + len(value)
        if opt in _NARROWING_VALUE or opt in _NARROWING_FLAG or _short_narrowing(arg):
            continue
        if arg.startswith("-"):
            out += [arg, *value]
        elif suites is None:
            out.append(arg.split("[", 1)[0] if "::" in arg else arg)
    if suites is not None:
        out += [_cwd_relative(s, rootdir, cwd) for s in suites]
    return shlex.join(["pytest", *out, UPDATE_FLAG])


def _short_narrowing(arg: str) -> bool:
    """``-kfoo`` / ``-mslow`` (value glued to a short option)."""
    return len(arg) > 2 and arg[:2] in ("-k", "-m") and not arg.startswith("--")


def _cwd_relative(nodeid: str, rootdir: Path, cwd: Path) -> str:
    file, sep, rest = nodeid.partition("::")
    root = Path(rootdir).resolve()
    try:
        rel = os.path.relpath(root / file, Path(cwd).resolve())
    except ValueError:
        rel = str(root / file)
    return Path(rel).as_posix() + sep + rest


def files_picked_by_node_id(invocation: Sequence[str], *, rootdir: Path, cwd: Path) -> set[str]:
    """Test files (relative to ``rootdir``) that a ``file::test`` argument picked single tests from."""
    files = set()
    for arg in invocation:
        if "::" in arg and not arg.startswith("-"):
            path = arg.split("::", 1)[0]
            full = (Path(cwd) / path).resolve()
            try:
                files.add(full.relative_to(Path(rootdir).resolve()).as_posix())
            except ValueError:
                files.add(path)
    return files
