"""``python -m pytest_llmeval compare A B``: is run B better than run A?

A and B are ``results.json`` files written by ``--llmeval-output``. Each suite both share is
compared on the case ids both ran (exact paired McNemar test; with repeated samples, the exact
sign-flip permutation test on per-case pass rates), with Holm's correction across the suites
compared; the overall verdict is

- KEEP: some suite significantly better, none significantly worse (exit 0);
- UNCHANGED: no significant change (exit 0);
- DISCARD: some suite significantly worse, none better (exit 1);
- MIXED: some better, some worse (exit 2);

and exit 3 for a usage error or an incomparable pair (must-match fingerprint fields differ;
``--force`` compares anyway).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from pytest_llmeval.results.messages import listing, pct, points, pvalue
from pytest_llmeval.results.repeats import holm
from pytest_llmeval.results.stats import Paired, SuiteResult, paired_comparison, paired_rates

EXIT = {"KEEP": 0, "UNCHANGED": 0, "DISCARD": 1, "MIXED": 2}
EXIT_USAGE = 3


class ResultsError(Exception):
    """A results file that cannot be compared; the message names the file and the fix."""


@dataclass(frozen=True)
class SuiteDelta:
    suite: str
    before: SuiteResult
    after: SuiteResult
    paired: Paired
    direction: int  # -1 significantly worse, +1 significantly better, 0 no significant change
    differing: tuple[str, ...] = ()
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunComparison:
    verdict: str
    deltas: tuple[SuiteDelta, ...]
    only_before: tuple[str, ...] = ()
    only_after: tuple[str, ...] = ()
    incomparable: tuple[SuiteDelta, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def better(self) -> list[str]:
        return [d.suite for d in self.deltas if d.direction > 0]

    @property
    def worse(self) -> list[str]:
        return [d.suite for d in self.deltas if d.direction < 0]


def load_results(path: Path) -> dict[str, SuiteResult]:
    """The suites of a results.json file, checked."""
    return load_run(path)[0]


def load_run(path: Path) -> tuple[dict[str, SuiteResult], bool]:
    """The suites of a results.json file, and whether that run was interrupted."""
    path = Path(path)
    hint = "pass a results.json written by pytest --llmeval-output DIR"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file; {hint}") from None
    except IsADirectoryError:
        if (path / "results.json").is_file():
            return load_run(path / "results.json")
        raise ResultsError(f"{path}: is a folder without results.json; {hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot be read ({exc}); {hint}") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); {hint}") from None
    suites = data.get("suites") if isinstance(data, dict) else None
    if not isinstance(suites, dict):
        raise ResultsError(f'{path}: no "suites" object, so not a pytest-llmeval results file; {hint}')
    out: dict[str, SuiteResult] = {}
    for name, raw in suites.items():
        try:
            out[name] = SuiteResult.from_json(name, raw)
        except ValueError as exc:
            raise ResultsError(f"{path}: suite {name!r} {exc}; re-run with a current pytest-llmeval, {hint}") from None
    return out, bool(data.get("interrupted"))


def compare_runs(
    before: Mapping[str, SuiteResult],
    after: Mapping[str, SuiteResult],
    *,
    tolerance: float = 0.02,
    alpha: float = 0.05,
    force: bool = False,
    interrupted: tuple[bool, bool] = (False, False),
) -> RunComparison:
    """Each suite both runs share, on the case ids both ran; ``interrupted``: whether run A
    and run B were interrupted (a warning: their suites may lack cases)."""
    deltas: list[SuiteDelta] = []
    incomparable: list[SuiteDelta] = []
    warnings: list[str] = [
        f"{label} was interrupted: its suites may lack cases; suites are compared on the cases both ran"
        for label, flag in zip("AB", interrupted)
        if flag
    ]
    for name in sorted(set(before) & set(after)):
        a, b = before[name], after[name]
        diff = a.fingerprint.diff(b.fingerprint)
        paired = paired_rates(a.rates(), b.rates()) if a.repeated or b.repeated else paired_comparison(a.passes(), b.passes())
        delta = SuiteDelta(name, a, b, paired, paired.direction(tolerance, alpha), diff.differing, diff.details)
        if diff.differing and not force:
            incomparable.append(delta)
            continue
        if paired.shared == 0:
            warnings.append(f"{name}: no case ids in common, nothing to compare")
            continue
        deltas.append(delta)
        if a.limited or b.limited:
            which = " and ".join(x for x, s in (("A", a), ("B", b)) if s.limited)
            warnings.append(f"{name}: {which} came from an --llmeval-limit run; compared on {paired.shared} shared cases only")
    deltas = _holm(deltas, tolerance, alpha)
    better = any(d.direction > 0 for d in deltas)
    worse = any(d.direction < 0 for d in deltas)
    verdict = "MIXED" if better and worse else "DISCARD" if worse else "KEEP" if better else "UNCHANGED"
    return RunComparison(
        verdict=verdict,
        deltas=tuple(deltas),
        only_before=tuple(sorted(set(before) - set(after))),
        only_after=tuple(sorted(set(after) - set(before))),
        incomparable=tuple(incomparable),
        warnings=tuple(warnings),
    )


def _holm(deltas: list[SuiteDelta], tolerance: float, alpha: float) -> list[SuiteDelta]:
    """Holm's correction across the compared suites; each direction decided on its adjusted p."""
    if len(deltas) < 2:
        return deltas
    adjusted = holm([d.paired.p_value for d in deltas])
    out = []
    for d, p in zip(deltas, adjusted):
        paired = replace(d.paired, adjusted_p=p)
        out.append(replace(d, paired=paired, direction=paired.direction(tolerance, alpha)))
    return out


