"""What the plugin keeps for one session (in ``config.stash``): settings, plans, the backend."""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import pytest

from pytest_llmeval.datasets.suite import (
    CaseError,
    CaseSpec,
    Request,
    SuitePlan,
    plan_suite,
    render_prompt,
    request_for,
)
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.plugin.options import OPTIONS, VALUE_FLAGS, Values, read_options, setting_of, settings_from, space_form_paths
from pytest_llmeval.plugin.progress import TerminalProgress
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.gate import GateOptions, RunStatus
from pytest_llmeval.settings import LLMSettings

MARKER = "llmeval"
CASE = pytest.StashKey[tuple[str, Any]]()


def suite_root(config: pytest.Config) -> Path:
    """What suite ids are relative to: the ini file's folder (else the rootdir), so that
    ``--rootdir`` or an argument that moves the rootdir does not rename every suite."""
    return config.inipath.parent if config.inipath is not None else config.rootpath


def suite_id(config: pytest.Config, path: Path, nodeid: str) -> str:
    """A suite's id: its file relative to :func:`suite_root`, then the test's name (no case id)."""
    rel = Path(os.path.relpath(path, suite_root(config))).as_posix()
    name = nodeid.split("::", 1)[1] if "::" in nodeid else nodeid
    return f"{rel}::{name.split('[', 1)[0]}"


def samples_of(case: Any, repeats: int) -> list[Any]:
    """The items of one case: the case itself, or one copy per sample (``case.repeat`` 0..k-1)."""
    import dataclasses

    return [case] if repeats <= 1 else [dataclasses.replace(case, repeat=r) for r in range(repeats)]


def sample_id(case: Any, repeats: int) -> str:
    """An item's id: the case id, with ``:rN`` for sample N when the suite samples repeatedly
    (``add-001:r3``: ``-k`` and ``--lf`` select it like any id)."""
    return case.id if repeats <= 1 else f"{case.id}:r{case.repeat}"


def eval_item(item: pytest.Item) -> tuple[str, Any] | None:
    """(suite, case) of an eval item, or None for a plain test."""
    found = item.stash.get(CASE, None)
    if found is not None:
        return found
    callspec = getattr(item, "callspec", None)
    if callspec is None or item.get_closest_marker(MARKER) is None or "case" not in callspec.params:
        return None
    found = (suite_id(item.config, item.path, item.nodeid), callspec.params["case"])
    item.stash[CASE] = found
    return found


