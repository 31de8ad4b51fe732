"""``python -m pytest_llmeval history``: a suite's pass-rate trend across runs, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator, Sequence

from pytest_llmeval.results.history import DEFAULT_PATH, EXIT_USAGE, HistoryError, RunSummary, TrendPoint, list_runs, suite_trend

def register_cli(subparsers: Any) -> None:
    """Add the ``history`` subcommand to an ``argparse`` subparsers object.

    The parser's ``func`` default is :func:`cli_main`, called with the parsed namespace; it
    returns the exit status.
    """
    parser = subparsers.add_parser(
        "history",
        help="show a suite's pass rate across runs and checkpoints",
        description="Show the pass-rate trend of eval suites across the runs recorded in the history file.",
    )
    add_arguments(parser)
    parser.set_defaults(func=cli_main)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", nargs="?", help="suite id, or a unique part of it (default: every suite)")
    parser.add_argument("--db", default=str(DEFAULT_PATH), help=f"history file (default: {DEFAULT_PATH})")
    parser.add_argument("--last", type=int, default=20, metavar="N", help="show the last N runs per suite (default 20)")
    parser.add_argument("--runs", action="store_true", help="list the runs instead of the suites' trends")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def cli_main(args: argparse.Namespace) -> int:
    try:
        return _cli(args)
    except BrokenPipeError:  # `history | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _cli(args: argparse.Namespace) -> int:
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
        if args.last > 0:
            points = _last_per_suite(points, args.last)
        print(json.dumps([p.to_json() for p in points], indent=2))
        return 0
    for line in format_trend(points, args.db, last=args.last):
        print(line)
    return 0


def _last_per_suite(points: Sequence[TrendPoint], last: int) -> list[TrendPoint]:
    by_suite: dict[str, list[TrendPoint]] = {}
    for p in points:
        by_suite.setdefault(p.suite, []).append(p)
    keep = {id(p) for rows in by_suite.values() for p in rows[-last:]}
    return [p for p in points if id(p) in keep]


def format_trend(points: Sequence[TrendPoint], path: str | Path, last: int = 20) -> Iterator[str]:
    """The ``history`` table: one block per suite, one row per run, with the change since the
    previous run and a mark where the model changed or the run was narrowed."""
    by_suite: dict[str, list[TrendPoint]] = {}
    for p in points:
        by_suite.setdefault(p.suite, []).append(p)
    if not by_suite:
        yield f"history {path}: no runs recorded yet; run the evals (every run appends here)"
        return
    runs = len({p.run_id for p in points})
    yield f"history {path}: {len(by_suite)} suite(s), {runs} run(s)"
    for suite, rows in by_suite.items():
        shown = rows[-last:] if last > 0 else rows
        yield ""
        yield suite + (f"  (last {len(shown)} of {len(rows)} runs)" if len(shown) < len(rows) else "")
        yield f"  {'when (UTC)':<19}  {'run':<23}  {'label':<16}  {'commit':<9}  {'n':>5}  {'pass':>6}  {'95% CI':<13}  {'change':>7}  trend"
        previous: TrendPoint | None = rows[len(rows) - len(shown) - 1] if len(shown) < len(rows) else None
        for p in shown:
            change = ""
            if previous is not None:
                change = f"{(p.pass_rate - previous.pass_rate) * 100:+.1f}"
                if previous.fingerprint.get("model") != p.fingerprint.get("model"):
                    change += "*"
            label = p.label or ""
            if p.step is not None and label != f"step-{p.step}":
                label = f"{label} @{p.step}" if label else f"step {p.step}"
            flags = " (interrupted)" if p.interrupted else ""
            flags += " (limited)" if p.limited else ""
            flags += f" errors={p.errors}" if p.errors else ""
            flags += f" skipped={p.skipped + p.xfailed}" if p.skipped or p.xfailed else ""
            yield (
                f"  {p.created_at[:19].replace('T', ' '):<19}  {p.run_id:<23}  {label[:16]:<16}  {(p.git_commit or '-')[:9]:<9}"
                f"  {p.n:>5}  {p.pass_rate * 100:5.1f}%  [{p.ci_low * 100:4.1f}, {p.ci_high * 100:5.1f}]  {change:>7}  "
                f"{_bar(p.pass_rate)}{flags}"
            )
            previous = p
    yield ""
    yield "change is in points of pass rate since the run above; * marks a different model (a new checkpoint)"


def format_runs(runs: Sequence[RunSummary], path: str | Path) -> Iterator[str]:
    if not runs:
        yield f"history {path}: no runs recorded yet; run the evals (every run appends here)"
        return
    yield f"history {path}: {len(runs)} run(s)"
    yield f"  {'when (UTC)':<19}  {'run':<23}  {'label':<16}  {'step':>6}  {'commit':<9}  {'suites':>6}  {'cases':>6}  status"
    for r in runs:
        step = "" if r.step is None else str(r.step)
        yield (
            f"  {r.created_at[:19].replace('T', ' '):<19}  {r.run_id:<23}  {(r.label or '')[:16]:<16}  {step:>6}"
            f"  {(r.git_commit or '-')[:9]:<9}  {r.suites:>6}  {r.cases:>6}  {'interrupted' if r.interrupted else 'complete'}"
        )


def _bar(rate: float, width: int = 20) -> str:
    filled = int(round(max(0.0, min(1.0, rate)) * width))
    return "#" * filled + "." * (width - filled)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``history`` on its own (``python -m pytest_llmeval history``)."""
    parser = argparse.ArgumentParser(prog="python -m pytest_llmeval history")
    add_arguments(parser)
    return cli_main(parser.parse_args(argv))
