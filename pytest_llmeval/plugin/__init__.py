"""The pytest plugin: options, hooks and fixtures. Hooks stay thin and call :class:`LLMEvalState`.

Heavy modules (torch, transformers) are imported only when a model is actually needed.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest

from pytest_llmeval.datasets.suite import CaseError, CaseSpec, Request, SuitePlan, build_request, fewshot_pairs_for, fewshot_prefix_for, plan_suite, render_prompt
from pytest_llmeval.scoring.recording import collecting_scores
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.results.records import RECORD_KEY, CaseRecord, records_from_properties
from pytest_llmeval.settings import GenerationSettings, LLMSettings, RunOptions, SettingsError, parse_bool, settings_from_options

MARKER = "llmeval"

# name, help, kind ("str" | "int" | "float" | "flag"), ini type
_OPTIONS: list[tuple[str, str, str]] = [
    ("model", "model: a local HF directory, a cached hub id, a .gguf file, or pkg:PACKAGE/FILE", "str"),
    ("dtype", "weights dtype: auto (float32 on CPU, bfloat16/float16 on CUDA), float32, float16, bfloat16", "str"),
    ("device", "device: auto (cuda when present, else cpu), cpu, cuda, cuda:N", "str"),
    ("batch-size", "batch size for generation and scoring: a number or auto", "str"),
    ("seed", "seed for python, numpy and torch (default 1234)", "int"),
    ("max-new-tokens", "most tokens generated per completion (default 64)", "int"),
    ("stop", "stop string ending a completion (repeat the option for several)", "append"),
    ("do-sample", "sample instead of greedy decoding (then temperature/top_p apply)", "flag"),
    ("temperature", "sampling temperature (only with do_sample)", "float"),
    ("top-p", "nucleus sampling top_p (only with do_sample)", "float"),
    ("max-length", "longest context in tokens (default: the model's)", "int"),
    ("window", "most items one batched run covers (default: all pending; 64 on an xdist worker)", "int"),
    ("limit", "run only the first N cases of each suite (for debugging; blocks baseline updates)", "int"),
    ("baseline", "baseline JSON file to compare suites against", "str"),
    ("update-baseline", "record the suites that ran into the baseline file", "flag"),
    ("force", "update the baseline even from a narrowed run or one with errors", "flag"),
    ("strict", "fail the session on any wrong answer, not only on gates", "flag"),
    ("tolerance", "drop in pass rate (0-1) tolerated before a regression (default 0.02)", "float"),
    ("alpha", "significance level of the paired McNemar test (default 0.05)", "float"),
    ("min-pass-rate", "default minimum pass rate (0-1) for every suite", "float"),
    ("output", "directory for results.json and samples.jsonl", "str"),
    ("markdown", "write a Markdown summary (for pull requests) to this file", "str"),
    ("train-data", "training data (JSONL or text) to check eval cases against for overlap", "str"),
    ("history", "SQLite run history file (default .llmeval/history.sqlite; 'off' to disable)", "str"),
]


def _dest(name: str) -> str:
    return "llmeval_" + name.replace("-", "_")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmeval", "LLM evaluations (pytest-llmeval)")
    for name, help_text, kind in _OPTIONS:
        flag = f"--llmeval-{name}"
        if kind == "flag":
            group.addoption(flag, action="store_true", default=None, dest=_dest(name), help=help_text)
            parser.addini(_dest(name), help_text, type="bool", default=False)
        elif kind == "append":
            group.addoption(flag, action="append", default=None, dest=_dest(name), metavar="TEXT", help=help_text)
            parser.addini(_dest(name), help_text, type="linelist", default=[])
        else:
            group.addoption(flag, action="store", default=None, dest=_dest(name), metavar=name.upper().replace("-", "_"), help=help_text)
            parser.addini(_dest(name), help_text, default=None)


def _option(config: pytest.Config, name: str) -> Any:
    """A CLI value when given, else the ini value."""
    dest = _dest(name)
    value = config.getoption(dest, default=None)
    if value is None or value == []:
        value = config.getini(dest)
    if value == [] or value == "":
        return None
    return value


def _option_base(config: pytest.Config, name: str) -> Path:
    """What a relative path in option ``name`` is relative to: the invocation directory when
    given on the command line, the ini file's directory when set there (as pytest does)."""
    if config.getoption(_dest(name), default=None) is not None:
        return config.invocation_params.dir
    return config.inipath.parent if config.inipath is not None else config.rootpath


