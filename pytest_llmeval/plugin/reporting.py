"""What the plugin reports: each case's outcome and labels, the collector of records on the
reporting process, the terminal summary, JUnit properties, pytest-html labels and the run history."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from pytest_llmeval.escaping import terminal
from pytest_llmeval.own_warnings import warn
from pytest_llmeval.plugin.run_options import cache_path, history_path
from pytest_llmeval.plugin.progress import resume_file_line
from pytest_llmeval.plugin.state import LINES_KEY, LLMEvalState
from pytest_llmeval.redaction import KNOWN, contains_secret, redact, redact_json
from pytest_llmeval.results.records import RECORD_KEY, Outcome, records_from_properties

CASE_LABELS = {Outcome.PASS: "pass", Outcome.MISS: "missed", Outcome.ERROR: "error", Outcome.SKIPPED: "skipped", Outcome.XFAILED: "xfailed"}
CASE_PROPERTIES = ("llmeval_outcome", "llmeval_reason")


def label_case(item: pytest.Item, report: pytest.TestReport, outcome: str, reason: str) -> None:
    """Scalar properties of the case for report writers (JUnit XML writes them per testcase):
    ``llmeval_outcome`` (pass, missed, error...) and, for a miss, ``llmeval_reason``. Set on the
    item, so that the later phases' reports (the teardown one, which JUnit XML reads) carry them."""
    labels = [("llmeval_outcome", CASE_LABELS.get(outcome, outcome))]
    if outcome == "fail" and reason:
        labels.append(("llmeval_reason", reason))
    for props in (item.user_properties, report.user_properties):
        props[:] = [p for p in props if p[0] not in CASE_PROPERTIES] + labels


def redacted(report: pytest.TestReport) -> pytest.TestReport:
    """``report`` without any secret the session knows (:mod:`pytest_llmeval.redaction`): its
    traceback (also as ``-l`` shows locals), captured output and properties. A traceback that held
    one becomes plain text."""
    if not KNOWN:
        return report
    if report.longrepr is not None:
        text = str(report.longrepr)
        if contains_secret(text):
            report.longrepr = redact(text)
    report.sections = [(title, redact(content)) for title, content in report.sections]
    report.user_properties = [(name, redact_json(value)) for name, value in report.user_properties]
    return report


def item_outcome(report: pytest.TestReport, call: pytest.CallInfo[None]) -> Outcome | None:
    """The case's outcome this phase reports, or None when the phase says nothing new."""
    exc = call.excinfo.value if call.excinfo is not None else None
    return Outcome.of_phase(call.when, report.outcome, assertion=isinstance(exc, AssertionError), xfail=hasattr(report, "wasxfail"))


def short_miss_repr(item: pytest.Item, call: pytest.CallInfo[None], strict: bool) -> bool:
    """Before pytest builds the report of a miss that will show as MISSED (not ``--llmeval-strict``),
    give the item a one-line failure text, the miss's reason, instead of pytest's traceback: nothing
    shows that traceback (the report passes, the record keeps the reason), and building it reads and
    parses the test's source, which was most of a large cached re-run's time. Returns whether it did;
    the caller removes the attribute after the report is made."""
    if strict or call.when != "call" or call.excinfo is None or not isinstance(call.excinfo.value, AssertionError):
        return False
    reason = failure_reason(call)
    item.repr_failure = lambda excinfo, style=None: reason  # type: ignore[method-assign]
    return True


def failure_reason(call: pytest.CallInfo[None]) -> str:
    if call.excinfo is None:
        return ""
    exc = call.excinfo.value
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, AssertionError) or not first else first


class Collector:
    """Receives reports on the process that reports (serial run or xdist controller)."""

    def __init__(self, state: LLMEvalState) -> None:
        self.state = state
        self.junit = state.config.pluginmanager.has_plugin("junitxml") and bool(state.config.getoption("xmlpath", None))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Iterator[None]:
        # JUnit XML writes the teardown report's user_properties as testcase properties: the
        # record (a teardown error's) would be written whole; the scalar labels say enough.
        self.show_worker_lines(report)
        resume_file_line(self.state.config, report.nodeid)
        kept = report.user_properties
        if report.when == "teardown" and self.junit:
            report.user_properties = [p for p in kept if p[0] != RECORD_KEY]
        try:
            return (yield)
        finally:
            report.user_properties = kept
            if self.junit:
                junit_error_for_call_errors(self.state.config, report)
            self.collect(report)  # after the other plugins, --lf's included, have seen the report

    def show_worker_lines(self, report: pytest.TestReport) -> None:
        """The lines an xdist worker said before this report (its model load, its batched runs),
        shown here with the worker's name, and taken off the report."""
        lines = [p[1] for p in report.user_properties if p[0] == LINES_KEY]
        if not lines:
            return
        report.user_properties = [p for p in report.user_properties if p[0] != LINES_KEY]
        node = getattr(report, "node", None)
        name = getattr(getattr(node, "gateway", None), "id", None) or getattr(report, "worker_id", None)
        for batch in lines:
            for line in batch if isinstance(batch, list) else [batch]:
                self.state.say(f"[{name}] {line}" if name else str(line))

    def collect(self, report: pytest.TestReport) -> None:
        if report.outcome == "rerun":  # pytest-rerunfailures: only the final attempt counts
            return
        state = self.state
        for record in records_from_properties(report.user_properties):
            state.records.append(record)
            state.eval_session.add(record)
            if record.outcome is Outcome.MISS:
                _remember_miss_for_lf(state.config, report.nodeid)


