"""What every subcommand shares: the usage exit status, the parser, and :class:`Command`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, TextIO

from pytest_llmeval.escaping import terminal

__all__ = ["EXIT_USAGE", "Command", "Parser", "TerminalStream", "fraction", "usage_error"]

EXIT_USAGE = 3
"""A usage error, an unreadable input or inputs that cannot be compared, in every subcommand
(2 means MIXED for ``compare``, so argparse's 2 is not used)."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors exit :data:`EXIT_USAGE`."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


@dataclass(frozen=True)
class Command:
    """One subcommand: ``arguments`` adds its options to its parser, ``run`` takes the parsed
    namespace and returns the exit status."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None

    def register(self, subparsers: Any) -> argparse.ArgumentParser:
        """Add this subcommand to an ``argparse`` subparsers object (``add_subparsers()``)."""
        parser: argparse.ArgumentParser = subparsers.add_parser(self.name, help=self.help, description=self.description)
        self.arguments(parser)
        parser.set_defaults(func=self.run)
        return parser


def fraction(text: str) -> float:
    """An argument between 0 and 1 (a tolerance, a significance level, a pass rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


def usage_error(message: str) -> int:
    """Print ``error: message`` (the message names the file and the fix) and return :data:`EXIT_USAGE`."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


class TerminalStream:
    """``stdout`` or ``stderr`` of a command: every line it writes escaped
    (:func:`~pytest_llmeval.escaping.terminal`), so a case id, a suite name or a reason read
    from a file cannot move the cursor, recolour the terminal or add a line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write("\n".join(terminal(part) for part in text.split("\n")))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty... as the stream has them
        return getattr(self.stream, name)