def _option_path(config: pytest.Config, name: str) -> Path | None:
    value = _option(config, name)
    if value is None:
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else _option_base(config, name) / path


# ----------------------------------------------------------------------------- state


class LLMEvalState:
    """Everything the plugin keeps for one session (in ``config.stash``)."""

    def __init__(self, config: pytest.Config) -> None:
        from pytest_llmeval.models.scheduler import BatchScheduler

        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        self.settings = settings_from_options({_dest(n): _option(config, n) for n, _, _ in _OPTIONS})
        self.run = _run_options(config)
        window = _option(config, "window")
        self.scheduler = BatchScheduler(
            window=int(window) if window else (64 if self.is_worker else None),
            same_suite=self.is_worker,
            progress=None if self.is_worker else self._progress,
        )
        self.plans: dict[str, SuitePlan] = {}
        self.requests: dict[tuple[str, str], Request] = {}
        self.backend: Any = None
        self.live_backend: Any = None
        self.contamination: Any = None
        self.load_error: BaseException | None = None
        self.records: list[CaseRecord] = []
        self.other_failures = 0
        """Failed reports that are not wrong answers (errors, plain tests): they keep the exit status."""
        self.eval_session: Any = None
        self.final_report: Any = None
        if not self.is_worker:
            from pytest_llmeval.results.session import EvalSession

            self.eval_session = EvalSession(self.run)

    # model -------------------------------------------------------------------

    def get_backend(self, settings: LLMSettings) -> Any:
        if self.live_backend is not None:
            self.backend = self.live_backend
            return self.backend
        if self.backend is not None:
            return self.backend
        if self.load_error is not None:
            raise self.load_error
        from pytest_llmeval.models import ModelLoadError
        from pytest_llmeval.models.hf import HFBackend

        started = time.perf_counter()
        try:
            self.backend = HFBackend.load(settings, rootdir=_option_base(self.config, "model"))
        except ModelLoadError as exc:
            self.load_error = exc
            raise
        self._say(f"llmeval: loaded {settings.model} on {self.backend.device} ({self.backend.dtype}) in {time.perf_counter() - started:.1f}s")
        return self.backend

    # collection --------------------------------------------------------------

    def plan(self, metafunc: pytest.Metafunc, spec: CaseSpec) -> SuitePlan:
        suite = metafunc.definition.nodeid
        plan = plan_suite(spec, base_dir=metafunc.definition.path.parent, limit=self.run.limit)
        kind = "generate" if "completion" in metafunc.fixturenames else "rank" if "ranked" in metafunc.fixturenames else None
        if kind is not None:
            for case in plan.cases:
                if spec.num_fewshot and spec.chat:  # examples as earlier chat turns (lm-eval's default)
                    request = build_request(spec, case, kind, fewshot=fewshot_pairs_for(spec, plan, case))
                elif spec.num_fewshot:
                    request = build_request(spec, case, kind, fewshot_prefix_for(spec, plan, case))
                else:
                    request = build_request(spec, case, kind)
                self.requests[(suite, case.id)] = request
        self.plans[suite] = plan
        return plan

    def overlaps(self, spec: CaseSpec, plan: SuitePlan) -> dict[str, str]:
        """Case id -> why it looks trained on, when ``--llmeval-train-data`` is given."""
        path = _option_path(self.config, "train-data")
        if path is None:
            return {}
        from pytest_llmeval.datasets.heldout import ContaminationIndex, case_answer

        if self.contamination is None:
            try:
                self.contamination = ContaminationIndex.from_paths([path])
            except (OSError, ValueError) as exc:
                raise CaseError(f"--llmeval-train-data {path}: {exc}") from None
        found = {}
        for case in plan.cases:
            prompt = render_prompt(spec.prompt, case) or ""
            answer = case_answer(case.fields, target=spec.target if isinstance(spec.target, str) else None, choices=spec.choices)
            finding = self.contamination.check(prompt, answer)
            if finding is not None:
                found[case.id] = finding.describe()
        return found

    def schedule(self, items: list[pytest.Item]) -> None:
        from pytest_llmeval.models.scheduler import Entry

        entries = []
        for item in items:
            found = _eval_item(item)
            if found is None:
                continue
            suite, case = found
            request = self.requests.get((suite, case.id))
            if request is not None:
                entries.append(Entry(key=item.nodeid, suite=suite, request=request))
        self.scheduler.plan(entries)

    # results -----------------------------------------------------------------

    def record_for(self, item: pytest.Item, outcome: str, reason: str, scores: Mapping[str, float], duration: float) -> CaseRecord:
        suite, case = _eval_item(item)  # type: ignore[misc]
        plan = self.plans.get(suite)
        spec = plan.spec if plan else None
        request = self.requests.get((suite, case.id))
        result = self.scheduler.peek(item.nodeid)
        fingerprint: dict[str, Any] = {}
        backend = self.backend
        if backend is not None and request is not None:
            fingerprint.update(backend.fingerprint)
        if plan is not None:
            fingerprint["prompt"] = plan.prompt
            fingerprint["dataset"] = plan.dataset
            fingerprint["num_fewshot"] = plan.spec.num_fewshot
        if request is not None:
            if request.kind == "generate":
                gen = (backend.settings.generation if backend is not None else self.settings.generation)
                fingerprint["generation"] = gen.merged(max_new_tokens=request.max_new_tokens, stop=request.stop).to_json()
            else:
                fingerprint["generation"] = {"loglikelihood": True, "target_delimiter": request.target_delimiter}
        record = CaseRecord(
            suite=suite,
            case_id=case.id,
            outcome=outcome,  # type: ignore[arg-type]
            reason=reason,
            scores=dict(scores),
            markers=tuple(sorted({m.name for m in item.iter_markers()} - {MARKER, "parametrize", "usefixtures"})),
            min_pass_rate=spec.min_pass_rate if spec else None,
            fingerprint=fingerprint,
            prompt=result.prompt if isinstance(result, Completion) else result.context if isinstance(result, Ranked) else None,
            completion=result.text if isinstance(result, Completion) else None,
            choices=result.choices if isinstance(result, Ranked) else None,
            loglikelihoods=result.loglikelihoods if isinstance(result, Ranked) else None,
            latency_s=getattr(result, "latency_s", None),
            tokens_in=getattr(result, "tokens_in", None),
            tokens_out=getattr(result, "tokens_out", None),
            limited=bool(plan.limited) if plan else False,
            duration_s=duration,
        )
        self.scheduler.discard(item.nodeid)
        return record

    # output ------------------------------------------------------------------

    def _say(self, line: str) -> None:
        if self.is_worker:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        ctx = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
        with ctx:
            reporter.write_line(line)

    def _progress(self, kind: str, total: int) -> Any:
        return _TerminalProgress(self, "completions" if kind == "generate" else "rankings", total)


