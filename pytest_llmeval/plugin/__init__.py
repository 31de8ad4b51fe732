"""The pytest face of pytest-llmeval: options, hooks and fixtures; hooks stay thin.

The state lives in :mod:`.state`, the options table in :mod:`.options`, the fixtures in
:mod:`.fixtures`. Heavy modules (torch, transformers) are imported only when a model is needed.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterator

import pytest

from pytest_llmeval.datasets.suite import CaseError, CaseSpec
from pytest_llmeval.plugin.fixtures import case, completion, llm, llm_settings, ranked
from pytest_llmeval.plugin.options import add_options
from pytest_llmeval.plugin.state import MARKER, STATE, LLMEvalState, eval_item, get_state, history_path
from pytest_llmeval.results.records import RECORD_KEY, records_from_properties
from pytest_llmeval.scoring.recording import collecting_scores
from pytest_llmeval.settings import SettingsError

__all__ = ["STATE", "case", "completion", "llm", "llm_settings", "ranked"]

SCORES = pytest.StashKey[dict[str, float]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_llmeval.plugin import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


class LLMEvalOverlapWarning(UserWarning):
    """Eval cases that appear in the training data (``--llmeval-train-data``)."""


OVERLAP_MARKER = "llmeval_train_overlap"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(spec): an eval suite made by pytest_llmeval.cases()")
    config.addinivalue_line("markers", f"{OVERLAP_MARKER}: an eval case found in the --llmeval-train-data")
    try:
        state = LLMEvalState(config)
    except SettingsError as exc:
        raise pytest.UsageError(f"llmeval: {exc}") from None
    config.stash[STATE] = state
    state.warn_space_form_paths()


class _EvalModule(pytest.Module):
    """A test module whose import raised bad case data (e.g. a benchmark loader given a broken
    file at module level) reports it as one collection-error line."""

    def collect(self) -> Any:
        try:
            return super().collect()
        except CaseError as exc:
            problem = str(exc)
        raise self.CollectError(f"llmeval: {problem}")


def pytest_pycollect_makemodule(module_path: Any, parent: Any) -> Any:
    if module_path.name == "__init__.py":
        return None
    return _EvalModule.from_parent(parent, path=module_path)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    spec = marker.args[0] if marker.args else marker.kwargs.get("spec")
    if not isinstance(spec, CaseSpec):
        pytest.fail("@pytest.mark.llmeval is set by pytest_llmeval.cases(); use that decorator", pytrace=False)
    state = get_state(metafunc.config)
    try:
        plan = state.plan(metafunc, spec)
        overlaps = state.overlaps(spec, plan)
    except CaseError as exc:
        problem = str(exc)
    else:
        problem = None
    if problem is not None:  # raised outside the except block: no chained traceback in the report
        pytest.fail(f"llmeval: {problem}", pytrace=False)
    if overlaps:
        listing = "; ".join(f"{cid}: {why}" for cid, why in list(overlaps.items())[:5])
        more = f" (and {len(overlaps) - 5} more)" if len(overlaps) > 5 else ""
        warnings.warn(
            LLMEvalOverlapWarning(
                f"{len(overlaps)} of {len(plan.cases)} cases of {metafunc.definition.nodeid} appear in the training data, "
                f"so they do not measure held-out skill: {listing}{more}. Remove them from the eval or the training set; "
                f"they are marked {OVERLAP_MARKER} (deselect with -m 'not {OVERLAP_MARKER}')"
            ),
            stacklevel=1,
        )
    params = [
        pytest.param(c, id=c.id, marks=[getattr(pytest.mark, OVERLAP_MARKER)] if c.id in overlaps else [])
        for c in plan.cases
    ]
    metafunc.parametrize("case", params)


class LLMEvalIgnoredOptionsWarning(pytest.PytestWarning):
    """``--llmeval-*`` model options that an overridden ``llm_settings`` fixture ignores."""


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    value = yield
    if fixturedef.argname == "llm_settings":
        ignored = get_state(request.config).ignored_cli_settings(value)
        if ignored:
            warnings.warn(
                LLMEvalIgnoredOptionsWarning(
                    "llmeval: an llm_settings fixture overrides the plugin's and decides the model settings, so "
                    f"{', '.join(ignored)} given on the command line {'has' if len(ignored) == 1 else 'have'} no effect; "
                    "change the fixture, or let it start from the options: def llm_settings(llm_settings): "
                    "return llm_settings.replace(...)"
                ),
                stacklevel=1,
            )
    return value


def pytest_collection_finish(session: pytest.Session) -> None:
    get_state(session.config).schedule(session.items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if getattr(item, "execution_count", 1) > 1 and eval_item(item) is not None:
        # A rerun (pytest-rerunfailures) of an item whose batch failed computes the batch again.
        get_state(item.config).scheduler.retry(item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if eval_item(item) is None:
        return (yield)
    state = get_state(item.config)
    with collecting_scores() as scores:
        item.stash[SCORES] = scores
        try:
            return (yield)
        finally:
            problem = state.backend.check() if state.backend is not None and hasattr(state.backend, "check") else None
            if problem:  # an error, also when the test failed: the model's state, not its answer, is at fault
                from pytest_llmeval.models import ModelStateError

                raise ModelStateError(problem)  # noqa: B012


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    if eval_item(item) is None:
        return report
    state = get_state(item.config)
    outcome = item_outcome(report, call)
    if outcome is not None:
        reason = _reason(call)
        record = state.record_for(item, outcome, reason, item.stash.get(SCORES, {}), call.duration)
        report.user_properties.append((RECORD_KEY, record.to_json()))
        _label_case(item, report, outcome, reason)
        if outcome == "fail" and not state.run.strict:
            # A wrong answer is data: it passes as far as pytest is concerned (no -x/--maxfail/--sw stop,
            # no rerun), and shows as MISSED with its reason; the record keeps the truth.
            report.outcome = "passed"
    return report


CASE_LABELS = {"pass": "pass", "fail": "missed", "error": "error", "skip": "skipped", "xfail": "xfailed"}
CASE_PROPERTIES = ("llmeval_outcome", "llmeval_reason")


def _label_case(item: pytest.Item, report: pytest.TestReport, outcome: str, reason: str) -> None:
    """Scalar properties of the case for report writers (JUnit XML writes them per testcase):
    ``llmeval_outcome`` (pass, missed, error...) and, for a miss, ``llmeval_reason``. Set on the
    item, so that the later phases' reports (the teardown one, which JUnit XML reads) carry them."""
    labels = [("llmeval_outcome", CASE_LABELS.get(outcome, outcome))]
    if outcome == "fail" and reason:
        labels.append(("llmeval_reason", reason))
    for props in (item.user_properties, report.user_properties):
        props[:] = [p for p in props if p[0] not in CASE_PROPERTIES] + labels


