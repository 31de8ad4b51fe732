"""What one eval item leaves behind: its :class:`~pytest_llmeval.results.records.CaseRecord`
(outcome, output, timings, the suite's gate settings) and the fingerprint of what its outcome
depends on; and how the run ended, for the gate."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Mapping

import pytest

from pytest_llmeval.datasets.suite import Request, SuitePlan
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.plugin.identity import MARKER, eval_item
from pytest_llmeval.plugin.model_groups import SETTINGS
from pytest_llmeval.plugin.planning import repeats_of, request_of
from pytest_llmeval.plugin.search import SEARCH_FOUND
from pytest_llmeval.results.gate import RunStatus
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.settings import LLMSettings
from pytest_llmeval.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from pytest_llmeval.plugin.state import LLMEvalState


def fingerprint_of(
    state: LLMEvalState, suite: str, request: Request | None, settings: LLMSettings | None = None, conversation: Any = None
) -> dict[str, Any]:
    """What this suite's outcomes depend on: the backend's of the item's model settings (with
    the versions that compute it, this plugin's included), the prompt's and the data's; a workflow
    suite's tools (their schemas, how they are shown to the model, the turn limit) from its item's
    ``conversation``."""
    fingerprint: dict[str, Any] = {}
    backend = state.models.loaded(settings)
    cached = state.models.cache_served(settings) if backend is None else None
    model = backend.fingerprint if backend is not None else cached.fingerprint if cached is not None else None
    if model is not None and request is not None:
        fingerprint.update(model)
        versions = fingerprint.get("versions")
        fingerprint["versions"] = {**(versions if isinstance(versions, Mapping) else {}), "pytest-llmeval": __version__}
        if settings is not None and settings.model:
            fingerprint["model_name"] = settings.model
    plan = state.plans.get(suite)
    if plan is not None:
        fingerprint["prompt"] = plan.prompt
        if plan.prompt_text is not None:
            fingerprint["prompt_text"] = plan.prompt_text
        fingerprint["dataset"] = plan.dataset
        fingerprint["num_fewshot"] = plan.spec.num_fewshot
        if plan.perturbations:  # only when set: other suites keep their fingerprints
            fingerprint["perturb"] = dict(plan.perturbations)
        if plan.spec.judge is not None:
            from pytest_llmeval.plugin.judging import judging

            fingerprint["judge"] = judging(state).fingerprint(plan.spec.judge, settings)
    if request is not None and request.messages is not None and plan is not None:
        fingerprint["tools"] = _tools_fingerprint(state, plan, conversation, settings)
    if request is not None:
        fingerprint["chat"] = request.chat
        if request.kind == "generate":
            gen = (backend.settings if backend is not None else cached.settings if cached is not None else settings or state.settings).generation
            fingerprint["generation"] = gen.for_request(request).to_json()
        else:
            fingerprint["generation"] = {"loglikelihood": True, "target_delimiter": request.target_delimiter}
    return fingerprint


def _tools_fingerprint(state: LLMEvalState, plan: SuitePlan, conversation: Any, settings: LLMSettings | None) -> dict[str, Any]:
    """A workflow suite's tools as part of its prompt version: each tool's schema hash, the tool
    instructions a format adds, the format (from the conversation, else the item's loaded backend's) and
    the turn limit."""
    from pytest_llmeval.datasets.workflow_cases import DEFAULT_MAX_TURNS
    from pytest_llmeval.models.tool_calls import backend_format
    from pytest_llmeval.workflows.fingerprint import tools_fingerprint
    from pytest_llmeval.workflows.formats import FORMATS

    name = getattr(conversation, "tool_format", None) or backend_format(state.models.loaded(settings))
    instructions = FORMATS[name].instructions() if name in FORMATS else ""
    return {
        **tools_fingerprint(plan.tools, instructions=instructions),
        "format": name,
        "max_turns": plan.spec.max_turns or DEFAULT_MAX_TURNS,
    }


def record_for(
    state: LLMEvalState, item: pytest.Item, outcome: str, reason: str, scores: Mapping[str, float], duration: float, expected: Any = None
) -> CaseRecord:
    """The record of an eval item that ended with ``outcome`` (``expected``: what its scorer
    expected, for a miss); its output leaves the scheduler unless it errored (an errored item may
    be rerun, by pytest-rerunfailures, and keeps it)."""
    suite, case = eval_item(item)  # type: ignore[misc]
    plan = state.plans.get(suite)
    request = request_of(state, suite, case)
    settings = item.stash.get(SETTINGS, None)
    output = state.scheduler.peek(item.nodeid)
    conversation = output if request is not None and request.messages is not None else None
    record = CaseRecord(
        suite=suite,
        case_id=case.id,
        outcome=outcome,  # type: ignore[arg-type]
        reason=reason,
        scores=dict(scores),
        markers=tuple(sorted({m.name for m in item.iter_markers()} - {MARKER, "parametrize", "usefixtures"})),
        fingerprint=fingerprint_of(state, suite, request, settings, conversation),
        duration_s=duration,
        unused_chat_template=_unused_chat_template(state, plan, request, settings),
        cached=state.scheduler.from_cache(item.nodeid),
        repeat=case.repeat,
        identical_repeats=_identical_repeats(state, plan, request, settings),
        judgement=state.judging.record_json(item.nodeid, suite, plan.spec if plan else None) if state.judging else None,
        **(_conversation_fields(conversation, request) if conversation is not None else _output_fields(output)),
        **_suite_fields(state, plan),
        **_variant_fields(plan, case, request),
        search=item.stash.get(SEARCH_FOUND, None),
        expected=expected,
    )
    if outcome != "error":
        state.scheduler.discard(item.nodeid)
    return record


def _output_fields(result: Any) -> dict[str, Any]:
    """What a record keeps of the item's output (a completion, a ranking, or None)."""
    return {
        "prompt": result.prompt if isinstance(result, Completion) else result.context if isinstance(result, Ranked) else None,
        "completion": result.text if isinstance(result, Completion) else None,
        "choices": result.choices if isinstance(result, Ranked) else None,
        "loglikelihoods": result.loglikelihoods if isinstance(result, Ranked) else None,
        "latency_s": getattr(result, "latency_s", None),
        "tokens_in": getattr(result, "tokens_in", None),
        "tokens_out": getattr(result, "tokens_out", None),
        "truncated": getattr(result, "truncated", 0) or 0,
        "finish_reason": result.finish_reason if isinstance(result, Completion) else None,
        "reasoning": getattr(result, "reasoning", None) if isinstance(result, Completion) else None,
        "reasoning_tokens": getattr(result, "reasoning_tokens", None) if isinstance(result, Completion) else None,
        "thinking_ended": getattr(result, "thinking_ended", True) is not False,
    }


