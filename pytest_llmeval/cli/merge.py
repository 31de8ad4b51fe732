"""``python -m pytest_llmeval merge OUT_DIR SHARD_DIR...``: shards' results, one gate.

Exits 0 when the merged run passes its gate, 1 when it fails, 3 when the shards cannot be
merged (each reason on its own line); the merging is :mod:`pytest_llmeval.results.merge`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_llmeval.cli.core import EXIT_USAGE, Command, fraction, usage_error
from pytest_llmeval.cli.report import write_html
from pytest_llmeval.results.gate import GateOptions
from pytest_llmeval.results.html import load_run_dir, run_page
from pytest_llmeval.results.merge import MergeError, merge, output_problems, read_shards, shard_problems

__all__ = ["COMMAND", "run"]


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT_DIR", help="folder for the merged results.json and samples.jsonl")
    parser.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="each shard's --llmeval-output folder")
    parser.add_argument("--baseline", metavar="PATH", help="baseline file to compare with (as llmeval_baseline)")
    parser.add_argument("--update-baseline", action="store_true", help="record the merged suites into the baseline file")
    parser.add_argument("--force", action="store_true", help="update the baseline even from a narrowed run or one with errors")
    parser.add_argument("--strict", action="store_true", default=None, help="fail on any wrong answer (default: as the shards ran)")
    parser.add_argument("--tolerance", type=fraction, help="drop tolerated before a regression (default: as the shards ran)")
    parser.add_argument("--alpha", type=fraction, help="significance level (default: as the shards ran)")
    parser.add_argument("--min-pass-rate", type=fraction, help="default minimum pass rate for every suite")
    parser.add_argument("--markdown", metavar="PATH", help="write the Markdown summary to this file")
    parser.add_argument("--html", metavar="PATH", help="write the HTML report to this file")


def run(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    written = [Path(p) for p in (args.html, args.markdown, args.baseline if args.update_baseline else None) if p]
    problems = output_problems(Path(args.out), written, [Path(p) for p in args.shards])
    if not problems:
        try:
            shards = read_shards([Path(p) for p in args.shards])
        except MergeError as exc:
            return usage_error(str(exc))
        problems = shard_problems(shards, given=[k for k in ("strict", "tolerance", "alpha") if getattr(args, k) is not None])
    for problem in problems:
        usage_error(problem)
    if problems:
        return EXIT_USAGE
    report = merge(Path(args.out), shards, _options(args, shards[0].results.get("settings") or {}))
    for text, _ in report.lines():
        print(text, file=out)
    code = 1 if report.gate_failed else 0
    if args.html:
        results, samples = load_run_dir(Path(args.out))
        code = max(code, write_html(Path(args.html), run_page(results, samples)))
    return code


def _options(args: argparse.Namespace, settings: dict[str, Any]) -> GateOptions:
    """The gate's options: those given, else as the shards ran."""

    def pick(given: Any, key: str, default: Any) -> Any:
        return given if given is not None else settings.get(key, default)

    return GateOptions(
        rootdir=Path.cwd(),
        baseline=Path(args.baseline) if args.baseline else None,
        update_baseline=args.update_baseline,
        force=args.force,
        strict=bool(pick(args.strict, "strict", False)),
        tolerance=pick(args.tolerance, "tolerance", 0.02),
        alpha=pick(args.alpha, "alpha", 0.05),
        min_pass_rate=args.min_pass_rate,
        markdown=Path(args.markdown) if args.markdown else None,
        invocation=(),
    )


COMMAND = Command(
    "merge",
    help="merge shards' results (--llmeval-shard) into one, and gate it as one run",
    description=(
        "Combine the results of shards of one run (pytest --llmeval-shard=I/N --llmeval-output=DIR) into one "
        "results.json, then gate it as one run: the same table, verdicts against --baseline and exit status."
    ),
    arguments=arguments,
    run=run,
)
