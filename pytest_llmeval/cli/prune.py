"""``python -m pytest_llmeval prune BASELINE SUITE...``: remove stale suites from a baseline file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_llmeval.cli.core import EXIT_USAGE, Command, usage_error
from pytest_llmeval.results.baseline import BaselineError, prune_suites

__all__ = ["COMMAND"]


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", help="the baseline file (llmeval_baseline)")
    parser.add_argument("suites", nargs="+", metavar="SUITE", help="suite ids, e.g. evals/test_math.py::test_addition")


def run(args: argparse.Namespace) -> int:
    try:
        removed, missing = prune_suites(Path(args.baseline), args.suites)
    except BaselineError as exc:
        return usage_error(f"{exc}; check the path (the llmeval_baseline ini key)")
    except OSError as exc:
        return usage_error(f"could not write {args.baseline}: {exc}; check its permissions")
    for name in removed:
        print(f"removed {name}")
    for name in missing:
        print(f"not in {args.baseline}: {name}", file=sys.stderr)
    return 0 if removed else EXIT_USAGE


COMMAND = Command(
    "prune",
    help="remove suites from a baseline file (stale entries)",
    description="Remove the named suites from a baseline file, leaving every other entry as it is.",
    arguments=arguments,
    run=run,
)
