"""``python -m pytest_llmeval history [SUITE]``: a suite's pass-rate trend across runs, as a table
or JSON (:mod:`pytest_llmeval.results.history_table`), or the list of runs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from pytest_llmeval.cli.core import EXIT_USAGE, Command
from pytest_llmeval.results.history import DEFAULT_PATH, HistoryError, TrendPoint, list_runs, suite_trend
from pytest_llmeval.results.history_table import format_runs, format_trend, last_per_suite, prompt_changed

__all__ = ["COMMAND", "run"]


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", nargs="?", help="suite id, or a unique part of it (default: every suite)")
    parser.add_argument("--db", default=str(DEFAULT_PATH), help=f"history file (default: {DEFAULT_PATH})")
    parser.add_argument("--last", type=int, default=20, metavar="N", help="show the last N runs per suite (default 20)")
    parser.add_argument("--runs", action="store_true", help="list the runs instead of the suites' trends")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BrokenPipeError:  # `history | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    try:
        if args.runs:
            runs = list_runs(args.db)
            if args.json:
                print(json.dumps([asdict(r) for r in runs], indent=2))
            else:
                for line in format_runs(runs, args.db):
                    print(line)
            return 0
        points = suite_trend(args.db, args.suite)  # format_trend keeps the last N, with their changes
    except HistoryError as exc:
        print(f"history: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        previous: dict[str, TrendPoint] = {}
        changed = set()
        for p in points:  # against the run before it, also when that run is not shown
            if prompt_changed(previous.get(p.suite), p):
                changed.add(id(p))
            previous[p.suite] = p
        if args.last > 0:
            points = last_per_suite(points, args.last)
        print(json.dumps([{**p.to_json(), "prompt_changed": id(p) in changed} for p in points], indent=2))
        return 0
    for line in format_trend(points, args.db, last=args.last):
        print(line)
    return 0


COMMAND = Command(
    "history",
    help="show a suite's pass rate across runs and checkpoints",
    description="Show the pass-rate trend of eval suites across the runs recorded in the history file.",
    arguments=arguments,
    run=run,
)
