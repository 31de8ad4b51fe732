"""The session's judges (``llmeval_judge_model``): which items are judged, when, by whom.

Judging follows the completions a window at a time: when an item first asks for its
judgement (the ``judgement`` fixture, in :mod:`.fixtures`), every later selected item of a judged
suite whose completion the scheduler already holds is judged with it, in one batched run of the
judge backend (:class:`~pytest_llmeval.scoring.judging.JudgeRunner`, through the one cached,
batched path of :mod:`pytest_llmeval.models.batched`). The judge is ``llmeval_judge_model``,
loaded like ``llmeval_model`` (:func:`pytest_llmeval.models.load_backend`), or by default the
model under test, with a warning that a model judging itself flatters itself.

What a judge is told and how its answer becomes a verdict is :mod:`pytest_llmeval.scoring.judges`;
running it over a batch is :mod:`pytest_llmeval.scoring.judging`. This module does not import the
session's state: it is handed the session (:class:`Session`) and the items' identities.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from pytest_llmeval.datasets.spec import CaseSpec
from pytest_llmeval.datasets.suite import Case, CaseError, SuitePlan
from pytest_llmeval.models.batched import Deferred, answers, chunk_size, window
from pytest_llmeval.models.protocol import RANK, ModelLoadError, OutputError, capabilities, has_chat_template
from pytest_llmeval.models.registry import load_backend
from pytest_llmeval.own_warnings import warn
from pytest_llmeval.plugin.progress import TerminalProgress
from pytest_llmeval.results.review import ReviewError, read_labels
from pytest_llmeval.scoring.judges import JudgeError, Pairwise, field_problem, judge_of
from pytest_llmeval.scoring.judging import JUDGE_MAX_NEW_TOKENS, JudgeItem, JudgeRunner
from pytest_llmeval.settings import GenerationSettings, LLMSettings

SELF = "the model under test"


class LLMEvalSelfJudgeWarning(UserWarning):
    """The judge is the model under test (``llmeval_judge_model`` is not set)."""


def check_judged_plan(spec: CaseSpec, plan: SuitePlan, base_dir: Path) -> str | None:
    """The absolute labels file of a judged suite (None without one); a case without the field
    the judge is shown, or a missing labels file, is a :class:`CaseError`."""
    judge = judge_of(spec.judge)
    if judge is None:
        return None
    for case in plan.cases:
        problem = field_problem(judge, case.fields)
        if problem is not None:
            raise CaseError(f"{case.where}: case {case.id!r} {problem}; add it, or change the rubric's reference=/against=")
    if judge.labels_file is None:
        return None
    path = (base_dir / judge.labels_file).resolve()
    if not path.is_file():
        raise CaseError(
            f"{spec.label}: labels_file={judge.labels_file!r} does not exist ({path}); write it with "
            "'python -m pytest_llmeval review export RESULTS_DIR labels.csv' and label it, or drop min_kappa="
        )
    try:
        labelled = read_labels(path)
    except ReviewError as exc:
        raise CaseError(f"{spec.label}: labels_file={judge.labels_file!r}: {exc}") from None
    if not labelled and judge.min_kappa is not None:
        raise CaseError(
            f"{spec.label}: labels_file={judge.labels_file!r} has no labelled row (no row with a human_label), so min_kappa= "
            "cannot be checked; label some cases in it, or drop min_kappa="
        )
    return str(path)


class Session(Protocol):
    """What :class:`JudgeSession` reads of the plugin's session state (``plugin/state.py``)."""

    plans: Mapping[str, SuitePlan]
    scheduler: Any
    """The :class:`~pytest_llmeval.models.scheduler.BatchScheduler`: requests, completions, window."""
    settings: LLMSettings
    options: Any
    """``options["judge-model"]``, ``options["judge-max-new-tokens"]``, ``options.base["judge-model"]``."""

    def completion_cache(self, settings: LLMSettings, base_dir: Path | None = None) -> Any: ...

    def say(self, line: str) -> None: ...

    def progress_options(self) -> dict[str, Any]: ...


Identify = Callable[[Any], "tuple[str, Case] | None"]
"""(suite, case) of a pytest item, or None for a plain test (the plugin's ``eval_item``)."""


