"""``python -m pytest_llmeval report RESULTS_DIR --html PATH``: a run's HTML report, and the one
way every command writes an HTML page (:func:`write_html`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping

from pytest_llmeval.cli.core import Command, usage_error
from pytest_llmeval.results.history import DEFAULT_PATH
from pytest_llmeval.results.html import ReportError, load_run_dir, run_page, write_page

__all__ = ["COMMAND", "write_html"]


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS_DIR", help="the --llmeval-output folder (results.json and samples.jsonl)")
    parser.add_argument("--html", required=True, metavar="PATH", help="the HTML file to write")
    parser.add_argument("--history", metavar="PATH", help="run history for the trend charts (default .llmeval/history.sqlite when present)")


def run(args: argparse.Namespace) -> int:
    try:
        results, samples = load_run_dir(Path(args.results))
    except ReportError as exc:
        return usage_error(str(exc))
    history = Path(args.history) if args.history else DEFAULT_PATH
    return write_html(Path(args.html), run_page(results, samples, history=history))


def write_html(path: Path, data: Mapping[str, Any], out: Any = None) -> int:
    """Write the page; one line saying where (or why not), and the exit status."""
    try:
        size = write_page(path, data)
    except OSError as exc:
        return usage_error(f"could not write {path}: {exc}; check the path and its permissions")
    shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
    print(f"wrote {path} ({len(data.get('cases', []))} cases, {shown})", file=out or sys.stdout)
    return 0


COMMAND = Command(
    "report",
    help="write a run's HTML report (one self-contained file)",
    description="Write one self-contained HTML file for a run folder written by --llmeval-output.",
    arguments=arguments,
    run=run,
)