class LLMEvalState:
    """Everything the plugin keeps for one session."""

    def __init__(self, config: pytest.Config) -> None:
        from pytest_llmeval.models.scheduler import BatchScheduler

        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        self.options: Values = read_options(config)
        self.settings = settings_from(self.options.values)
        self.run = run_options(config, self.options)
        window = self.options["window"]
        self.scheduler = BatchScheduler(
            window=window or (64 if self.is_worker else None),
            same_suite=self.is_worker,
            progress=None if self.is_worker else self._progress,
        )
        self.plans: dict[str, SuitePlan] = {}
        self.requests: dict[tuple[str, str], Request] = {}
        self.backend: Any = None
        self._caches: dict[LLMSettings, Any] = {}
        self._cache_store: Any = None
        self.judging: Any = None
        """The session's judges (:class:`pytest_llmeval.plugin.judging.JudgeSession`), once a suite has one."""
        self.contamination: Any = None
        self.load_error: BaseException | None = None
        self.records: list[CaseRecord] = []
        self.eval_session: Any = None
        self.final_report: Any = None
        self.stopped: str | bool = False
        """Why pytest stopped the session early (-x, --maxfail, a collection error), if it did."""
        self.interrupted = False
        if not self.is_worker:
            from pytest_llmeval import __version__
            from pytest_llmeval.results.session import EvalSession

            self.eval_session = EvalSession(self.run, version=__version__)

    # model -------------------------------------------------------------------

    def get_backend(self, settings: LLMSettings) -> Any:
        """The session's backend: a plugin's (``pytest_llmeval_make_backend``) or ``llmeval_model``'s."""
        if self.backend is not None:
            return self.backend
        if self.load_error is not None:
            raise self.load_error
        from pytest_llmeval.models import ModelLoadError, load_backend

        started = time.perf_counter()
        try:
            backend = self.config.hook.pytest_llmeval_make_backend(config=self.config, settings=settings)
            if backend is None:
                backend = load_backend(settings, base_dir=self.options.base["model"])
        except ModelLoadError as exc:
            self.load_error = ModelLoadError(f"{exc}{self._where_settings_came_from(settings)}")
            raise self.load_error from None
        self.backend = backend
        cache = self.completion_cache(settings)
        if cache is not None:
            cache.remember(backend)
        if settings.model:
            self.say(f"llmeval: loaded {backend.describe()} in {time.perf_counter() - started:.1f}s")
        return backend

    def completion_cache(self, settings: LLMSettings, base_dir: Path | None = None) -> Any:
        """The completion cache of the backend ``settings`` name (a ``CompletionCache``), or None:
        turned off, a backend from the ``pytest_llmeval_make_backend`` hook (which may wrap a live
        model), or one that cannot say what it is without loading."""
        if settings in self._caches:
            return self._caches[settings]
        cache = None
        mode = self.options["cache"] or "on"
        if mode != "off" and not self.config.hook.pytest_llmeval_make_backend.get_hookimpls():
            from pytest_llmeval.models import backend_identity
            from pytest_llmeval.models.cache import CacheStore, CompletionCache

            identity = backend_identity(settings, base_dir=base_dir or self.options.base["model"])
            if identity is not None:
                if self._cache_store is None:
                    self._cache_store = CacheStore(cache_path(self.config, self.options), readonly=mode == "readonly")
                cache = CompletionCache(self._cache_store, identity, settings, mode)
        self._caches[settings] = cache
        return cache

    def _cache_served(self) -> Any:
        """The completion cache that served outputs without a loaded backend, if one did."""
        return next((c for c in self._caches.values() if c is not None and c.hits and c.info() is not None), None)

    def _where_settings_came_from(self, settings: LLMSettings) -> str:
        if settings.model:
            return ""
        ini = self.config.inipath
        return f" (pytest chose rootdir {self.config.rootpath} and ini file {ini or 'none'})"

    # collection --------------------------------------------------------------

    def plan(self, metafunc: pytest.Metafunc, spec: CaseSpec) -> SuitePlan:
        suite = suite_id(self.config, metafunc.definition.path, metafunc.definition.nodeid)
        plan = plan_suite(spec, base_dir=metafunc.definition.path.parent, limit=self.run.limit)
        kind = "generate" if "completion" in metafunc.fixturenames else "rank" if "ranked" in metafunc.fixturenames else None
        if kind is not None:
            from pytest_llmeval.models.sampling import sample_seed

            seed = self.settings.seed
            for case in plan.cases:
                for r in range(self.repeats_of(spec) if kind == "generate" else 1):
                    request = request_for(spec, plan, case, kind, repeat=r, seed=sample_seed(seed, case.id, r))
                    self.requests[(suite, case.id, r)] = request
        if spec.judge is not None:
            from pytest_llmeval.plugin.judging import check_judged_plan, judging

            labels_file = check_judged_plan(spec, plan, metafunc.definition.path.parent)
            if labels_file is not None:
                judging(self).labels_files[suite] = labels_file
        self.plans[suite] = plan
        return plan

    def repeats_of(self, spec: CaseSpec) -> int:
        """Samples per case of a suite: ``le.cases(repeats=)``, else ``llmeval_repeats``, else 1."""
        return spec.repeats or self.options["repeats"] or 1

    def overlaps(self, spec: CaseSpec, plan: SuitePlan) -> dict[str, str]:
        """Case id -> why it looks trained on, when ``--llmeval-train-data`` is given."""
        path = self.options.path("train-data")
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
            answer = case_answer(case.fields, target=spec.target, choices=spec.choices)
            finding = self.contamination.check(prompt, answer)
            if finding is not None:
                found[case.id] = finding.describe()
        return found

    def schedule(self, items: list[pytest.Item]) -> None:
        from pytest_llmeval.models.scheduler import Entry

        entries = []
        for item in items:
            found = eval_item(item)
            if found is None:
                continue
            suite, case = found
            request = self.requests.get((suite, case.id, case.repeat)) or self.requests.get((suite, case.id, 0))
            if request is not None:
                entries.append(Entry(key=item.nodeid, suite=suite, request=request))
        self.scheduler.plan(entries)
        if any(plan.spec.judge is not None for plan in self.plans.values()):
            from pytest_llmeval.plugin.judging import judging

            judging(self).schedule(items, eval_item)

    # results -----------------------------------------------------------------

    def fingerprint_of(self, suite: str, request: Request | None) -> dict[str, Any]:
        """What this suite's outcomes depend on: the backend's (with the versions that compute
        it, this plugin's included), the prompt's and the data's."""
        fingerprint: dict[str, Any] = {}
        backend = self.backend
        cached = self._cache_served() if backend is None else None
        model = backend.fingerprint if backend is not None else cached.fingerprint if cached is not None else None
        if model is not None and request is not None:
            from pytest_llmeval import __version__

            fingerprint.update(model)
            versions = fingerprint.get("versions")
            fingerprint["versions"] = {**(versions if isinstance(versions, Mapping) else {}), "pytest-llmeval": __version__}
        plan = self.plans.get(suite)
        if plan is not None:
            fingerprint["prompt"] = plan.prompt
            fingerprint["dataset"] = plan.dataset
            fingerprint["num_fewshot"] = plan.spec.num_fewshot
            if plan.spec.judge is not None:
                from pytest_llmeval.plugin.judging import judging

                fingerprint["judge"] = judging(self).fingerprint(plan.spec.judge)
        if request is not None:
            fingerprint["chat"] = request.chat
            if request.kind == "generate":
                gen = (backend.settings if backend is not None else cached.settings if cached is not None else self.settings).generation
                fingerprint["generation"] = gen.merged(max_new_tokens=request.max_new_tokens, stop=request.stop).to_json()
            else:
                fingerprint["generation"] = {"loglikelihood": True, "target_delimiter": request.target_delimiter}
        return fingerprint

    def run_status(self, items: list[pytest.Item]) -> RunStatus:
        """How the run ended, for the gate: interrupted, stopped early, cases selected per suite."""
        # (an xdist controller has no items: there the records' suite sizes tell)
        cases = {(found[0], found[1].id) for found in map(eval_item, items) if found is not None}  # a case once, however many samples
        selected = Counter(suite for suite, _ in cases)
        usage = getattr(self.backend, "usage", None)  # a served model's requests, when its backend counts them
        return RunStatus(
            interrupted=self.interrupted,
            stopped_early=bool(self.stopped) and not self.interrupted,
            selected=selected,
            backend_usage=usage() if callable(usage) else {},
        )

    def record_for(self, item: pytest.Item, outcome: str, reason: str, scores: Mapping[str, float], duration: float) -> CaseRecord:
        suite, case = eval_item(item)  # type: ignore[misc]
        plan = self.plans.get(suite)
        request = self.requests.get((suite, case.id, case.repeat)) or self.requests.get((suite, case.id, 0))
        result = self.scheduler.peek(item.nodeid)
        record = CaseRecord(
            suite=suite,
            case_id=case.id,
            outcome=outcome,  # type: ignore[arg-type]
            reason=reason,
            scores=dict(scores),
            markers=tuple(sorted({m.name for m in item.iter_markers()} - {MARKER, "parametrize", "usefixtures"})),
            min_pass_rate=plan.spec.min_pass_rate if plan else None,
            fingerprint=self.fingerprint_of(suite, request),
            prompt=result.prompt if isinstance(result, Completion) else result.context if isinstance(result, Ranked) else None,
            completion=result.text if isinstance(result, Completion) else None,
            choices=result.choices if isinstance(result, Ranked) else None,
            loglikelihoods=result.loglikelihoods if isinstance(result, Ranked) else None,
            latency_s=getattr(result, "latency_s", None),
            tokens_in=getattr(result, "tokens_in", None),
            tokens_out=getattr(result, "tokens_out", None),
            limited=bool(plan.limited) if plan else False,
            duration_s=duration,
            suite_size=len(plan.cases) if plan else None,
            truncated=getattr(result, "truncated", 0) or 0,
            unused_chat_template=self._unused_chat_template(plan, request),
            cached=self.scheduler.from_cache(item.nodeid),
            repeat=case.repeat,
            repeats=self.repeats_of(plan.spec) if plan else 1,
            require=plan.spec.require if plan else None,
            identical_repeats=self._identical_repeats(plan, request),
            judgement=self.judging.record_json(item.nodeid, suite, plan.spec if plan else None) if self.judging else None,
        )
        if outcome != "error":  # an errored item may be rerun (pytest-rerunfailures): keep its output
            self.scheduler.discard(item.nodeid)
        return record

    def _identical_repeats(self, plan: SuitePlan | None, request: Request | None) -> bool:
        """Repeated samples that a deterministic backend (a local model) computes greedily: all alike."""
        if plan is None or request is None or self.repeats_of(plan.spec) <= 1 or self.backend is None:
            return False
        if not getattr(self.backend, "deterministic", False):
            return False
        settings = getattr(self.backend, "settings", self.settings)
        return request.kind != "generate" or not settings.generation.do_sample

    def _unused_chat_template(self, plan: SuitePlan | None, request: Request | None) -> bool:
        """A generation case that did not say ``chat=``, sent to a model with a chat template."""
        if plan is None or request is None or request.kind != "generate" or plan.spec.chat is not None:
            return False
        if self.backend is None:
            cached = self._cache_served()
            return bool(cached is not None and cached.has_chat_template)
        from pytest_llmeval.models import has_chat_template

        return has_chat_template(self.backend)

    def ignored_cli_settings(self, fixture_value: Any) -> list[str]:
        """The ``--llmeval-*`` model options given on the command line that an overridden
        ``llm_settings`` fixture's value does not follow (they have no effect)."""
        if fixture_value is self.settings:
            return []
        from pytest_llmeval.plugin.fixtures import coerce_settings
        from pytest_llmeval.settings import SettingsError

        try:
            used = coerce_settings(fixture_value)
        except SettingsError:  # the llm fixture reports it
            return []
        return [
            o.flag for o in OPTIONS if o.setting and o.name in self.options.from_cli and setting_of(used, o) != setting_of(self.settings, o)
        ]

    # output ------------------------------------------------------------------

    def say(self, line: str) -> None:
        """One line on the terminal, also while pytest captures output (never from a worker)."""
        if self.is_worker:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        ctx = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
        with ctx:
            reporter.write_line(line)

    def _progress(self, kind: str, total: int) -> TerminalProgress:
        size = getattr(self.backend, "batch_size", None)
        batch = size() if callable(size) else None
        in_flight = getattr(self.backend, "in_flight", None)  # an HTTP backend: requests at once, not batches
        detail = f"with up to {in_flight} requests in flight" if isinstance(in_flight, int) else None
        return TerminalProgress(self.say, "completions" if kind == "generate" else "rankings", total, batch, detail=detail)

    def warn_space_form_paths(self) -> None:
        """Warn about ``--llmeval-output DIR`` (space form) with an existing DIR: pytest took DIR
        as a test path when it chose the rootdir and ini file."""
        args = (*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *map(str, self.config.invocation_params.args))
        for flag, value in space_form_paths(args, self.config.invocation_params.dir):
            ini = self.config.inipath
            self.config.issue_config_time_warning(
                pytest.PytestConfigWarning(
                    f"llmeval: pytest read the value of '{flag} {value}' as a test path when it chose the rootdir "
                    f"({self.config.rootpath}) and ini file ({ini or 'none'}), so settings may come from the wrong "
                    f"ini file; write '{flag}={value}' (with '=') or set {flag[2:].replace('-', '_')} in the ini file"
                ),
                stacklevel=2,
            )