def item_outcome(report: pytest.TestReport, call: pytest.CallInfo[None]) -> str | None:
    """The case's outcome this phase reports, or None when the phase says nothing new."""
    if hasattr(report, "wasxfail"):
        return "xfail" if report.skipped else None if call.when != "call" else "pass"
    if report.skipped:
        return "skip" if call.when != "teardown" else None
    if report.failed:
        if call.when == "call" and call.excinfo is not None and isinstance(call.excinfo.value, AssertionError):
            return "fail"
        return "error"  # setup, teardown, or any exception that is not an assertion
    return "pass" if call.when == "call" else None


def _reason(call: pytest.CallInfo[None]) -> str:
    if call.excinfo is None:
        return ""
    exc = call.excinfo.value
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, AssertionError) or not first else first


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    if report.when != "call" or report.skipped:
        return None
    records = records_from_properties(report.user_properties)
    if not records:
        return None
    if records[-1].outcome == "fail" and not get_state(config).run.strict:
        return "missed", "m", ("MISSED", {"yellow": True})
    if records[-1].outcome == "error" and report.failed:
        return "error", "E", ("ERROR", {"red": True})
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_html(report: pytest.TestReport, data: list[str]) -> None:
    """pytest-html shows a miss as Passed (it is not a test failure); its details say it missed."""
    labels = dict(p for p in report.user_properties if p[0] in CASE_PROPERTIES)
    if report.when == "call" and labels.get("llmeval_outcome") == "missed":
        from html import escape

        why = f": {labels['llmeval_reason']}" if labels.get("llmeval_reason") else ""
        data.insert(0, f"llmeval: MISSED{escape(str(why))} (a wrong answer: counted in the llmeval table, not a test failure)")


