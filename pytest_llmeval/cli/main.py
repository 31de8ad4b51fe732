"""``python -m pytest_llmeval``: every subcommand, registered the one way (:class:`~.core.Command`)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Sequence

from pytest_llmeval.cli import compare, history, init, merge, prune, report, review
from pytest_llmeval.cli.core import EXIT_USAGE, Command, Parser, TerminalStream

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: tuple[Command, ...] = (
    init.COMMAND,
    compare.COMMAND,
    history.COMMAND,
    report.COMMAND,
    merge.COMMAND,
    review.REVIEW,
    review.CALIBRATE,
    prune.COMMAND,
)
"""The subcommands, in the order ``--help`` lists them."""


def version_line() -> str:
    """``pytest-llmevals 0.1.0 from /path/to/pytest_llmeval (Python 3.12.3)``."""
    import platform
    from pathlib import Path

    from pytest_llmeval.version import __version__

    return f"pytest-llmevals {__version__} from {Path(__file__).resolve().parents[1]} (Python {platform.python_version()})"


class _Version(argparse.Action):
    """``--version`` as one line: argparse's own version action wraps it at the terminal's width,
    which splits a long install path."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object, option_string: str | None = None) -> None:
        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m pytest_llmeval", description="A first eval suite to start from, and tools around pytest-llmeval results and baselines.")
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and where it runs from, then exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns its exit status (3 for a usage error). Every line it prints
    is escaped (:class:`~.core.TerminalStream`)."""
    with contextlib.redirect_stdout(TerminalStream(sys.stdout)), contextlib.redirect_stderr(TerminalStream(sys.stderr)):  # type: ignore[type-var]
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, or a usage error (exit 3)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return int(func(args))