class _TerminalProgress:
    """A progress line for a batched run, drawn on the real terminal while output is captured."""

    def __init__(self, state: LLMEvalState, what: str, total: int) -> None:
        self.state = state
        self.what = what
        self.total = total
        self.done = 0
        self.started = time.perf_counter()
        self.last = self.started
        self.tty = sys.__stderr__ is not None and sys.__stderr__.isatty()
        self.state._say(f"\nllmeval: {total} {what} in batches of up to {state.backend.batch_size() if state.backend else '?'}")

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self.tty and sys.__stderr__ is not None:
            sys.__stderr__.write(f"\r  {self.done}/{self.total} {self.what} {now - self.started:.1f}s")
            sys.__stderr__.flush()
        elif now - self.last > 15:
            self.last = now
            self.state._say(f"  {self.done}/{self.total} {self.what} {now - self.started:.1f}s")

    def close(self, seconds: float) -> None:
        if self.tty and sys.__stderr__ is not None:
            sys.__stderr__.write("\r" + " " * 60 + "\r")
        self.state._say(f"llmeval: {self.done}/{self.total} {self.what} in {seconds:.1f}s")


STATE = pytest.StashKey[LLMEvalState]()
CASE = pytest.StashKey[tuple[str, Any]]()
SCORES = pytest.StashKey[dict[str, float]]()


def _state(config: pytest.Config) -> LLMEvalState:
    return config.stash[STATE]


def _eval_item(item: pytest.Item) -> tuple[str, Any] | None:
    """(suite, case) of an eval item, or None for a plain test."""
    found = item.stash.get(CASE, None)
    if found is not None:
        return found
    callspec = getattr(item, "callspec", None)
    if callspec is None or item.get_closest_marker(MARKER) is None or "case" not in callspec.params:
        return None
    suite = item.nodeid.split("[", 1)[0]
    found = (suite, callspec.params["case"])
    item.stash[CASE] = found
    return found