class _Collector:
    """Receives reports on the process that reports (serial run or xdist controller)."""

    def __init__(self, state: LLMEvalState) -> None:
        self.state = state
        self.junit = state.config.pluginmanager.has_plugin("junitxml") and bool(state.config.getoption("xmlpath", None))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Iterator[None]:
        # JUnit XML writes the teardown report's user_properties as testcase properties: the
        # record (a teardown error's) would be written whole; the scalar labels say enough.
        kept = report.user_properties
        if report.when == "teardown" and self.junit:
            report.user_properties = [p for p in kept if p[0] != RECORD_KEY]
        try:
            return (yield)
        finally:
            report.user_properties = kept
            self.collect(report)  # after the other plugins, --lf's included, have seen the report

    def collect(self, report: pytest.TestReport) -> None:
        if report.outcome == "rerun":  # pytest-rerunfailures: only the final attempt counts
            return
        state = self.state
        records = records_from_properties(report.user_properties)
        if report.failed:
            state.other_failures += 1
        for record in records:
            state.records.append(record)
            state.eval_session.add(record)
            if record.outcome == "fail":
                _remember_miss_for_lf(state.config, report.nodeid)


def _remember_miss_for_lf(config: pytest.Config, nodeid: str) -> None:
    """A miss passes as far as pytest is concerned; ``--lf`` still re-runs it, as users expect."""
    lf = config.pluginmanager.get_plugin("lfplugin")
    lastfailed = getattr(lf, "lastfailed", None)
    if isinstance(lastfailed, dict):
        lastfailed[nodeid] = True


def pytest_sessionstart(session: pytest.Session) -> None:
    state = get_state(session.config)
    if not state.is_worker:
        session.config.pluginmanager.register(_Collector(state), "llmeval-collector")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = get_state(session.config)
    if state.is_worker or not state.records and not state.plans:
        return
    report = state.eval_session.finish()
    state.final_report = report
    state.stopped = session.shouldfail or session.shouldstop
    session.config.hook.pytest_llmeval_report(config=session.config, report=report)
    _write_history(state)
    _add_junit_properties(session.config, report)
    if report.gate_failed and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _write_history(state: LLMEvalState) -> None:
    path = history_path(state.config, state.options)
    if path is None:
        return
    from pytest_llmeval.results import history

    try:
        history.record_run(path, state.records)
    except Exception as exc:  # history is a convenience: never fail a run over it
        warnings.warn(f"llmeval: could not append to the run history {path}: {exc}", stacklevel=1)


def _add_junit_properties(config: pytest.Config, report: Any) -> None:
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover
        return
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    for name, value in report.junit_properties():
        xml.add_global_property(name, value)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = get_state(config)
    report = state.final_report
    if report is None:
        return
    from pytest_llmeval.results.report import missed_lines

    terminalreporter.section("llmeval", sep="=")
    verbose = config.getoption("verbose", default=0) > 0
    for text, markup in missed_lines(state.records, per_suite=None if verbose else 3):
        terminalreporter.write_line(text, **markup)
    other = _other_problems(terminalreporter, exitstatus, state) if report.suites and not report.gate_failed else ""
    for text, markup in report.lines():
        terminalreporter.write_line(text, **({"yellow": True, "bold": True} if other and markup.get("green") else markup))
    if other:  # the gate line must not read as "all is well" when the run fails
        terminalreporter.write_line(f"llmeval: the gate passed, but the run failed for other reasons: {other}", red=True, bold=True)


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


