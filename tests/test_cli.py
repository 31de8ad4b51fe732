"""The command line's one home: every subcommand registered one way, listed by --help, usage
errors exiting 3 everywhere, and cli/ kept off the plugin."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmeval.cli.core import EXIT_USAGE, Command
from pytest_llmeval.cli.main import COMMANDS, main

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_llmeval"
NAMES = ["init", "compare", "history", "report", "merge", "review", "calibrate", "prune"]


def test_every_subcommand_is_one_command_listed_by_help() -> None:
    assert [c.name for c in COMMANDS] == NAMES and all(isinstance(c, Command) for c in COMMANDS)
    out = subprocess.run([sys.executable, "-m", "pytest_llmeval", "--help"], capture_output=True, text=True, check=True).stdout
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("    ") and not line.startswith("     ")]
    assert listed == NAMES


def test_version_names_the_distribution_the_version_and_where_it_runs_from() -> None:
    from pytest_llmeval.version import __version__

    done = subprocess.run([sys.executable, "-m", "pytest_llmeval", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"pytest-llmevals {__version__} from {PACKAGE} (Python ")


@pytest.mark.parametrize("name", NAMES)
def test_a_usage_error_exits_3_in_every_subcommand(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--no-such-option"]) == EXIT_USAGE == 3
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m pytest_llmeval") and "error:" in err


def test_the_usage_exit_status_is_defined_once() -> None:
    defined = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "EXIT_USAGE" for t in node.targets)
    ]
    assert defined == ["cli/core.py"]


def test_cli_imports_neither_the_plugin_nor_the_models() -> None:
    banned = ("pytest_llmeval.plugin", "pytest_llmeval.models", "pytest_llmeval.training", "pytest", "torch", "transformers")
    crossings = []
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            crossings += [f"{path.name}: {n}" for n in names if n == "pytest_llmeval" or any(n == b or n.startswith(b + ".") for b in banned)]
    assert crossings == []


def test_the_module_and_the_console_script_run_the_same_main() -> None:
    import pytest_llmeval.__main__ as entry

    assert entry.main is main