def _remember_miss_for_lf(config: pytest.Config, nodeid: str) -> None:
    """A miss passes as far as pytest is concerned; ``--lf`` still re-runs it, as users expect."""
    lf = config.pluginmanager.get_plugin("lfplugin")
    lastfailed = getattr(lf, "lastfailed", None)
    if isinstance(lastfailed, dict):
        lastfailed[nodeid] = True


def write_history(state: LLMEvalState) -> None:
    path = history_path(state.config, state.options)
    if path is None:
        return
    from pytest_llmeval.results import history

    try:
        history.record_run(path, state.records, interrupted=state.interrupted)
    except Exception as exc:  # history is a convenience: never fail a run over it
        warn(f"llmeval: could not append to the run history {path}: {exc}", stacklevel=1)


def _junit_xml(config: pytest.Config) -> Any:
    """pytest's JUnit XML writer of this run, or None (no --junitxml)."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover
        return None
    return config.stash.get(xml_key, None)


def add_junit_properties(config: pytest.Config, report: Any) -> None:
    xml = _junit_xml(config)
    if xml is None:
        return
    for name, value in report.junit_properties():
        xml.add_global_property(name, value)


def write_summary(reporter: Any, exitstatus: int, state: LLMEvalState) -> None:
    """The llmeval section: missed cases, the suite table and the gate, on the reporting process;
    every line escaped (:func:`~pytest_llmeval.escaping.terminal`): a case id or a reason cannot
    move the cursor, recolour or add a line."""
    report = state.final_report
    if report is None:
        return
    from pytest_llmeval.results.missed import missed_lines

    reporter.section("llmeval", sep="=")
    verbose = state.config.getoption("verbose", default=0) > 0
    for text, markup in missed_lines(state.records, per_suite=None if verbose else 3):
        reporter.write_line(terminal(text), **markup)
    cached = cache_line(state)
    if cached:
        reporter.write_line(terminal(cached))
    for text in durations_lines(state):
        reporter.write_line(terminal(text))
    other = _other_problems(reporter, exitstatus, state) if report.suites and not report.gate_failed else ""
    for text, markup in report.lines():
        reporter.write_line(terminal(text), **({"yellow": True, "bold": True} if other and markup.get("green") else markup))
    if other:  # the gate line must not read as "all is well" when the run fails
        reporter.write_line(terminal(f"llmeval: the gate passed, but the run failed for other reasons: {other}"), red=True, bold=True)


def durations_lines(state: LLMEvalState) -> list[str]:
    """With ``--durations``: each batched run and the test whose setup pytest bills it to (the
    test that asked first computes its neighbours' outputs too)."""
    if state.config.getoption("durations", None) is None or not state.batch_runs:
        return []
    lines = ["llmeval: --durations bills each batched run to the setup of the test that started it:"]
    for nodeid, what, seconds in sorted(state.batch_runs, key=lambda run: -run[2]):
        lines.append(f"  {seconds:.2f}s {what}, in the setup of {nodeid}")
    return lines


def cache_line(state: LLMEvalState) -> str:
    """How many of the run's completions and rankings came from the completion cache."""
    mode = state.options["cache"] or "on"
    outputs = [r for r in state.records if r.completion is not None or r.choices is not None]
    if mode == "off" or not outputs:
        return ""
    from pytest_llmeval.results.session import from_cache

    counts = from_cache(outputs)
    conversations = sum(r.conversation is not None for r in outputs)
    completions = sum(r.completion is not None for r in outputs) - conversations
    rankings = len(outputs) - completions - conversations
    parts = [f"{counts['completions']} of {completions} completions"] if completions else []
    parts += [f"{counts['rankings']} of {rankings} rankings"] if rankings else []
    parts += [f"{counts.get('conversations', 0)} of {conversations} conversations"] if conversations else []
    judging = state.judging
    parts += [f"{judging.cached} of {judging.judged} judgements"] if judging is not None and judging.judged else []
    return f"llmeval: from the completion cache ({mode}, {_shown(cache_path(state.config, state.options))}): {' and '.join(parts)}"


def _shown(path: Any) -> str:
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _labels(report: pytest.TestReport) -> dict[str, Any]:
    return dict(p for p in report.user_properties if p[0] in CASE_PROPERTIES)


def html_miss_line(report: pytest.TestReport) -> str | None:
    """pytest-html's details of a miss start with the reason."""
    labels = _labels(report)
    if report.when != "call" or labels.get("llmeval_outcome") != "missed":
        return None
    from html import escape

    why = f": {labels['llmeval_reason']}" if labels.get("llmeval_reason") else ""
    return f"llmeval: MISSED{escape(str(why))} (a wrong answer: counted in the llmeval table, not a test failure)"


MISS_COLOUR = "#b35900"
"""A miss's colour, as in this plugin's own HTML report (an error keeps pytest-html's red)."""


def html_result_cell(report: pytest.TestReport) -> str | None:
    """pytest-html's Result cell of an eval case, in the terminal's words: ``Missed`` (in its own
    colour) for a miss, ``Error`` for an error in the test's call; None to leave the cell alone.

    pytest-html keeps a row's outcome (what its filters and counts use) from the cell's text up to
    the cell's first ``>``; the cell keeps pytest's word there (``<td>Passed</td>`` in an attribute),
    so a miss stays among the Passed for the filters, as pytest counts it, and reads Missed."""
    labels = _labels(report)
    outcome = labels.get("llmeval_outcome")
    if report.when != "call":
        return None
    if outcome == "missed" and report.passed:
        shown, kept, style = "Missed", "Passed", f' style="color:{MISS_COLOUR}"'
    elif outcome == "error" and report.failed:
        shown, kept, style = "Error", "Failed", ""
    else:
        return None
    return f'<td class="col-result" data-pytest-outcome="<td>{kept}</td>"{style}>{shown}</td>'


def html_summary_line(state: LLMEvalState) -> str | None:
    """A line for pytest-html's summary: the run's eval counts in the terminal's words, and where
    pytest-html counts misses and errors."""
    report = state.final_report
    if report is None or not report.suites:
        return None
    from html import escape

    totals = report.totals
    notes = []
    if totals.get("failed") and not state.run.strict:
        notes.append("a miss is a wrong answer, not a failed test: pytest-html counts it among the Passed and shows it as Missed")
    if totals.get("errors"):
        notes.append("an error in a test's call is counted among the Failed and shown as Error")
    tail = f" ({'; '.join(notes)})" if notes else ""
    return f'<p class="llmeval-summary">llmeval: {escape(report.summary())}{escape(tail)}</p>'


def junit_error_for_call_errors(config: pytest.Config, report: pytest.TestReport) -> None:
    """JUnit XML writes a failed call as ``<failure>``; an eval case whose call raised something
    other than a miss is an error (the terminal says ERROR): make it ``<error>``, counted as one."""
    if report.when != "call" or not report.failed:
        return
    records = records_from_properties(report.user_properties)
    if not records or records[-1].outcome is not Outcome.ERROR:
        return
    xml = _junit_xml(config)
    if xml is None:
        return
    nodes = xml.node_reporter(report).nodes
    failure = next((n for n in reversed(nodes) if n.tag == "failure"), None)
    if failure is None:
        return
    failure.tag = "error"
    failure.set("message", f"error in the test's call: {failure.get('message', '')}")
    xml.stats["failure"] -= 1
    xml.stats["error"] += 1


def _other_problems(reporter: Any, exitstatus: int, state: LLMEvalState) -> str:
    """Why the run fails although the gate passed (plain tests, errors, an early stop), or ''."""
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        return ""
    stats = getattr(reporter, "stats", {})

    def outside(key: str) -> list[Any]:
        return [r for r in stats.get(key, ()) if isinstance(r, pytest.TestReport) and not records_from_properties(r.user_properties)]

    strict_misses = [r for r in stats.get("failed", ()) if any(x.outcome == "fail" for x in records_from_properties(r.user_properties))]
    collection = [r for r in stats.get("error", ()) if isinstance(r, pytest.CollectReport)]
    parts = [
        _count(len(outside("failed")), "failed test"),
        _count(len(outside("error")), "error") + " outside the eval cases" if outside("error") else "",
        _count(len(collection), "collection error"),
        _count(len(strict_misses), "missed case") + " (--llmeval-strict)" if strict_misses else "",
    ]
    if state.stopped:
        parts.append(f"pytest stopped early ({state.stopped}), so later tests did not run")
    elif exitstatus == pytest.ExitCode.INTERRUPTED:
        parts.append("the run was interrupted, so later tests did not run")
    return "; ".join(p for p in parts if p) or f"exit status {int(exitstatus)}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}" if n else ""


