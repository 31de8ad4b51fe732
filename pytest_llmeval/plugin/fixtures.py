"""The plugin's fixtures: ``llm_settings``, ``llm``, ``case``, ``completion``, ``ranked``,
``conversation``, ``judgement``."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest

from pytest_llmeval.escaping import terminal
from pytest_llmeval.own_warnings import errors_as_default
from pytest_llmeval.plugin.timeouts import off_the_clock
from pytest_llmeval.plugin.state import get_state as _state
from pytest_llmeval.settings import LLMSettings, SettingsError, coerce_settings


@pytest.fixture(scope="session")
def llm_settings(pytestconfig: pytest.Config) -> LLMSettings:
    """The model settings from ini keys and ``--llmeval-*`` options; override it in conftest.py."""
    return _state(pytestconfig).settings


@pytest.fixture(scope="session")
def llm(pytestconfig: pytest.Config, llm_settings: Any) -> Any:
    """The session model: loaded once, in eval mode, run under ``torch.inference_mode()``."""
    from pytest_llmeval.models import ModelLoadError

    try:
        settings = coerce_settings(llm_settings)
        with errors_as_default():  # a library's warning while loading never fails every case
            return _state(pytestconfig).get_backend(settings)
    except (ModelLoadError, SettingsError) as exc:
        problem = str(exc)
    pytest.fail(f"llmeval: {terminal(problem)}", pytrace=False)  # outside the except block: one clean line


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Any:
    """The current eval case; only in tests decorated with ``pytest_llmeval.cases``."""
    pytest.fail("the 'case' fixture comes from @pytest_llmeval.cases(...): decorate the test with it", pytrace=False)


def item_settings(request: pytest.FixtureRequest, llm_settings: Any) -> LLMSettings | None:
    """The model settings of the item ``request`` sets up (its folder's ``llm_settings``), noted
    on the item; a setting that cannot be honoured fails the item with one line. None when the
    value is not settings at all (the ``llm`` fixture reports that)."""
    from pytest_llmeval.plugin.model_groups import SETTINGS

    state = _state(request.config)
    try:
        settings = coerce_settings(llm_settings)
    except SettingsError:
        return None
    group = state.scheduler.group_of(request.node.nodeid)
    refusal = state.groups.refusal(group if group is not None else state.groups.group_of(request.node), settings)
    if refusal:
        pytest.fail(refusal, pytrace=False)
    request.node.stash[SETTINGS] = settings
    return settings


def _load(state: Any, settings: LLMSettings | None, request: pytest.FixtureRequest) -> Any:
    """The backend of ``settings`` (the item's model), reported as the ``llm`` fixture would."""
    from pytest_llmeval.models import ModelLoadError

    if settings is None:
        return request.getfixturevalue("llm")  # reports the value that is not settings
    try:
        return state.get_backend(settings)
    except ModelLoadError as exc:
        problem = str(exc)
    pytest.fail(f"llmeval: {terminal(problem)}", pytrace=False)  # outside the except block: one clean line


def _is_search(item: pytest.Item) -> bool:
    from pytest_llmeval.plugin.identity import eval_item

    found = eval_item(item)
    return found is not None and bool(getattr(found[1], "search", False))


def _scheduled(request: pytest.FixtureRequest, llm_settings: Any) -> Any:
    from pytest_llmeval.models import CONVERSE, RANK, capabilities
    from pytest_llmeval.models.scheduler import Deferred

    state = _state(request.config)
    key = request.node.nodeid
    planned = state.scheduler.request_of(key)
    if planned is None and _is_search(request.node):
        return None  # the search item (search=) computes each variant's output itself
    if planned is None:
        pytest.fail(
            f"llmeval: {request.node.name} asks for '{request.fixturename}' but is not an eval case with a prompt; "
            "decorate it with @pytest_llmeval.cases(source, prompt=...)",
            pytrace=False,
        )
    settings = item_settings(request, llm_settings)

    def load() -> Any:  # the model is loaded only for an output that is not cached
        llm = _load(state, settings, request)
        if planned.kind == RANK and RANK not in capabilities(llm):
            pytest.fail(
                f"llmeval: the model backend ({type(llm).__name__}) cannot score loglikelihoods, so 'ranked' cases cannot run; "
                "use a local model for multiple-choice suites, or score a 'completion' instead",
                pytrace=False,
            )
        if planned.messages is not None and CONVERSE not in capabilities(llm):
            pytest.fail(
                f"llmeval: the model backend ({type(llm).__name__}) cannot run conversations with tools, so workflow cases "
                "cannot run; use a local transformers model or an openai: server for workflow suites",
                pytrace=False,
            )
        return llm

    cache = state.completion_cache(settings) if settings is not None else None
    from pytest_llmeval.models import OutputError

    try:
        clock = off_the_clock(request.node) if state.scheduler.peek(key) is None else nullcontext()
        with clock, errors_as_default():  # the batch serves every case: off this item's clock, its warnings shown
            return state.scheduler.result(key, Deferred(load), cache)
    except OutputError as exc:
        problem = str(exc)
    pytest.fail(f"llmeval: {terminal(problem)}", pytrace=False)  # outside the except block: one clean line


@pytest.fixture
def completion(request: pytest.FixtureRequest, llm_settings: Any, case: Any) -> Any:
    """The generated text of this case (a ``str`` with tokens, latency and finish reason);
    from the completion cache when it holds it (then the model is not loaded for it). For a
    reasoning model it is the answer (``.reasoning`` holds the thinking); a completion whose
    thinking never ended has none, and its case misses without running (:func:`missing_answer`)."""
    return _scheduled(request, llm_settings)


def missing_answer(item: pytest.Item) -> str | None:
    """Why an eval item's completion has no answer (its thinking never ended), else ``None``:
    the case is then a miss with that reason, and its test is not run (nothing parses the thinking)."""
    if "completion" not in getattr(item, "fixturenames", ()):
        return None
    value = getattr(item, "funcargs", {}).get("completion")
    return getattr(value, "missing_answer", None)


@pytest.fixture
def ranked(request: pytest.FixtureRequest, llm_settings: Any, case: Any) -> Any:
    """Per-choice loglikelihoods of this multiple-choice case (from the cache when it holds them)."""
    return _scheduled(request, llm_settings)


@pytest.fixture
def conversation(request: pytest.FixtureRequest, llm_settings: Any, case: Any) -> Any:
    """This workflow case's conversation (``le.cases(..., tools=[...], max_turns=N)``): ``.messages``,
    ``.final``, ``.tool_calls``, ``.turns``, ``.steps``; computed in batched rounds with the other
    selected cases, each round from the completion cache when it holds it. A conversation whose
    generation failed makes the case an error, not a miss."""
    found = _scheduled(request, llm_settings)
    if getattr(found, "ending", None) == "error":
        pytest.fail(f"llmeval: the conversation of case {getattr(case, 'id', '?')!r} failed: {found.error}", pytrace=False)
    return found


@pytest.fixture
def judgement(request: pytest.FixtureRequest, llm_settings: Any, case: Any) -> Any:
    """What the judge said about this case's completion (``le.cases(..., judge=le.Rubric(...))``),
    or about the whole transcript of a workflow case: ``.label``, ``.score``, ``.probabilities``,
    ``.raw``, ``.judge_prompt``. From the completion cache when it holds the judge's answers (then
    no model is loaded for it)."""
    answered = request.getfixturevalue("conversation" if "conversation" in request.fixturenames else "completion")
    from pytest_llmeval.models import ModelLoadError, OutputError
    from pytest_llmeval.plugin.judging import judging
    from pytest_llmeval.plugin.identity import eval_item
    from pytest_llmeval.scoring.judges import JudgeError

    state = _state(request.config)
    found = eval_item(request.node)
    plan = state.plans.get(found[0]) if found else None
    if plan is None or plan.spec.judge is None:
        pytest.fail(
            f"llmeval: {request.node.name} asks for 'judgement' but its suite has no judge; "
            "pass judge=le.Rubric('...') to le.cases",
            pytrace=False,
        )
    if getattr(answered, "thinking_ended", True) is False:
        return None  # no answer to judge: the case misses with the reason (missing_answer)
    settings = item_settings(request, llm_settings)
    if settings is None:  # the llm fixture reports it
        settings = request.getfixturevalue("llm").settings
    try:
        with off_the_clock(request.node), errors_as_default():  # a judging batch serves every case too
            return judging(state).judgement(request.node.nodeid, settings, lambda: _load(state, settings, request))
    except ModelLoadError as exc:
        problem = f"judge model: {exc}"
    except (JudgeError, OutputError) as exc:
        problem = str(exc)
    pytest.fail(f"llmeval: {terminal(problem)}", pytrace=False)  # an error of the case (in setup), one line