def render(result: RunComparison, a_label: str, b_label: str) -> list[str]:
    lines = [f"A = {a_label}", f"B = {b_label}", ""]
    holm_shown = any(d.paired.adjusted_p is not None for d in result.deltas)
    rows = [["suite", "A", "B", "delta", "p", *(["Holm p"] if holm_shown else []), "shared", ""]]
    for d in result.deltas:
        rows.append(
            [
                d.suite,
                _rate(d.before),
                _rate(d.after),
                points(d.paired.delta),
                pvalue(d.paired.p_value),
                *([pvalue(d.paired.gate_p)] if holm_shown else []),
                str(d.paired.shared),
                {1: "better", -1: "WORSE", 0: ""}[d.direction],
            ]
        )
    if result.deltas:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            lines.append("  ".join(c.rjust(w) if 0 < i < len(row) - 1 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        for d in result.deltas:
            if d.paired.newly_failing or d.paired.newly_passing:
                lines.append(f"{d.suite}:")
                if d.paired.newly_failing:
                    lines.append(f"  newly failing in B ({len(d.paired.newly_failing)}): {listing(d.paired.newly_failing)}")
                if d.paired.newly_passing:
                    lines.append(f"  newly passing in B ({len(d.paired.newly_passing)}): {listing(d.paired.newly_passing)}")
    for d in result.incomparable:
        lines.append(f"{d.suite}: INCOMPARABLE: {', '.join(d.differing)} differ ({'; '.join(d.details)})")
    if result.only_before:
        lines.append(f"only in A ({len(result.only_before)}): {listing(result.only_before)}")
    if result.only_after:
        lines.append(f"only in B ({len(result.only_after)}): {listing(result.only_after)}")
    for w in result.warnings:
        lines.append(f"warning: {w}")
    lines.append("")
    if result.incomparable:
        lines.append(
            f"INCOMPARABLE: {len(result.incomparable)} suite(s) ran with different prompts, generation settings, "
            "few-shot counts or datasets; compare runs of the same eval, or pass --force to compare anyway"
        )
    elif not result.deltas:
        lines.append("nothing to compare: the files share no suite with common cases; compare results of the same evals")
    else:
        why = {
            "KEEP": f"better: {', '.join(result.better)}; nothing significantly worse",
            "DISCARD": f"significantly worse: {', '.join(result.worse)}",
            "MIXED": f"better: {', '.join(result.better)}; worse: {', '.join(result.worse)}",
            "UNCHANGED": "no significant difference",
        }[result.verdict]
        lines.append(f"{result.verdict}: {why}")
    return lines


def _rate(s: SuiteResult) -> str:
    low, high = s.interval()
    k = max((n for _, n in s.case_passes.values()), default=1)
    return f"{pct(s.pass_rate)} [{low * 100:.1f}, {high * 100:.1f}] n={s.n}" + (f" k={k}" if k > 1 else "")


def exit_code(result: RunComparison, fail_on: str = "mixed") -> int:
    if result.incomparable or not result.deltas:
        return EXIT_USAGE
    code = EXIT[result.verdict]
    if fail_on == "never" or (fail_on == "discard" and result.verdict == "MIXED"):
        return 0
    return code


# ---------------------------------------------------------------- command line


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare two results.json files: KEEP, DISCARD, MIXED or UNCHANGED",
        description=(__doc__ or "").split("\n\n")[0],
    )
    p.add_argument("a", metavar="A", help="results.json of the reference run (or its --llmeval-output folder)")
    p.add_argument("b", metavar="B", help="results.json of the candidate run")
    p.add_argument("--tolerance", type=_fraction, default=0.02, help="smallest change in pass rate that counts (default 0.02)")
    p.add_argument("--alpha", type=_fraction, default=0.05, help="significance level of the paired McNemar test (default 0.05)")
    p.add_argument("--force", action="store_true", help="compare suites whose prompt, generation, few-shot count or dataset differ")
    p.add_argument(
        "--fail-on",
        choices=("mixed", "discard", "never"),
        default="mixed",
        help="mixed (default): MIXED exits 2 and DISCARD 1; discard: only DISCARD fails; never: always exit 0",
    )
    p.add_argument("--html", metavar="PATH", help="also write both runs side by side, flips first, as one HTML file")
    p.set_defaults(func=run)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


def run(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    try:
        before, a_interrupted = load_run(Path(args.a))
        after, b_interrupted = load_run(Path(args.b))
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    interrupted = (a_interrupted, b_interrupted)
    result = compare_runs(before, after, tolerance=args.tolerance, alpha=args.alpha, force=args.force, interrupted=interrupted)
    for line in render(result, args.a, args.b):
        print(line, file=out)
    if getattr(args, "html", None):
        from pytest_llmeval.results.html import write_compare

        if write_compare(args, out) != 0:
            return EXIT_USAGE
    return exit_code(result, args.fail_on)