class JudgeSession:
    """The session's judge backends, which items are judged, and their judgements."""

    def __init__(self, state: Session) -> None:
        self.state = state
        self.order: list[tuple[str, str, Case]] = []
        """(node id, suite, case) of every selected item of a judged suite, in run order."""
        self.labels_files: dict[str, str] = {}
        self._results: dict[str, Any] = {}
        self._judge: Any = None
        self._others: dict[str, Any] = {}
        self._warned = False
        self._used: Any = None
        """The judge backend that judged this session (for the fingerprint)."""
        self._self_judges: dict[Any, Any] = {}
        """The model under test as its own judge, per model settings (a session may run several)."""
        self._fell_back: set[int] = set()
        self.judged = 0
        self.cached = 0
        """Judgements made, and how many of them came from the completion cache."""

    def schedule(self, items: Iterable[Any], eval_item: Identify) -> None:
        """Note the selected items (in run order) of judged suites; ``eval_item`` identifies one."""
        self.order = []
        for item in items:
            found = eval_item(item)
            plan = self.state.plans.get(found[0]) if found else None
            if found is not None and plan is not None and plan.spec.judge is not None:
                self.order.append((item.nodeid, found[0], found[1]))

    # ------------------------------------------------------------ backends

    @property
    def judge_model(self) -> str | None:
        return self.state.options["judge-model"]

    def judge_backend(self, settings: Any, load_llm: Callable[[], Any]) -> Any:
        """The judge: ``llmeval_judge_model``'s backend, or the model under test (its ``settings``;
        ``load_llm()`` loads it; warned about once), a :class:`~pytest_llmeval.models.batched.Deferred`
        backend with its completion cache: loaded only for a judgement that is not cached."""
        model = self.judge_model
        if self._judges_itself(settings):
            if model is None and not self._warned:
                self._warned = True
                warn(
                    LLMEvalSelfJudgeWarning(
                        "llmeval: the model under test is also the judge, and a model judging its own answers flatters "
                        "them; set llmeval_judge_model (or --llmeval-judge-model) to another model"
                    ),
                    stacklevel=1,
                )
            judge = self._self_judges.get(settings)
            if judge is None:
                cache = self.state.completion_cache(settings) if settings is not None else None
                judge = self._self_judges[settings] = Deferred(load_llm, cache)
            judge.load = load_llm
            self._used = judge
            return judge
        if self._judge is None:
            judge_settings = self._settings(model)  # type: ignore[arg-type]
            cache = self.state.completion_cache(judge_settings, base_dir=self.state.options.base["judge-model"])
            self._judge = Deferred(lambda: self._load(model, "judge"), cache)  # type: ignore[arg-type]
        self._used = self._judge
        return self._judge

    def _judges_itself(self, settings: Any) -> bool:
        """Whether the model under test (of ``settings``) is its own judge."""
        return self.judge_model is None or self.judge_model == getattr(settings, "model", None)

    def _load(self, model: str, role: str) -> Any:
        state = self.state
        settings = self._settings(model)
        started = time.perf_counter()
        backend = load_backend(settings, base_dir=state.options.base["judge-model"])
        state.say(f"llmeval: loaded {role} {backend.describe()} in {time.perf_counter() - started:.1f}s")
        return backend

    def _settings(self, model: str) -> Any:
        return self.state.settings.replace(model=model, generation=GenerationSettings(max_new_tokens=self.max_new_tokens))

    @property
    def max_new_tokens(self) -> int:
        value = self.state.options["judge-max-new-tokens"]
        return JUDGE_MAX_NEW_TOKENS if value is None else int(value)

    def other_backend(self, model: str) -> Any:
        if model not in self._others:
            self._others[model] = self._load(model, "second model")
        return self._others[model]

    # ------------------------------------------------------------ judging

    def judgement(self, key: str, settings: Any, load_llm: Callable[[], Any]) -> Any:
        """The judgement of item ``key``, judging its window first if needed."""
        if key not in self._results:
            self._judge_window(self._window(key), settings, load_llm)
        found = self._results[key]
        if isinstance(found, BaseException):
            raise found
        return found

    def _window(self, key: str) -> list[tuple[str, str, Case]]:
        scheduler = self.state.scheduler
        keys = [k for k, _, _ in self.order]
        start = keys.index(key) if key in keys else None
        if start is None:
            raise KeyError(f"{key} is not a selected item of a judged suite")
        first = self.order[start]

        group = scheduler.group_of(first[0])

        def eligible(entry: tuple[str, str, Case]) -> bool:  # one window, one model (its own judge, maybe)
            output = scheduler.peek(entry[0])
            if entry[0] in self._results or output is None or scheduler.group_of(entry[0]) != group:
                return False  # judged, not computed yet, or another model's
            if getattr(output, "thinking_ended", True) is False:
                return False  # without an answer (thinking cut short)
            return not (scheduler.same_suite and entry[1] != first[1])

        return window(self.order, start, scheduler.window, eligible)

    def _judge_window(self, window: list[tuple[str, str, Case]], settings: Any, load_llm: Callable[[], Any]) -> None:
        try:
            judge = self.judge_backend(settings, load_llm)
            runner = JudgeRunner(judge, chat=has_chat_template(judge), max_new_tokens=self.max_new_tokens, cache=judge.cache)
            items, unjudged = self._items(window)
            sink = TerminalProgress(self.state.say, "judgements", len(items) - len(unjudged), chunk_size(judge), **self.state.progress_options())
            started = time.perf_counter()
            judged = iter(runner.judge([item for item in items if item is not None], progress=sink.update))
            sink.close(time.perf_counter() - started)
            results = [unjudged[i] if item is None else next(judged) for i, item in enumerate(items)]
            self._count(runner, results)
            self._notice_fallback(judge, runner)
        except Exception as exc:  # every item of the window errors with the cause
            for key, _, _ in window:
                self._results[key] = exc
            raise
        for (key, _, _), result in zip(window, results):
            self._results[key] = result

    def _notice_fallback(self, judge: Any, runner: JudgeRunner) -> None:
        """Say once per judge that it generates its labels because it has no loglikelihoods."""
        if runner.fell_back and id(judge) not in self._fell_back:
            self._fell_back.add(id(judge))
            who = self.judge_model or SELF
            self.state.say(
                f"llmeval: the judge ({who}) returns no prompt log-probabilities, so it answers by generating its label "
                "(parsed strictly; an answer that is not a label, twice, is an error of the case)"
            )

    def _count(self, runner: Any, results: Sequence[Any]) -> None:
        """Count the judgements, and those whose every judge prompt came from the cache."""
        for result in results:
            if isinstance(result, BaseException):
                continue
            self.judged += 1
            prompts = getattr(result, "judge_prompts", None) or [getattr(result, "judge_prompt", None)]
            self.cached += all(p in runner.cached_prompts for p in prompts)

    def _items(self, window: list[tuple[str, str, Case]]) -> tuple[list[JudgeItem | None], dict[int, BaseException]]:
        """The item to judge at each position of the window, or None where it cannot be judged
        (its second model gave no answer), with why (by position)."""
        scheduler = self.state.scheduler
        others = self._other_answers(window)
        items: list[JudgeItem | None] = []
        unjudged: dict[int, BaseException] = {}
        for position, (key, suite, case) in enumerate(window):
            judge = self.state.plans[suite].spec.judge
            request = scheduler.request_of(key)
            reference: Any
            if isinstance(judge, Pairwise):
                reference = others[key] if judge.against_model is not None else str(case.fields[judge.against])
            else:
                reference = None if judge.reference is None else str(case.fields[judge.reference])
            if isinstance(reference, BaseException):
                unjudged[position] = JudgeError(f"le.Pairwise(against_model={judge.against_model!r}) got no answer to compare with: {reference}")
                items.append(None)
                continue
            items.append(JudgeItem(judge, request.text, _answer_text(scheduler.peek(key)), reference))
        return items, unjudged

    def _other_answers(self, window: list[tuple[str, str, Case]]) -> dict[str, Any]:
        """A second model's answer (or why there is none) to each prompt of the window that a
        pairwise rubric with ``against_model`` compares with; one model's failure is its cases' only."""
        by_model: dict[str, list[str]] = {}
        for key, suite, _ in window:
            model = getattr(self.state.plans[suite].spec.judge, "against_model", None)
            if model is not None:
                by_model.setdefault(model, []).append(key)
        out: dict[str, Any] = {}
        for model, keys in by_model.items():
            requests = [self.state.scheduler.request_of(k) for k in keys]
            try:
                got: list[Any] = answers(requests, self.other_backend(model))
            except (ModelLoadError, OutputError) as exc:
                got = [exc] * len(keys)
            for key, answer in zip(keys, got):
                out[key] = answer if isinstance(answer, BaseException) else str(answer)
        return out

    # ------------------------------------------------------------ records

    def record_json(self, key: str, suite: str, spec: CaseSpec | None) -> dict[str, Any] | None:
        """What a case record keeps of its judgement (and the suite's calibration requirement)."""
        found = self._results.get(key)
        if spec is None or spec.judge is None or found is None or isinstance(found, BaseException):
            return None
        data = found.to_json()
        data["labels"] = list(spec.judge.labels)
        if spec.judge.min_kappa is not None:
            data["min_kappa"] = spec.judge.min_kappa
            data["labels_file"] = self.labels_files.get(suite)
        return data

    def fingerprint(self, judge: Any, settings: Any = None) -> dict[str, Any]:
        """The judged suite's must-match ``judge`` fingerprint: who judges, how, and the rubric
        (``settings``: the model settings of the suite's items, whose model may judge itself)."""
        if settings is None:
            backend = self._used
        else:
            backend = self._self_judges.get(settings) if self._judges_itself(settings) else self._judge
        data: dict[str, Any] = {"rubric": judge.fingerprint()}
        if backend is None:
            data["model"] = self.judge_model or SELF
            return data
        fingerprint = backend.fingerprint
        data.update({k: fingerprint[k] for k in ("model", "tokenizer", "chat_template", "dtype") if fingerprint.get(k) is not None})
        rank = RANK in capabilities(backend)
        data["method"] = "rank" if rank else "generate"
        data["chat"] = has_chat_template(backend)
        if not rank:
            data["generation"] = {"max_new_tokens": self.max_new_tokens, "do_sample": False, "stop": ["\n"]}
        return data


def _answer_text(output: Any) -> str:
    """What a judge reads as the answer: the completion, or a workflow case's whole transcript
    (every message, tool call and result)."""
    transcript = getattr(output, "transcript", None)
    return transcript() if callable(transcript) else str(output)


def judging(state: Any) -> JudgeSession:
    """The session's :class:`JudgeSession` (made on first use)."""
    if getattr(state, "judging", None) is None:
        state.judging = JudgeSession(state)
    return state.judging