STATE = pytest.StashKey[LLMEvalState]()


def get_state(config: pytest.Config) -> LLMEvalState:
    return config.stash[STATE]


def run_options(config: pytest.Config, options: Values) -> GateOptions:
    """The options that decide the verdict and the reports."""
    limit = options["limit"]
    narrowed: list[str] = []
    if config.getoption("keyword", default=""):
        narrowed.append("-k")
    if config.getoption("markexpr", default=""):
        narrowed.append("-m")
    if limit is not None:
        narrowed.append("--llmeval-limit")
    if config.getoption("deselect", default=None):
        narrowed.append("--deselect")
    if config.getoption("lf", default=False):
        narrowed.append("--lf")
    if any("[" in str(arg) for arg in config.args):
        narrowed.append("a node id with a case id")
    if options["shard"] is not None:
        narrowed.append("--llmeval-shard")
    tolerance, alpha = options["tolerance"], options["alpha"]
    return GateOptions(
        rootdir=suite_root(config),
        baseline=options.path("baseline"),
        update_baseline=bool(options["update-baseline"]),
        force=bool(options["force"]),
        strict=bool(options["strict"]),
        tolerance=0.02 if tolerance is None else tolerance,
        alpha=0.05 if alpha is None else alpha,
        min_pass_rate=options["min-pass-rate"],
        output_dir=options.path("output"),
        markdown=options.path("markdown"),
        limit=limit,
        narrowed_by=tuple(narrowed),
        invocation=tuple(config.invocation_params.args),
        value_flags=VALUE_FLAGS,
        shard=options["shard"],
        pass_ks=options["pass-k"] or (),
    )


def cache_path(config: pytest.Config, options: Values) -> Path:
    """The completion cache file: ``llmeval_cache_path``, else ``.llmeval/cache.sqlite`` under the rootdir."""
    return options.path("cache-path") or config.rootpath / ".llmeval" / "cache.sqlite"


def history_path(config: pytest.Config, options: Values) -> Path | None:
    """The run-history file, or None when it is turned off."""
    value = options["history"]
    if value is not None and str(value).lower() in {"off", "none", "false", "0"}:
        return None
    return options.path("history") or config.rootpath / ".llmeval" / "history.sqlite"
