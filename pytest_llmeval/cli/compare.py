"""``python -m pytest_llmeval compare A B``: is run B better than run A?

Prints the suites side by side (:func:`pytest_llmeval.results.compare.render`) and exits 0 for
KEEP or UNCHANGED, 1 for DISCARD, 2 for MIXED (``--fail-on`` relaxes these), and 3 for a usage
error, an unreadable file or an incomparable pair (``--force`` compares anyway).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_llmeval.cli.core import EXIT_USAGE, Command, fraction, usage_error
from pytest_llmeval.cli.report import write_html
from pytest_llmeval.results.compare import ResultsError, RunComparison, compare_runs, load_run, render
from pytest_llmeval.results.html import ReportError, compare_page, load_run_dir

__all__ = ["COMMAND", "EXIT", "exit_code", "run"]

EXIT = {"KEEP": 0, "UNCHANGED": 0, "DISCARD": 1, "MIXED": 2}


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A", help="results.json of the reference run (or its --llmeval-output folder)")
    parser.add_argument("b", metavar="B", help="results.json of the candidate run")
    parser.add_argument("--tolerance", type=fraction, default=0.02, help="smallest change in pass rate that counts (default 0.02)")
    parser.add_argument("--alpha", type=fraction, default=0.05, help="significance level of the paired McNemar test (default 0.05)")
    parser.add_argument("--force", action="store_true", help="compare suites whose prompt, generation, few-shot count or dataset differ")
    parser.add_argument(
        "--fail-on",
        choices=("mixed", "discard", "never"),
        default="mixed",
        help="mixed (default): MIXED exits 2 and DISCARD 1; discard: only DISCARD fails; never: always exit 0",
    )
    parser.add_argument("--html", metavar="PATH", help="also write both runs side by side, flips first, as one HTML file")


def run(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    try:
        before, a_interrupted = load_run(Path(args.a))
        after, b_interrupted = load_run(Path(args.b))
    except ResultsError as exc:
        return usage_error(str(exc))
    interrupted = (a_interrupted, b_interrupted)
    result = compare_runs(before, after, tolerance=args.tolerance, alpha=args.alpha, force=args.force, interrupted=interrupted)
    for line in render(result, args.a, args.b):
        print(line, file=out)
    if getattr(args, "html", None) and write_compare(args, out) != 0:
        return EXIT_USAGE
    return exit_code(result, args.fail_on)


def exit_code(result: RunComparison, fail_on: str = "mixed") -> int:
    """The exit status for ``result``: :data:`EXIT` by verdict, relaxed by ``fail_on``; 3 when
    some suite is incomparable or nothing could be compared."""
    if result.incomparable or not result.deltas:
        return EXIT_USAGE
    code = EXIT[result.verdict]
    if fail_on == "never" or (fail_on == "discard" and result.verdict == "MIXED"):
        return 0
    return code


def write_compare(args: argparse.Namespace, out: Any = None) -> int:
    """``--html PATH``: the page of run B against run A."""
    try:
        a, b = load_run_dir(Path(args.a)), load_run_dir(Path(args.b))
    except ReportError as exc:
        return usage_error(str(exc))
    data = compare_page(a, b, labels=(str(args.a), str(args.b)), tolerance=args.tolerance, alpha=args.alpha, force=args.force)
    return write_html(Path(args.html), data, out)


COMMAND = Command(
    "compare",
    help="compare two results.json files: KEEP, DISCARD, MIXED or UNCHANGED",
    description="``python -m pytest_llmeval compare A B``: is run B better than run A?",
    arguments=arguments,
    run=run,
)
