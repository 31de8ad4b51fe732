"""The pytest face of pytest-llmeval: options, hooks and fixtures; hooks stay thin.

The session's state lives in :mod:`.state`; what fills it beside it: :mod:`.identity` (which
items are eval cases, suite and sample ids), :mod:`.planning` (suites to requests),
:mod:`.backends` (the model and its caches), :mod:`.records` (records and fingerprints),
:mod:`.run_options` (what the options mean; the table itself is :mod:`pytest_llmeval.options`),
:mod:`.collection` (suites pytest cannot run refused, the cases found in the training data).
The fixtures are in :mod:`.fixtures`, the report in :mod:`.reporting`. Heavy modules (torch,
transformers) are imported only when a model is needed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterator

import pytest

from pytest_llmeval.datasets.casefiles import CaseError
from pytest_llmeval.datasets.spec import CaseSpec
from pytest_llmeval.escaping import terminal
from pytest_llmeval.own_warnings import errors_as_default, warn
from pytest_llmeval.plugin.fixtures import case, completion, conversation, judgement, llm, llm_settings, missing_answer, ranked
from pytest_llmeval.plugin import code_runs, exit_gc, planning, reporting, timeouts
from pytest_llmeval.plugin.collection import OVERLAP_MARKER, check_collected, mark_overlaps, refused_unittest
from pytest_llmeval.plugin.collection import LLMEvalOverlapWarning  # noqa: F401  (warning filters name it here)
from pytest_llmeval.plugin.html_output import write_html
from pytest_llmeval.plugin.identity import (
    MARKER,
    eval_item,
    keyword_variants,
    sample_id,
    samples_of,
    stacking_problem,
    unittest_suites,
)
from pytest_llmeval.plugin.model_groups import SETTINGS
from pytest_llmeval.plugin.options import add_options
from pytest_llmeval.plugin.records import record_for, run_status
from pytest_llmeval.plugin.run_options import ignored_cli_settings, warn_space_form_paths
from pytest_llmeval.plugin.state import LINES_KEY, STATE, LLMEvalState, get_state
from pytest_llmeval.results.records import RECORD_KEY, Outcome, records_from_properties, remember_decoded
from pytest_llmeval.scoring.recording import collecting_scores
from pytest_llmeval.settings import SettingsError

__all__ = ["STATE", "case", "completion", "conversation", "judgement", "llm", "llm_settings", "ranked"]

SCORES = pytest.StashKey[dict[str, float]]()
VERDICTS = pytest.StashKey[list[Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_llmeval.plugin import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(spec): an eval suite made by pytest_llmeval.cases()")
    config.addinivalue_line("markers", f"{OVERLAP_MARKER}: an eval case found in the --llmeval-train-data")
    try:
        state = LLMEvalState(config)
    except SettingsError as exc:
        raise pytest.UsageError(f"llmeval: {terminal(exc)}") from None
    config.stash[STATE] = state
    code_runs.check_sandbox(config, state.options)
    config.add_cleanup(state.models.close)
    warn_space_form_paths(config)
    exit_gc.register()


class _EvalModule(pytest.Module):
    """A test module whose import raised bad case data (e.g. a benchmark loader given a broken
    file at module level) reports it as one collection-error line."""

    def collect(self) -> Any:
        try:
            return super().collect()
        except CaseError as exc:
            problem = str(exc)
        raise self.CollectError(f"llmeval: {terminal(problem)}")


def pytest_pycollect_makemodule(module_path: Any, parent: Any) -> Any:
    if module_path.name == "__init__.py":
        return None
    return _EvalModule.from_parent(parent, path=module_path)


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Iterator[Any]:
    result = yield
    methods = unittest_suites(obj) if result is not None else []
    return refused_unittest(collector, name, methods) if methods else result


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    spec = marker.args[0] if marker.args else marker.kwargs.get("spec")
    if not isinstance(spec, CaseSpec):
        pytest.fail("@pytest.mark.llmeval is set by pytest_llmeval.cases(); use that decorator", pytrace=False)
    stacked = stacking_problem(metafunc)
    if stacked is not None:
        pytest.fail(f"llmeval: {terminal(stacked)}", pytrace=False)
    state = get_state(metafunc.config)
    try:
        with errors_as_default():  # reading the data: a library's warning is shown, never a collection error
            plan = planning.plan(state, metafunc, spec)
    except CaseError as exc:
        problem = str(exc)
    else:
        problem = None
    if problem is not None:  # raised outside the except block: no chained traceback in the report
        pytest.fail(f"llmeval: {terminal(problem)}", pytrace=False)
    repeats = planning.repeats_of(state, spec)
    params = [
        pytest.param(sample, id=sample.id if sample.search else sample_id(sample, repeats))
        for c in plan.items or plan.cases
        for sample in ([c] if c.search else samples_of(c, repeats))
    ]
    metafunc.parametrize("case", params)


class LLMEvalIgnoredOptionsWarning(pytest.PytestWarning):
    """``--llmeval-*`` model options that an overridden ``llm_settings`` fixture ignores."""


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    value = yield
    if fixturedef.argname == "llm_settings":
        state = get_state(request.config)
        ignored = ignored_cli_settings(state.options, state.settings, value)
        if ignored:
            warn(
                LLMEvalIgnoredOptionsWarning(
                    "llmeval: an llm_settings fixture overrides the plugin's and decides the model settings, so "
                    f"{', '.join(ignored)} given on the command line {'has' if len(ignored) == 1 else 'have'} no effect; "
                    "change the fixture, or let it start from the options: def llm_settings(llm_settings): "
                    "return llm_settings.replace(...)"
                ),
                stacklevel=1,
            )
    return value


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    keyword_variants(config, items)  # before pytest's -k: '~typos' selects a perturbation's variants
    check_collected(config, items)
    mark_overlaps(config, items)  # before -m deselects
    result = yield
    shard = get_state(config).options["shard"]  # after every deselection
    if shard is not None:
        from pytest_llmeval.plugin.shard import select

        select(config, items, shard)
    return result


def pytest_collection_finish(session: pytest.Session) -> None:
    state = get_state(session.config)
    with errors_as_default():
        planning.schedule(state, session.items)
    code_runs.install(session.items, state.scheduler)


@pytest.hookimpl(optionalhook=True, wrapper=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> Iterator[Any]:
    """pytest-timeout arms an item's timer: noted, so that a batch runs off that clock."""
    timeouts.note_timer(item, settings)
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    state = get_state(item.config)
    state.current_item = item.nodeid
    state.groups.before_setup(item)  # the llm fixture of this item's folder
    if getattr(item, "execution_count", 1) > 1 and eval_item(item) is not None:
        # A rerun (pytest-rerunfailures) of an item whose batch failed computes the batch again.
        state.scheduler.retry(item.nodeid)
    found = eval_item(item)
    if found is not None and found[1].search:
        from pytest_llmeval.plugin.search import fixture_problem

        problem = fixture_problem(item)  # before the fixtures are set up for the search item's '~search' case
        if problem is not None:
            pytest.fail(f"llmeval: {problem}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if eval_item(item) is None:
        return (yield)
    state = get_state(item.config)
    with collecting_scores() as scores, code_runs.recording() as verdicts:
        item.stash[SCORES] = scores
        item.stash[VERDICTS] = verdicts
        try:
            return (yield)
        finally:
            backend = state.models.loaded(item.stash.get(SETTINGS, None))
            problem = backend.check() if backend is not None and hasattr(backend, "check") else None
            if problem:  # an error, also when the test failed: the model's state, not its answer, is at fault
                from pytest_llmeval.models import ModelStateError

                raise ModelStateError(problem)  # noqa: B012


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """The search item (``search=``) runs the suite's search in place of one call of the test; a
    reasoning model's case without an answer is a miss that says why."""
    found = eval_item(pyfuncitem)
    if found is not None and found[1].search:
        return _run_search(pyfuncitem, found[0])
    problem = missing_answer(pyfuncitem)
    if problem is None:
        return None
    from pytest_llmeval.scoring.failures import EvalFailure

    __tracebackhide__ = True
    raise EvalFailure(problem)  # a miss that says why, never a parse of the thinking


def _run_search(pyfuncitem: pytest.Function, suite: str) -> bool:
    from pytest_llmeval.plugin.search import SearchFailed, run_search

    try:
        run_search(pyfuncitem, suite, get_state(pyfuncitem.config).plans[suite])
    except SearchFailed as exc:
        problem = str(exc)
    else:
        return True
    pytest.fail(f"llmeval: {problem}", pytrace=False)  # an error of the search item, one line


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    state = get_state(item.config)
    shortcut = reporting.short_miss_repr(item, call, state.run.strict) if eval_item(item) is not None else False
    try:
        report = yield
    finally:
        if shortcut:
            del item.repr_failure  # the item's own method again
    if state.worker_lines:  # what this worker said (a model load, a batched run) goes to the controller
        report.user_properties = [*report.user_properties, (LINES_KEY, list(state.worker_lines))]  # not the item's list
        state.worker_lines.clear()
    if eval_item(item) is not None:
        _record(state, item, call, report)
    return reporting.redacted(report)  # no known secret reaches the terminal or JUnit XML, in any test's report


def _record(state: Any, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    outcome = reporting.item_outcome(report, call)
    if outcome is not None:
        reason = "" if outcome is Outcome.PASS else reporting.failure_reason(call)
        expected = getattr(call.excinfo.value, "expected", None) if call.excinfo is not None else None
        if expected is not None and not isinstance(expected, (str, int, float, bool)):
            expected = str(expected)
        record = record_for(state, item, outcome, reason, item.stash.get(SCORES, {}), call.duration, expected)
        if item.stash.get(VERDICTS, None):
            record = replace(record, code=code_runs.verdicts_json(item.stash[VERDICTS]))
        data = record.to_json()
        remember_decoded(data, record)  # the hooks that read the report's record take this one, not a decoded copy
        report.user_properties.append((RECORD_KEY, data))
        plan = state.plans.get(record.suite)
        if plan is not None and plan.spec.search is not None and record.perturbation is None and record.search is None:
            from pytest_llmeval.plugin.search import remember_original

            remember_original(item.config, record)
        reporting.label_case(item, report, outcome, reason)
        if outcome is Outcome.MISS and not state.run.strict:
            # A wrong answer is data: it passes as far as pytest is concerned (no -x/--maxfail/--sw stop,
            # no rerun), and shows as MISSED with its reason; the record keeps the truth.
            report.outcome = "passed"


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
def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    """pytest-html's Result reads Missed for a miss and Error for an error, as the terminal says."""
    cell = reporting.html_result_cell(report)
    if cell is not None and cells:
        cells[0] = cell


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_html(report: pytest.TestReport, data: list[str]) -> None:
    """A miss's details start with its reason."""
    line = reporting.html_miss_line(report)
    if line:
        data.insert(0, line)


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session) -> None:
    """The run's eval counts, misses included, in pytest-html's summary."""
    line = reporting.html_summary_line(get_state(session.config))
    if line:
        prefix.append(line)


def pytest_sessionstart(session: pytest.Session) -> None:
    state = get_state(session.config)
    code_runs.start_session(session.config, state.options)
    if not state.is_worker:
        session.config.pluginmanager.register(reporting.Collector(state), "llmeval-collector")


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Iterator[Any]:
    state = get_state(session.config)
    if not state.is_worker and state.settings.model and session.config.getoption("dist", "no") != "no":
        window = state.options["window"] or 64
        state.say(
            f"llmeval: each xdist worker computes its eval outputs {window} items at a time (--llmeval-window=); "
            "its model load and batched runs show here, with its name, once the test that started them reports"
        )
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    with errors_as_default():  # a warning at the end of the session never stops the results being written
        _finish(session, exitstatus)


def _finish(session: pytest.Session, exitstatus: int) -> None:
    state = get_state(session.config)
    code_runs.end_session()
    if state.is_worker or not state.records and not state.plans:
        return
    state.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    state.stopped = session.shouldfail or session.shouldstop
    report = state.eval_session.finish(run_status(state, session.items))
    state.final_report = report
    session.config.hook.pytest_llmeval_report(config=session.config, report=report)
    reporting.write_history(state)
    reporting.add_junit_properties(session.config, report)
    html_problem = write_html(state, report)
    if html_problem:
        state.say(html_problem)
    if (report.gate_failed or html_problem) and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    with errors_as_default():
        reporting.write_summary(terminalreporter, exitstatus, get_state(config))
