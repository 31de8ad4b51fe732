"""The end-of-session report: terminal lines, Markdown, JUnit properties and results.json.

:class:`GateReport` is plain data built by :class:`~pytest_llmeval.results.session.EvalSession`; it
renders itself and decides nothing. A case's line of ``samples.jsonl`` is
:func:`~pytest_llmeval.results.samplefile.sample_json`; the words for a suite's comparison with its
baseline are :mod:`~pytest_llmeval.results.verdicts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from pytest_llmeval.escaping import markdown_code, markdown_text
from pytest_llmeval.results.caps import CapCounts
from pytest_llmeval.results import beyond_report
from pytest_llmeval.results.beyond_report import SuiteBeyond
from pytest_llmeval.results.comparison import Comparison, Verdict
from pytest_llmeval.results.messages import MAX_LISTED, Markup, Message, listing, pct, plural, points, pvalue
from pytest_llmeval.results.repeats import summarize_repeats
from pytest_llmeval.results.samplefile import sample_json
from pytest_llmeval.results.stats import SuiteResult
from pytest_llmeval.results.usage import usage_lines
from pytest_llmeval.results.verdicts import comparison_json, detail_lines, markdown_details, verdict_cell

__all__ = [
    "RESULTS_SCHEMA", "MAX_LISTED", "GateReport", "Message", "listing", "pct", "points", "pvalue", "sample_json",
]  # fmt: skip
# MAX_LISTED, Message, listing, pct, points, pvalue (results.messages) and sample_json
# (results.samplefile) are importable from here too, as the tests do.

RESULTS_SCHEMA = 1
NOT_COUNTED_NOTE = "skip: skipped and xfailed cases, not counted in n or the rate"


@dataclass(frozen=True)
class GateReport:
    """Everything the session found, ready to print.

    ``messages`` holds what the gate found; the blocking ones are the failed gates (the
    session failed if there is any), the others are notes. ``recorded`` names the suites
    written into the baseline by this run; ``interrupted`` says the run did not end normally.
    """

    suites: tuple[SuiteResult, ...] = ()
    groups: tuple[SuiteResult, ...] = ()
    comparisons: Mapping[str, Comparison] = field(default_factory=dict)
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
    interrupted: bool = False
    usage: Mapping[str, Any] = field(default_factory=dict)
    """A served model's tokens, latency and cost per suite and its requests (:mod:`~pytest_llmeval.results.usage`)."""
    pass_ks: tuple[int, ...] = ()
    """With repeats: more k to report pass@k and pass^k for (1 and the k run always are)."""
    beyond: Mapping[str, SuiteBeyond] = field(default_factory=dict)
    """Per suite, robustness, CircularEval, calibration and search figures (:mod:`~pytest_llmeval.results.beyond_report`)."""
    caps: Mapping[str, CapCounts] = field(default_factory=dict)
    """Per generation suite: its completions cut at ``max_new_tokens`` (:mod:`~pytest_llmeval.results.caps`)."""
    code: Mapping[str, Any] = field(default_factory=dict)
    """Per suite that ran programs (``le.assert_code``): the sandbox and the protections in force
    (:mod:`~pytest_llmeval.results.code_runs`)."""

    @property
    def flagged(self) -> tuple[str, ...]:
        """The suites flagged for completions cut at ``max_new_tokens`` (above ``llmeval_max_cut_share``)."""
        return tuple(name for name, c in sorted(self.caps.items()) if c.any_flag)

    @property
    def failures(self) -> tuple[str, ...]:
        """One line per failed gate."""
        return tuple(m.text for m in self.messages if m.blocks)

    @property
    def notes(self) -> tuple[Message, ...]:
        """The messages that explain, warn or hint (they do not fail the gate themselves)."""
        return tuple(m for m in self.messages if not m.blocks)

    @property
    def gate_failed(self) -> bool:
        return any(m.blocks for m in self.messages)

    @property
    def title(self) -> str:
        return "llmeval"

    @property
    def totals(self) -> dict[str, int]:
        """Cases per outcome over every suite: passed, failed (missed), errors, skipped, xfailed."""
        keys = ("passed", "failed", "errors", "skipped", "xfailed")
        return {k: sum(getattr(s, k) for s in self.suites) for k in keys}

    @property
    def _shows_skips(self) -> bool:
        return any(s.skipped or s.xfailed for s in self.suites)

    # ------------------------------------------------------------ terminal

    def summary(self) -> str:
        """``163 passed, 37 missed, 1 error, 2 skipped in 3 suites``."""
        t = self.totals
        parts = [f"{t['passed']} passed", f"{t['failed']} missed"]
        if t["errors"]:
            parts.append(plural(t["errors"], "error"))
        parts += [f"{t[k]} {k}" for k in ("skipped", "xfailed") if t[k]]
        return f"{', '.join(parts)} in {plural(len(self.suites), 'suite')}"

    def lines(self) -> Iterator[tuple[str, Markup]]:
        """The terminal summary, one ``(text, markup)`` per line; empty when no eval ran."""
        if not self.suites and not self.messages:
            return
        if self.suites:
            yield f"llmeval: {self.summary()}", {"bold": True}
            yield from self._table()
            yield from self._repeats()
            yield from self._groups()
            yield from self._metrics()
            yield from beyond_report.terminal_lines(self.suites, self.beyond, self.comparisons, self.recorded, tolerance=self.tolerance, alpha=self.alpha)
            yield from usage_lines(self.usage)
            yield from self._details()
        for message in self.notes:
            yield from message.terminal_lines()
        yield from self._verdict_lines()

    def _header(self) -> list[str]:
        skip = ["skip"] if self._shows_skips else []
        cut = ["cut"] if any(c.cut for c in self.caps.values()) else []
        return ["suite", "n", "pass", "miss", "err", *skip, *cut, "rate", f"{self.confidence:.0%} CI", "min"]

    @property
    def _models(self) -> dict[str, str]:
        """Each suite's model, by name, when the suites ran on more than one (else {})."""
        names = {s.name: s.fingerprint.model_name or "-" for s in self.suites}
        if len(set(names.values()) - {"-"}) < 2:
            return {}
        return {k: v if len(v) <= 48 else "..." + v[-45:] for k, v in names.items()}

    def _table(self) -> Iterator[tuple[str, Markup]]:
        models = self._models
        rows = [self._header() + ["baseline"]]
        numeric = tuple(range(1, len(rows[0]) - 3)) + (len(rows[0]) - 2,)
        rows[0] += ["model"] if models else []
        marks: list[Markup] = [{"bold": True}]
        for s in self.suites:
            rows.append(self._row(s) + [self._verdict_cell(s.name)] + ([models[s.name]] if models else []))
            marks.append(self._row_markup(s))
        yield from _render(rows, marks, right=numeric)
        if self._shows_skips:
            yield f"({NOT_COUNTED_NOTE})", {}

    def _row(self, s: SuiteResult) -> list[str]:
        low, high = s.interval(self.confidence)
        skip = [str(s.skipped + s.xfailed)] if self._shows_skips else []
        if any(c.cut for c in self.caps.values()):
            skip.append(self.caps[s.name].cell() if s.name in self.caps else "-")
        return [
            s.name,
            str(s.n),
            str(s.passed),
            str(s.failed),
            str(s.errors),
            *skip,
            pct(s.pass_rate) if s.n else "-",
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
        return {"yellow": True} if s.name in self.flagged else {}

    def _verdict_cell(self, suite: str) -> str:
        c = self.comparisons.get(suite)
        return verdict_cell(c, recorded=suite in self.recorded, tolerance=self.tolerance, alpha=self.alpha)

    def repeat_lines(self, code: bool = False) -> list[str]:
        """One line per suite sampled several times per case: the mean rate with its
        cluster-aware interval, pass@k, pass^k, the flaky cases (flakiest first) and, when
        compared with a baseline, the smallest drop its cases could show as significant."""
        out = []
        for s in self.suites:
            if not s.repeated:
                continue
            r = summarize_repeats(s.case_passes, self.confidence, self.pass_ks)
            low, high = r.interval
            at = ", ".join(f"pass@{j} {pct(v)}" for j, v in r.pass_at.items())
            hat = ", ".join(f"pass^{j} {pct(v)}" for j, v in r.pass_hat.items() if j > 1)
            flaky = [f"{markdown_code(cid) if code else cid} ({c}/{n})" for cid, (c, n) in r.flaky]
            name = markdown_code(s.name) if code else s.name
            line = (f"{name}: {r.samples} samples of {plural(r.cases, 'case')} (k={r.k}); mean {pct(r.mean)} "
                    f"[{low * 100:.1f}, {high * 100:.1f}]; {at}; {hat}; {len(flaky)} flaky")  # fmt: skip
            if flaky:
                line += f": {listing(flaky)}"
            c = self.comparisons.get(s.name)
            drop = c.paired.min_detectable_drop(self.alpha) if c is not None and c.paired is not None and c.paired.shared else None
            if c is not None and c.paired is not None and c.paired.shared:
                line += f"; smallest detectable drop {'none' if drop is None else f'{drop * 100:.1f} pts'} at alpha {self.alpha:g}"
            out.append(line)
        return out

    def _repeats(self) -> Iterator[tuple[str, Markup]]:
        lines = self.repeat_lines()
        if lines:
            yield f"repeated samples (mean of case rates, {self.confidence:.0%} CI with cases as clusters):", {"bold": True}
            for line in lines:
                yield f"  {line}", {}

    def _groups(self) -> Iterator[tuple[str, Markup]]:
        if not self.groups:
            return
        width = len(self._header()) - 1
        rows = [["marker", *self._header()[1:width]]]
        marks: list[Markup] = [{"bold": True}]
        for g in self.groups:
            rows.append(self._row(g)[:width])
            marks.append({})
        yield "", {}
        yield from _render(rows, marks, right=tuple(range(1, width - 1)))

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
            yield from detail_lines(s.name, self.comparisons.get(s.name), recorded=s.name in self.recorded)

    def _verdict_lines(self) -> Iterator[tuple[str, Markup]]:
        if self.failures:
            yield f"llmeval gate FAILED ({len(self.failures)}):", {"red": True, "bold": True}
            for failure in self.failures:
                yield f"  - {failure}", {"red": True}
        elif self.suites and self.flagged:
            yield f"llmeval gate passed, {self._flag_words()}: {self.summary()}", {"yellow": True, "bold": True}
        elif self.suites:
            yield f"llmeval gate passed: {self.summary()}", {"green": True, "bold": True}

    def _flag_words(self) -> str:
        return f"with {plural(len(self.flagged), 'suite')} flagged for answers cut at max_new_tokens"

    # ------------------------------------------------------------ other renderings

    def markdown(self) -> str:
        """A Markdown summary for a pull request (GitHub step summary)."""
        status = "❌ **gate failed**" if self.gate_failed else f"⚠️ gate passed, {self._flag_words()}" if self.flagged else "✅ gate passed"
        out = [f"### pytest-llmeval: {status}", "", self.summary() if self.suites else "no eval cases ran", ""]
        if self.suites:
            models = self._models
            header = self._header() + ["baseline"]
            out.append("| " + " | ".join(header + (["model"] if models else [])) + " |")
            out.append("|---|" + "--:|" * (len(header) - 4) + "---|--:|---|" + ("---|" if models else ""))
            for s in self.suites:
                cells = self._row(s) + [self._verdict_cell(s.name)] + ([markdown_code(models[s.name])] if models else [])
                cells[0] = markdown_code(s.name)
                out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            if self._shows_skips:
                out.append(f"\n{NOT_COUNTED_NOTE}")
            out.append("")
            repeats = self.repeat_lines(code=True)
            if repeats:
                out.append(f"**Repeated samples** (mean of case rates, {self.confidence:.0%} CI with cases as clusters)")
                out.append("")
                out.extend(f"- {line}" for line in repeats)
                out.append("")
            out += beyond_report.markdown_lines(self.suites, self.beyond, self.comparisons, self.recorded, tolerance=self.tolerance, alpha=self.alpha)
        for s in self.suites:
            out += markdown_details(s.name, self.comparisons.get(s.name))
        if self.failures:
            out.append("**Gate failures**")
            out.append("")
            out.extend(f"- {markdown_text(f)}" for f in self.failures)
            out.append("")
        if self.notes:
            out.extend(m.markdown() for m in self.notes)
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
                (f"{key}.skipped", str(s.skipped)),
                (f"{key}.xfailed", str(s.xfailed)),
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
                    if c.paired.adjusted_p is not None:
                        props.append((f"{key}.p_holm", f"{c.paired.adjusted_p:.4g}"))
            for metric, value in s.metrics.items():
                props.append((f"{key}.metric.{metric}", f"{value:.4f}"))
        return props

    def to_json(self) -> dict[str, Any]:
        """The content of results.json."""
        return {
            "schema": RESULTS_SCHEMA,
            "interrupted": self.interrupted,
            "gate": {"failed": self.gate_failed, "failures": list(self.failures), "flagged": list(self.flagged)},
            "summary": {**self.totals, "suites": len(self.suites)},
            "settings": {"confidence": self.confidence, "tolerance": self.tolerance, "alpha": self.alpha, "strict": self.strict},
            "suites": {s.name: self._suite_json(s) for s in self.suites},
            "groups": {"markers": {g.name: g.to_json(self.confidence, cases=False) for g in self.groups}},
            "baseline": {
                "path": str(self.baseline_path) if self.baseline_path else None,
                "state": self.baseline_state,
                "recorded": sorted(self.recorded),
                "stale": list(self.stale),
            },
            "messages": [m.to_json() for m in self.notes],
            "versions": dict(self.versions),
            "timings": dict(self.timings),
            "run": dict(self.run),
            **({"usage": dict(self.usage)} if self.usage else {}),
        }

    def _suite_json(self, s: SuiteResult) -> dict[str, Any]:
        data = {**s.to_json(self.confidence, ks=self.pass_ks), "verdict": self._comparison_json(s.name)}
        for name, variant in data.get("variants", {}).items():
            variant["verdict"] = self._comparison_json(f"{s.name}~{name}")
        if s.name in self.caps:
            data["caps"] = self.caps[s.name].as_dict()
        return {**data, **beyond_report.suite_json(self.beyond.get(s.name)), **self._code_json(s.name)}

    def _code_json(self, suite: str) -> dict[str, Any]:
        return {"code": dict(self.code[suite])} if suite in self.code else {}

    def _comparison_json(self, suite: str) -> dict[str, Any] | None:
        c = self.comparisons.get(suite)
        return comparison_json(c, recorded=suite in self.recorded, tolerance=self.tolerance, alpha=self.alpha)


# ---------------------------------------------------------------- formatting


def _render(rows: list[list[str]], marks: list[Markup], right: tuple[int, ...]) -> Iterator[tuple[str, Markup]]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row, markup in zip(rows, marks):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        yield "  ".join(cells).rstrip(), markup
