"""``python -m pytest_llmeval review export|import RESULTS_DIR LABELS_CSV`` and ``calibrate``:
people's labels for model-graded cases, and the judge's agreement with them
(:mod:`pytest_llmeval.results.review`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from pytest_llmeval.cli.core import EXIT_USAGE, Command, usage_error
from pytest_llmeval.results.review import ReviewError, calibrate, export, import_labels

__all__ = ["CALIBRATE", "REVIEW"]


def review_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="review_command", metavar="ACTION", parser_class=type(parser))
    exp = actions.add_parser("export", help="write the judged cases of RESULTS_DIR to a CSV file for labelling")
    exp.add_argument("results_dir", type=Path, metavar="RESULTS_DIR", help="the --llmeval-output folder of a run")
    exp.add_argument("labels", type=Path, metavar="LABELS_CSV")
    exp.add_argument("--force", action="store_true", help="overwrite LABELS_CSV if it exists")
    imp = actions.add_parser("import", help="check people's labels against the run and keep them")
    imp.add_argument("results_dir", type=Path, metavar="RESULTS_DIR")
    imp.add_argument("labels", type=Path, metavar="LABELS_CSV")
    imp.add_argument("--write", type=Path, metavar="FILE", help="write the labelled rows (suite, id, human_label) to FILE")
    parser.set_defaults(review_usage=parser.format_usage())


def run_review(args: argparse.Namespace) -> int:
    if args.review_command == "export":
        return _guarded(lambda: export(args.results_dir, args.labels, force=args.force))
    if args.review_command == "import":
        return _guarded(lambda: import_labels(args.results_dir, args.labels, write=args.write))
    print(args.review_usage, end="", file=sys.stderr)
    print("error: say export or import", file=sys.stderr)
    return EXIT_USAGE


def calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results_dir", type=Path, metavar="RESULTS_DIR")
    parser.add_argument("labels", type=Path, metavar="LABELS_CSV")
    parser.add_argument("--min-kappa", type=float, default=None, help="exit 1 when kappa is below this")


def run_calibrate(args: argparse.Namespace) -> int:
    return _guarded(lambda: calibrate(args.results_dir, args.labels, min_kappa=args.min_kappa))


def _guarded(work: Callable[[], int]) -> int:
    try:
        return int(work())
    except ReviewError as exc:
        return usage_error(str(exc))


REVIEW = Command(
    "review",
    help="export judged cases for people to label, and read the labels back",
    arguments=review_arguments,
    run=run_review,
)
CALIBRATE = Command(
    "calibrate",
    help="how well the judge agrees with people's labels (accuracy, Cohen's kappa)",
    arguments=calibrate_arguments,
    run=run_calibrate,
)