def _run_options(config: pytest.Config) -> RunOptions:
    def num(name: str, cast: Any) -> Any:
        value = _option(config, name)
        if value is None:
            return None
        try:
            return cast(value)
        except (TypeError, ValueError):
            raise pytest.UsageError(f"--llmeval-{name}: expected a number, got {value!r}") from None

    def flag(name: str) -> bool:
        value = _option(config, name)
        try:
            return False if value is None else parse_bool(value)
        except SettingsError as exc:
            raise pytest.UsageError(f"llmeval_{name.replace('-', '_')}: {exc}") from None

    def path(name: str) -> Path | None:
        return _option_path(config, name)

    limit = num("limit", int)
    if limit is not None and limit < 1:
        raise pytest.UsageError("--llmeval-limit must be at least 1")
    narrowed: list[str] = []
    if config.getoption("keyword", default=""):
        narrowed.append("-k")
    if config.getoption("markexpr", default=""):
        narrowed.append("-m")
    if limit is not None:
        narrowed.append("--llmeval-limit")
    if config.getoption("lf", default=False):
        narrowed.append("--lf")
    if any("[" in str(arg) for arg in config.args):
        narrowed.append("a node id with a case id")
    tolerance = num("tolerance", float)
    alpha = num("alpha", float)
    return RunOptions(
        rootdir=config.rootpath,
        baseline=path("baseline"),
        update_baseline=flag("update-baseline"),
        force=flag("force"),
        strict=flag("strict"),
        tolerance=0.02 if tolerance is None else tolerance,
        alpha=0.05 if alpha is None else alpha,
        min_pass_rate=num("min-pass-rate", float),
        output_dir=path("output"),
        markdown=path("markdown"),
        limit=limit,
        narrowed_by=tuple(narrowed),
        invocation=tuple(config.invocation_params.args),
    )


# ----------------------------------------------------------------------------- hooks


class LLMEvalOverlapWarning(UserWarning):
    """Eval cases that appear in the training data (``--llmeval-train-data``)."""


OVERLAP_MARKER = "llmeval_train_overlap"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(spec): an eval suite made by pytest_llmeval.cases()")
    config.addinivalue_line("markers", f"{OVERLAP_MARKER}: an eval case found in the --llmeval-train-data")
    try:
        config.stash[STATE] = LLMEvalState(config)
    except SettingsError as exc:
        raise pytest.UsageError(f"llmeval: {exc}") from None


def use_backend(config: pytest.Config, backend: Any) -> None:
    """Make the ``llm`` fixture use ``backend`` (a model already in memory) instead of loading one."""
    _state(config).live_backend = backend


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    spec = marker.args[0] if marker.args else marker.kwargs.get("spec")
    if not isinstance(spec, CaseSpec):
        pytest.fail("@pytest.mark.llmeval is set by pytest_llmeval.cases(); use that decorator", pytrace=False)
    state = _state(metafunc.config)
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


