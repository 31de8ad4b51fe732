"""The plugin's options, as pytest sees them: registered and read from the option table.

Every option exists twice, as ``--llmeval-NAME`` on the command line and as the ini key
``llmeval_NAME``; the command line wins. The table (name, type, parser, help) is
:mod:`pytest_llmeval.options`. Values are parsed and validated once, here, when the session
starts, so a bad value is a one-line usage error and never a traceback later on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pytest

from pytest_llmeval.escaping import terminal
from pytest_llmeval.options import OPTIONS, VALUE_FLAGS, Option, setting_of, settings_from

__all__ = ["OPTIONS", "VALUE_FLAGS", "Option", "Values", "add_options", "read_options", "setting_of", "settings_from", "space_form_paths"]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmeval", "LLM evaluations (pytest-llmeval)")
    for o in OPTIONS:
        if o.kind == "flag":
            group.addoption(o.flag, action="store_true", default=None, dest=o.dest, help=o.help)
            parser.addini(o.dest, f"{o.help} (true/false)", default=None)  # parsed here: one message in any pytest
        elif o.kind == "append":
            group.addoption(o.flag, action="append", default=None, dest=o.dest, metavar="TEXT", help=o.help)
            parser.addini(o.dest, o.help, type="linelist", default=[])
        else:
            metavar = o.name.upper().replace("-", "_")
            group.addoption(o.flag, action="store", default=None, dest=o.dest, metavar=metavar, help=o.help)
            parser.addini(o.dest, o.help, default=None)


@dataclass(frozen=True)
class Values:
    """The parsed value of every option (None when unset), and where each came from."""

    values: Mapping[str, Any]
    from_cli: frozenset[str]
    base: Mapping[str, Path]
    """What a relative path in each option is relative to."""

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def path(self, name: str) -> Path | None:
        value = self.values[name]
        if value is None:
            return None
        path = Path(os.path.expanduser(str(value)))
        return path if path.is_absolute() else self.base[name] / path


def read_options(config: pytest.Config) -> Values:
    """Every option's value, parsed; a bad one is a one-line :class:`pytest.UsageError`."""
    values: dict[str, Any] = {}
    from_cli: set[str] = set()
    ini_dir = config.inipath.parent if config.inipath is not None else config.rootpath
    for o in OPTIONS:
        raw = config.getoption(o.dest, default=None)
        if raw is not None and raw != []:
            from_cli.add(o.name)
            where = o.flag
        else:
            where = f"{o.dest} (in {config.inipath.name if config.inipath else 'the ini file'})"
            try:
                raw = config.getini(o.dest)
            except ValueError as exc:
                raise pytest.UsageError(f"llmeval: {where}: {terminal(exc)}") from None
        values[o.name] = _parse(o, raw, where)
    base = {o.name: config.invocation_params.dir if o.name in from_cli else ini_dir for o in OPTIONS}
    return Values(values, frozenset(from_cli), base)


def _parse(option: Option, raw: Any, where: str) -> Any:
    if raw is None or raw == "" or raw == []:
        return None
    if option.kind == "flag":
        raw = raw if isinstance(raw, bool) else str(raw)
    try:
        if option.kind == "append":
            return tuple(option.parse(str(v)) for v in (raw if isinstance(raw, (list, tuple)) else (raw,)))
        return option.parse(raw)
    except ValueError as exc:
        raise pytest.UsageError(f"llmeval: {where}: {terminal(exc)}") from None


def space_form_paths(args: tuple[str, ...], cwd: Path) -> list[tuple[str, str]]:
    """Path options given as ``--llmeval-NAME VALUE`` whose VALUE exists: pytest counted VALUE as
    a test path when it chose the rootdir and ini file (before it knew this plugin's options)."""
    found = []
    for i, arg in enumerate(args[:-1]):
        option = next((o for o in OPTIONS if o.path and o.flag == arg), None)
        if option is not None and (cwd / os.path.expanduser(args[i + 1])).exists():
            found.append((arg, args[i + 1]))
    return found