def _conversation_fields(conversation: Any, request: Request) -> dict[str, Any]:
    """What a record keeps of a workflow item's conversation: its prompt, final answer, summed
    tokens and model time, and every step (``samples.jsonl``'s ``conversation``)."""
    return {
        "prompt": request.text,
        "completion": conversation.final,
        "latency_s": conversation.latency_s,
        "tokens_in": conversation.tokens_in,
        "tokens_out": conversation.tokens_out,
        "conversation": conversation.to_record(),
    }


def _suite_fields(state: LLMEvalState, plan: SuitePlan | None) -> dict[str, Any]:
    """What a record keeps of its suite: its gate, size, narrowing and sampling."""
    return {
        "min_pass_rate": plan.spec.min_pass_rate if plan else None,
        "limited": bool(plan.limited) if plan else False,
        "suite_size": len(plan.cases) if plan else None,
        "repeats": repeats_of(state, plan.spec) if plan else 1,
        "require": plan.spec.require if plan else None,
    }


def _variant_fields(plan: SuitePlan | None, case: Any, request: Request | None) -> dict[str, Any]:
    """What a record keeps of a variant or a rotation, and a ranked case's answer (for calibration)."""
    answer = None
    if plan is not None and request is not None and request.kind == "rank" and not case.search:
        from pytest_llmeval.datasets.expand import answer_index

        answer = answer_index(plan.spec, case)
    return {
        "perturbation": case.perturbation,
        "rotation": case.rotation,
        "original_id": case.original_id,
        "answer_index": answer,
        "min_worst_case": plan.spec.min_worst_case if plan else None,
    }


def _identical_repeats(state: LLMEvalState, plan: SuitePlan | None, request: Request | None, settings: LLMSettings | None) -> bool:
    """Repeated samples that a deterministic backend (a local model) computes greedily: all alike."""
    backend = state.models.loaded(settings)
    if plan is None or request is None or repeats_of(state, plan.spec) <= 1 or backend is None:
        return False
    if not getattr(backend, "deterministic", False):
        return False
    settings = getattr(backend, "settings", state.settings)
    return request.kind != "generate" or not settings.generation.do_sample


def _unused_chat_template(state: LLMEvalState, plan: SuitePlan | None, request: Request | None, settings: LLMSettings | None) -> bool:
    """A generation case that did not say ``chat=``, sent to a model with a chat template."""
    if plan is None or request is None or request.kind != "generate" or plan.spec.chat is not None or request.messages is not None:
        return False
    backend = state.models.loaded(settings)
    if backend is None:
        cached = state.models.cache_served(settings)
        return bool(cached is not None and cached.has_chat_template)
    from pytest_llmeval.models import has_chat_template

    return has_chat_template(backend)


def run_status(state: LLMEvalState, items: list[pytest.Item]) -> RunStatus:
    """How the run ended, for the gate: interrupted, stopped early, cases selected per suite."""
    # (an xdist controller has no items: there the records' suite sizes tell)
    found = [f for f in map(eval_item, items) if f is not None]
    # a case once, however many samples or rotations; variants and the search are not cases
    cases = {(suite, case.original_id or case.id) for suite, case in found if case.perturbation is None and not case.search}
    selected = Counter(suite for suite, _ in cases)
    for suite, case in found:
        if case.perturbation is not None:
            selected.setdefault(suite, 0)  # only its variants were selected: its cases were deselected
    return RunStatus(
        interrupted=state.interrupted,
        stopped_early=bool(state.stopped) and not state.interrupted,
        selected=selected,
        backend_usage=_usage(state),
    )


def _usage(state: LLMEvalState) -> dict[str, Any]:
    """A served model's requests, when its backend counts them (summed over the session's backends)."""
    total: dict[str, Any] = {}
    for backend in state.models.backends.values():
        usage = getattr(backend, "usage", None)
        for key, value in (usage() if callable(usage) else {}).items():
            total[key] = total.get(key, 0) + value if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    return total