def pytest_collection_finish(session: pytest.Session) -> None:
    _state(session.config).schedule(session.items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if _eval_item(item) is None:
        return (yield)
    state = _state(item.config)
    with collecting_scores() as scores:
        item.stash[SCORES] = scores
        try:
            result = yield
        finally:
            backend = state.backend
            left_training = backend is not None and getattr(backend.model, "training", False)
            if left_training:
                backend.model.eval()
        if left_training:
            from pytest_llmeval.models.hf import ModelStateError

            raise ModelStateError(
                "this test left the model in training mode; the plugin put it back in eval mode. "
                "Do not call model.train() in an eval (or restore model.eval() before returning)"
            )
        return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    if _eval_item(item) is None:
        return report
    outcome = reason = None
    if call.when == "setup" and report.failed:
        outcome, reason = "error", _reason(call)
    elif call.when == "call":
        if report.passed:
            outcome, reason = "pass", ""
        elif report.failed:
            exc = call.excinfo.value if call.excinfo is not None else None
            outcome = "fail" if isinstance(exc, AssertionError) else "error"
            reason = _reason(call)
    if outcome is not None:
        record = _state(item.config).record_for(item, outcome, reason or "", item.stash.get(SCORES, {}), call.duration)
        report.user_properties.append((RECORD_KEY, record.to_json()))
    return report


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
    if report.when != "call" or not report.failed:
        return None
    records = records_from_properties(report.user_properties)
    if not records:
        return None
    if records[0].outcome == "fail" and not _state(config).run.strict:
        return "missed", "m", ("MISSED", {"yellow": True})
    if records[0].outcome == "error":
        return "error", "E", ("ERROR", {"red": True})
    return None


class _Collector:
    """Receives reports on the process that reports (serial run or xdist controller)."""

    def __init__(self, state: LLMEvalState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = self.state
        records = records_from_properties(report.user_properties)
        is_miss = bool(records) and records[0].outcome == "fail" and report.when == "call"
        if report.failed and not is_miss:
            state.other_failures += 1
        for record in records:
            state.records.append(record)
            state.eval_session.add(record)


def pytest_sessionstart(session: pytest.Session) -> None:
    state = _state(session.config)
    if not state.is_worker:
        session.config.pluginmanager.register(_Collector(state), "llmeval-collector")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state(session.config)
    if state.is_worker or not state.records and not state.plans:
        return
    report = state.eval_session.finish()
    state.final_report = report
    _write_history(state)
    _add_junit_properties(session.config, report)
    if session.exitstatus == pytest.ExitCode.TESTS_FAILED and state.other_failures == 0 and not state.run.strict:
        session.exitstatus = pytest.ExitCode.OK  # wrong answers are data points, not a broken build
    if report.gate_failed and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _write_history(state: LLMEvalState) -> None:
    value = _option(state.config, "history")
    if value is not None and str(value).lower() in {"off", "none", "false", "0"}:
        return
    try:
        from pytest_llmeval.results import history
    except ImportError:
        return
    path = _option_path(state.config, "history") or state.config.rootpath / ".llmeval" / "history.sqlite"
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
    state = _state(config)
    report = state.final_report
    if report is None:
        return
    from pytest_llmeval.results.report import missed_lines

    terminalreporter.section("llmeval", sep="=")
    verbose = config.getoption("verbose", default=0) > 0
    for text, markup in missed_lines(state.records, per_suite=None if verbose else 3):
        terminalreporter.write_line(text, **markup)
    for text, markup in report.lines():
        terminalreporter.write_line(text, **markup)


# ----------------------------------------------------------------------------- fixtures


def _coerce_settings(value: Any) -> LLMSettings:
    if isinstance(value, LLMSettings):
        return value
    if isinstance(value, Mapping):
        data = dict(value)
        gen = data.pop("generation", None)
        if isinstance(gen, Mapping):
            data["generation"] = GenerationSettings(**gen)
        try:
            return LLMSettings(**data)
        except TypeError as exc:
            raise SettingsError(f"llm_settings: {exc}") from None
    raise SettingsError(f"the llm_settings fixture must return LLMSettings or a dict, got {type(value).__name__}")


@pytest.fixture(scope="session")
def llm_settings(pytestconfig: pytest.Config) -> LLMSettings:
    """The model settings from ini keys and ``--llmeval-*`` options; override it in conftest.py."""
    return _state(pytestconfig).settings


@pytest.fixture(scope="session")
def llm(pytestconfig: pytest.Config, llm_settings: Any) -> Any:
    """The session model: loaded once, in eval mode, run under ``torch.inference_mode()``."""
    from pytest_llmeval.models import ModelLoadError

    try:
        settings = _coerce_settings(llm_settings)
        return _state(pytestconfig).get_backend(settings)
    except (ModelLoadError, SettingsError) as exc:
        problem = str(exc)
    pytest.fail(f"llmeval: {problem}", pytrace=False)  # outside the except block: one clean line


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Any:
    """The current eval case; only in tests decorated with ``pytest_llmeval.cases``."""
    pytest.fail("the 'case' fixture comes from @pytest_llmeval.cases(...): decorate the test with it", pytrace=False)


def _scheduled(request: pytest.FixtureRequest, llm: Any) -> Any:
    state = _state(request.config)
    key = request.node.nodeid
    planned = state.scheduler.request_of(key)
    if planned is None:
        pytest.fail(
            f"llmeval: {request.node.name} asks for '{request.fixturename}' but is not an eval case with a prompt; "
            "decorate it with @pytest_llmeval.cases(source, prompt=...)",
            pytrace=False,
        )
    return state.scheduler.result(key, llm)


@pytest.fixture
def completion(request: pytest.FixtureRequest, llm: Any, case: Any) -> Any:
    """The generated text of this case (a ``str`` with tokens, latency and finish reason)."""
    return _scheduled(request, llm)


@pytest.fixture
def ranked(request: pytest.FixtureRequest, llm: Any, case: Any) -> Any:
    """Per-choice loglikelihoods of this multiple-choice case."""
    return _scheduled(request, llm)
