"""``python -m pytest_llmeval`` (also ``pytest-llmeval``): tools around eval results.

Subcommands register themselves: each module in :data:`SUBCOMMAND_MODULES` that exists
exposes ``register(subparsers)`` (or ``register_cli``), which adds its parser and sets ``func`` (``args -> exit
code``). ``prune`` is defined here.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Callable, NoReturn, Sequence

EXIT_USAGE = 3

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "pytest_llmeval.results.compare",
    "pytest_llmeval.results.history",
    "pytest_llmeval.results.html",
    "pytest_llmeval.results.merge",
    "pytest_llmeval.results.review",
)
"""Modules that contribute a subcommand through ``register(subparsers)`` (or ``register_cli``);
absent ones are skipped."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors exit 3 (2 means MIXED for ``compare``)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def register_prune(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prune",
        help="remove suites from a baseline file (stale entries)",
        description="Remove the named suites from a baseline file, leaving every other entry as it is.",
    )
    p.add_argument("baseline", help="the baseline file (llmeval_baseline)")
    p.add_argument("suites", nargs="+", metavar="SUITE", help="suite ids, e.g. evals/test_math.py::test_addition")
    p.set_defaults(func=_run_prune)


def _run_prune(args: argparse.Namespace) -> int:
    from pytest_llmeval.results.baseline import BaselineError, prune_suites

    try:
        removed, missing = prune_suites(Path(args.baseline), args.suites)
    except BaselineError as exc:
        print(f"error: {exc}; check the path (the llmeval_baseline ini key)", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: could not write {args.baseline}: {exc}; check its permissions", file=sys.stderr)
        return EXIT_USAGE
    for name in removed:
        print(f"removed {name}")
    for name in missing:
        print(f"not in {args.baseline}: {name}", file=sys.stderr)
    return 0 if removed else EXIT_USAGE


LOCAL_SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (register_prune,)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m pytest_llmeval", description="Tools around pytest-llmeval results and baselines.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            module = importlib.import_module(name)
            register = getattr(module, "register", None) or getattr(module, "register_cli")
            register(subparsers)
    for register in LOCAL_SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
