"""The end-of-session report: terminal lines, Markdown, JUnit properties and results.json.

:class:`GateReport` is plain data built by :class:`~pytest_llmeval.session.EvalSession`; it
renders itself and decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from pytest_llmeval.results.baseline import Comparison, Verdict
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.stats import SuiteResult

RESULTS_SCHEMA = 1
MAX_LISTED = 10

Markup = dict[str, bool]


@dataclass(frozen=True)
class Message:
    """A note for the user: what happened, then one actionable hint (and a command to copy)."""

    level: str  # "error", "warning" or "info"
    text: str
    hint: str = ""
    command: str = ""

    def terminal_lines(self) -> list[tuple[str, Markup]]:
        markup: Markup = {"error": {"red": True, "bold": True}, "warning": {"yellow": True}}.get(self.level, {})
        out = [(self.text, markup)]
        if self.hint or self.command:
            out.append(("  " + " ".join(p for p in (self.hint, self.command) if p), {}))
        return out

    def markdown(self) -> str:
        icon = {"error": "❌", "warning": "⚠️"}.get(self.level, "ℹ️")
        tail = " ".join(p for p in (self.hint, f"`{self.command}`" if self.command else "") if p)
        return f"- {icon} {self.text}" + (f" — {tail}" if tail else "")

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "text": self.text, "hint": self.hint, "command": self.command}


@dataclass(frozen=True)
class GateReport:
    """Everything the session found, ready to print.

    ``failures`` holds one line per failed gate; the session failed if there is any.
    ``recorded`` names the suites written into the baseline by this run.
    """

    suites: tuple[SuiteResult, ...] = ()
    groups: tuple[SuiteResult, ...] = ()
    comparisons: Mapping[str, Comparison] = field(default_factory=dict)
    failures: tuple[str, ...] = ()
    messages: tuple[Message, ...] = ()
    baseline_path: Path | None = None
    baseline_state: str = "off"  # off, missing, empty, corrupt, ok
    recorded: frozenset[str] = frozenset()
    stale: tuple[str, ...] = ()
    strict: bool = False
    tolerance: float = 0.02
    alpha: float = 0.05
    confidence: float = 0.95
    versions: Mapping[str, str] = field(default_factory=dict)
    timings: Mapping[str, Any] = field(default_factory=dict)
    run: Mapping[str, Any] = field(default_factory=dict)

    @property
    def gate_failed(self) -> bool:
        return bool(self.failures)

    @property
    def title(self) -> str:
        return "llmeval"

    @property
    def totals(self) -> tuple[int, int, int]:
        return (
            sum(s.passed for s in self.suites),
            sum(s.failed for s in self.suites),
            sum(s.errors for s in self.suites),
        )

    # ------------------------------------------------------------ terminal

    def summary(self) -> str:
        passed, missed, errors = self.totals
        parts = [f"{passed} passed", f"{missed} missed"]
        if errors:
            parts.append(f"{errors} error{'s' if errors != 1 else ''}")
        n = len(self.suites)
        return f"{', '.join(parts)} in {n} suite{'s' if n != 1 else ''}"

    def lines(self) -> Iterator[tuple[str, Markup]]:
        """The terminal summary, one ``(text, markup)`` per line; empty when no eval ran."""
        if not self.suites and not self.messages and not self.failures:
            return
        if self.suites:
            yield f"llmeval: {self.summary()}", {"bold": True}
            yield from self._table()
            yield from self._groups()
            yield from self._metrics()
            yield from self._details()
        for message in self.messages:
            yield from message.terminal_lines()
        yield from self._verdict_lines()

    def _table(self) -> Iterator[tuple[str, Markup]]:
        rows = [["suite", "n", "pass", "miss", "err", "rate", f"{self.confidence:.0%} CI", "min", "baseline"]]
        marks: list[Markup] = [{"bold": True}]
        for s in self.suites:
            rows.append(self._row(s) + [self._verdict_cell(s.name)])
            marks.append(self._row_markup(s))
        yield from _render(rows, marks, right=(1, 2, 3, 4, 5, 7))

    def _row(self, s: SuiteResult) -> list[str]:
        low, high = s.interval(self.confidence)
        return [
            s.name,
            str(s.n),
            str(s.passed),
            str(s.failed),
            str(s.errors),
            pct(s.pass_rate),
            f"[{low * 100:.1f}, {high * 100:.1f}]",
            pct(s.min_pass_rate, 0) if s.min_pass_rate is not None else "-",
        ]

    def _row_markup(self, s: SuiteResult) -> Markup:
        comparison = self.comparisons.get(s.name)
        bad_verdict = (
            comparison is not None
            and s.name not in self.recorded
            and comparison.verdict in (Verdict.REGRESSED, Verdict.NEW, Verdict.INCOMPARABLE)
        )
        if s.errors or s.under_min or bad_verdict or (self.strict and s.failed):
            return {"red": True}
        if comparison is not None and comparison.verdict is Verdict.IMPROVED:
            return {"green": True}
        return {}

    def _verdict_cell(self, suite: str) -> str:
        c = self.comparisons.get(suite)
        if c is None:
            return "-"
        text = c.verdict.value
        if c.paired is not None and c.paired.shared and c.verdict is not Verdict.INCOMPARABLE:
            text += f" {points(c.paired.delta)} ({pvalue(c.paired.p_value)})"
        elif c.differing:
            text += f" ({', '.join(c.differing)})"
        if suite in self.recorded:
            text += ", recorded"
        return text

    def _groups(self) -> Iterator[tuple[str, Markup]]:
        if not self.groups:
            return
        rows = [["marker", "n", "pass", "miss", "err", "rate", f"{self.confidence:.0%} CI"]]
        marks: list[Markup] = [{"bold": True}]
        for g in self.groups:
            rows.append(self._row(g)[:7])
            marks.append({})
        yield "", {}
        yield from _render(rows, marks, right=(1, 2, 3, 4, 5))

    def _metrics(self) -> Iterator[tuple[str, Markup]]:
        rows = [(s.name, s.metrics) for s in self.suites if s.metrics]
        rows += [(f"marker {g.name}", g.metrics) for g in self.groups if g.metrics]
        if not rows:
            return
        yield "metric means:", {"bold": True}
        for name, metrics in rows:
            yield f"  {name}: " + ", ".join(f"{k}={v:.3f}" for k, v in metrics.items()), {}

    def _details(self) -> Iterator[tuple[str, Markup]]:
        for s in self.suites:
            c = self.comparisons.get(s.name)
            if c is None or c.verdict is Verdict.NEW:
                continue
            if c.verdict is Verdict.INCOMPARABLE:
                what = c.note or f"{', '.join(c.differing)} differ{'s' if len(c.differing) == 1 else ''} from the baseline"
                yield f"{s.name}: INCOMPARABLE: {what}", {"red": s.name not in self.recorded}
                for d in c.details:
                    yield f"  {d}", {}
                continue
            p = c.paired
            if p is None:
                continue
            changed = p.newly_failing or p.newly_passing or p.only_before or p.only_after
            if c.verdict is Verdict.UNCHANGED and not changed and not c.compared_across:
                continue
            markup: Markup = {"red": True} if c.verdict is Verdict.REGRESSED else {"green": True} if c.verdict is Verdict.IMPROVED else {}
            head = (
                f"{s.name}: {c.verdict.value} {pct(p.before_rate)} -> {pct(p.after_rate)} on {p.shared} shared "
                f"case{'s' if p.shared != 1 else ''} ({points(p.delta)}, {pvalue(p.p_value)})"
            )
            if c.verdict is Verdict.UNCHANGED and changed:
                head += " within noise" if (p.newly_failing or p.newly_passing) else ""
            yield head, markup
            if c.compared_across:
                yield f"  compared across a different {', '.join(c.compared_across)}", {}
            if p.newly_failing:
                yield f"  newly failing ({len(p.newly_failing)}): {listing(p.newly_failing)}", {"red": c.verdict is Verdict.REGRESSED}
            if p.newly_passing:
                yield f"  newly passing ({len(p.newly_passing)}): {listing(p.newly_passing)}", {"green": c.verdict is Verdict.IMPROVED}
            if p.only_after:
                yield f"  not in the baseline ({len(p.only_after)}): {listing(p.only_after)}", {}
            if p.only_before:
                yield f"  in the baseline, not run ({len(p.only_before)}): {listing(p.only_before)}", {}

    def _verdict_lines(self) -> Iterator[tuple[str, Markup]]:
        if self.failures:
            yield f"llmeval gate FAILED ({len(self.failures)}):", {"red": True, "bold": True}
            for failure in self.failures:
                yield f"  - {failure}", {"red": True}
        elif self.suites:
            yield f"llmeval gate passed: {self.summary()}", {"green": True, "bold": True}

    # ------------------------------------------------------------ other renderings

    def markdown(self) -> str:
        """A Markdown summary for a pull request (GitHub step summary)."""
        status = "❌ **gate failed**" if self.gate_failed else "✅ gate passed"
        out = [f"### pytest-llmeval: {status}", "", self.summary() if self.suites else "no eval cases ran", ""]
        if self.suites:
            out.append(f"| suite | n | pass | miss | err | rate | {self.confidence:.0%} CI | min | baseline |")
            out.append("|---|--:|--:|--:|--:|--:|---|--:|---|")
            for s in self.suites:
                cells = self._row(s) + [self._verdict_cell(s.name)]
                cells[0] = f"`{cells[0]}`"
                out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            out.append("")
        for s in self.suites:
            c = self.comparisons.get(s.name)
            if c is None or c.paired is None or not (c.paired.newly_failing or c.paired.newly_passing):
                continue
            p = c.paired
            out.append(f"<details><summary><code>{s.name}</code>: {c.verdict.value} ({points(p.delta)}, {pvalue(p.p_value)})</summary>")
            out.append("")
            if p.newly_failing:
                out.append(f"- newly failing ({len(p.newly_failing)}): " + listing(p.newly_failing, code=True))
            if p.newly_passing:
                out.append(f"- newly passing ({len(p.newly_passing)}): " + listing(p.newly_passing, code=True))
            out.extend(["", "</details>", ""])
        if self.failures:
            out.append("**Gate failures**")
            out.append("")
            out.extend(f"- {f}" for f in self.failures)
            out.append("")
        if self.messages:
            out.extend(m.markdown() for m in self.messages)
            out.append("")
        return "\n".join(out)

    def junit_properties(self) -> list[tuple[str, str]]:
        """Suite figures as (name, value) pairs for JUnit XML global properties."""
        props: list[tuple[str, str]] = [("llmeval.gate", "failed" if self.gate_failed else "passed")]
        for s in self.suites:
            low, high = s.interval(self.confidence)
            key = f"llmeval.{s.name}"
            props += [
                (f"{key}.n", str(s.n)),
                (f"{key}.passed", str(s.passed)),
                (f"{key}.failed", str(s.failed)),
                (f"{key}.errors", str(s.errors)),
                (f"{key}.pass_rate", f"{s.pass_rate:.4f}"),
                (f"{key}.ci_low", f"{low:.4f}"),
                (f"{key}.ci_high", f"{high:.4f}"),
            ]
            if s.min_pass_rate is not None:
                props.append((f"{key}.min_pass_rate", f"{s.min_pass_rate:.4f}"))
            c = self.comparisons.get(s.name)
            if c is not None:
                props.append((f"{key}.verdict", c.verdict.value))
                if c.paired is not None and c.paired.shared:
                    props.append((f"{key}.delta", f"{c.paired.delta:.4f}"))
                    props.append((f"{key}.p_value", f"{c.paired.p_value:.4g}"))
            for metric, value in s.metrics.items():
                props.append((f"{key}.metric.{metric}", f"{value:.4f}"))
        return props

    def to_json(self) -> dict[str, Any]:
        """The content of results.json."""
        return {
            "schema": RESULTS_SCHEMA,
            "gate": {"failed": self.gate_failed, "failures": list(self.failures)},
            "summary": {"passed": self.totals[0], "failed": self.totals[1], "errors": self.totals[2], "suites": len(self.suites)},
            "settings": {"confidence": self.confidence, "tolerance": self.tolerance, "alpha": self.alpha, "strict": self.strict},
            "suites": {s.name: self._suite_json(s) for s in self.suites},
            "groups": {"markers": {g.name: self._suite_json(g, cases=False) for g in self.groups}},
            "baseline": {
                "path": str(self.baseline_path) if self.baseline_path else None,
                "state": self.baseline_state,
                "recorded": sorted(self.recorded),
                "stale": list(self.stale),
            },
            "messages": [m.to_json() for m in self.messages],
            "versions": dict(self.versions),
            "timings": dict(self.timings),
            "run": dict(self.run),
        }

    def _suite_json(self, s: SuiteResult, cases: bool = True) -> dict[str, Any]:
        low, high = s.interval(self.confidence)
        data: dict[str, Any] = {
            "n": s.n,
            "passed": s.passed,
            "failed": s.failed,
            "errors": s.errors,
            "pass_rate": s.pass_rate,
            "ci": [low, high],
            "metrics": dict(s.metrics),
        }
        if not cases:
            return data
        data.update(
            min_pass_rate=s.min_pass_rate,
            under_min=s.under_min,
            fingerprint=dict(s.fingerprint),
            limited=s.limited,
            duration_s=s.duration_s,
            cases=dict(s.outcomes),
            verdict=self._comparison_json(s.name),
        )
        return data

    def _comparison_json(self, suite: str) -> dict[str, Any] | None:
        c = self.comparisons.get(suite)
        if c is None:
            return None
        data: dict[str, Any] = {
            "verdict": c.verdict.value,
            "baseline_rate": c.baseline_rate,
            "differing": list(c.differing),
            "details": list(c.details),
            "compared_across": list(c.compared_across),
            "note": c.note,
            "recorded": suite in self.recorded,
        }
        if c.paired is not None:
            p = c.paired
            data.update(
                shared=p.shared,
                before_rate=p.before_rate,
                after_rate=p.after_rate,
                delta=p.delta,
                p_value=p.p_value,
                newly_failing=list(p.newly_failing),
                newly_passing=list(p.newly_passing),
                not_in_baseline=list(p.only_after),
                not_run=list(p.only_before),
            )
        return data


def sample_json(record: CaseRecord) -> dict[str, Any]:
    """One line of samples.jsonl: the case as sent, what came back, and how it was judged."""
    data: dict[str, Any] = {
        "id": record.case_id,
        "suite": record.suite,
        "outcome": record.outcome,
        "prompt": record.prompt,
    }
    if record.choices is not None or record.loglikelihoods is not None:
        data["choices"] = list(record.choices or ())
        data["loglikelihoods"] = list(record.loglikelihoods or ())
    else:
        data["completion"] = record.completion
    data.update(
        scores=dict(record.scores),
        reason=record.reason or None,
        latency_s=record.latency_s,
        tokens_in=record.tokens_in,
        tokens_out=record.tokens_out,
        duration_s=record.duration_s,
        markers=list(record.markers),
        limited=record.limited,
    )
    return data


# ---------------------------------------------------------------- formatting


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def points(delta: float) -> str:
    return f"{delta * 100:+.1f} pts"


def pvalue(p: float) -> str:
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.3f}" if p < 0.01 else f"p={p:.2f}"


def listing(items: Sequence[str], limit: int = MAX_LISTED, code: bool = False) -> str:
    shown = [f"`{i}`" if code else i for i in items[:limit]]
    more = len(items) - limit
    return ", ".join(shown) + (f" ... and {more} more" if more > 0 else "")


def _render(rows: list[list[str]], marks: list[Markup], right: tuple[int, ...]) -> Iterator[tuple[str, Markup]]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row, markup in zip(rows, marks):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        yield "  ".join(cells).rstrip(), markup


def missed_lines(records: Sequence[CaseRecord], per_suite: int | None = 3) -> Iterator[tuple[str, Markup]]:
    """The wrong answers of the run, with their one-line reasons (``per_suite`` each; None: all)."""
    by_suite: dict[str, list[CaseRecord]] = {}
    for record in records:
        if record.outcome == "fail":
            by_suite.setdefault(record.suite, []).append(record)
    if not by_suite:
        return
    limit = "" if per_suite is None else f" (first {per_suite} per suite; -v lists all)"
    yield f"missed cases{limit}:", {"bold": True}
    for suite in sorted(by_suite):
        misses = by_suite[suite]
        shown = misses if per_suite is None else misses[:per_suite]
        for record in shown:
            reason = " ".join(record.reason.split())
            yield f"  {suite}[{record.case_id}]: {reason[:160]}", {"yellow": True}
        if len(shown) < len(misses):
            yield f"  ... and {len(misses) - len(shown)} more in {suite}", {}
