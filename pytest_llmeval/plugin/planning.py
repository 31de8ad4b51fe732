"""From suites to requests: each collected suite's plan and the requests of its items, the
held-out check against ``--llmeval-train-data``, and the scheduler's plan of the selected items."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmeval.datasets.spec import CaseSpec
from pytest_llmeval.datasets.suite import CaseError, Request, SuitePlan, plan_suite, render_prompt, request_for
from pytest_llmeval.plugin.identity import eval_item, suite_id

if TYPE_CHECKING:  # pragma: no cover
    from pytest_llmeval.plugin.state import LLMEvalState


def repeats_of(state: LLMEvalState, spec: CaseSpec) -> int:
    """Samples per case of a suite: ``le.cases(repeats=)``, else ``llmeval_repeats``, else 1."""
    return spec.repeats or state.options["repeats"] or 1


def request_of(state: LLMEvalState, suite: str, case: Any) -> Request | None:
    """The request of an item (a case's sample), None for a suite that asks for no output."""
    return state.requests.get((suite, case.id, case.repeat)) or state.requests.get((suite, case.id, 0))


def plan(state: LLMEvalState, metafunc: pytest.Metafunc, spec: CaseSpec) -> SuitePlan:
    """Plan a collected suite: its items (cases, variants, rotations, the search), and the
    request of each item when it asks for an output."""
    from pytest_llmeval.datasets.expand import check_kind, suite_items

    suite = suite_id(state.config, metafunc.definition.path, metafunc.definition.nodeid)
    seed = state.settings.seed
    found = plan_suite(spec, base_dir=metafunc.definition.path.parent, limit=state.run.limit, seed=seed)
    kind = output_kind(spec, metafunc.fixturenames)
    if kind == "workflow":
        from pytest_llmeval.datasets.workflow_cases import plan_workflows, workflow_case
        from pytest_llmeval.models.sampling import sample_seed

        found = plan_workflows(found)  # refuses perturb=/search=/permute=: one item per case
        for case in found.cases:
            for r in range(repeats_of(state, spec)):
                first = workflow_case(spec, found, case, repeat=r, seed=sample_seed(seed, case.id, r))
                state.requests[(suite, case.id, r)] = first.request
        items = ()
    else:
        check_kind(spec, kind, repeats_of(state, spec))
        items = tuple(suite_items(spec, found.cases, found.variants, searches=kind is not None))
        found = replace(found, items=items)
    if kind is not None and kind != "workflow":
        from pytest_llmeval.models.sampling import sample_seed

        for case in (c for c in items if not c.search):  # the search makes its own requests
            for r in range(repeats_of(state, spec) if kind == "generate" else 1):
                request = request_for(spec, found, case, kind, repeat=r, seed=sample_seed(seed, case.id, r))
                state.requests[(suite, case.id, r)] = request
    if spec.judge is not None:
        from pytest_llmeval.plugin.judging import check_judged_plan, judging

        labels_file = check_judged_plan(spec, found, metafunc.definition.path.parent)
        if labels_file is not None:
            judging(state).labels_files[suite] = labels_file
    state.plans[suite] = found
    return found


def output_kind(spec: CaseSpec, fixtures: Any) -> str | None:
    """What a suite's items ask the model for: ``"workflow"`` (the ``conversation`` fixture),
    ``"generate"`` (``completion``, or a judge's ``judgement``), ``"rank"`` (``ranked``) or nothing.
    A :class:`CaseError` for fixtures that do not go together."""
    names = set(fixtures)
    if "conversation" in names:
        other = sorted(names & {"completion", "ranked"})
        if other:
            raise CaseError(f"{spec.label}: the test asks for 'conversation' and {other[0]!r}; use conversation.final, the last answer")
        return "workflow"
    if spec.is_workflow:
        raise CaseError(
            f"{spec.label}: tools=/max_turns= make each case a conversation; ask for the 'conversation' fixture "
            f"(def {spec.function or 'test_x'}(case, conversation)) and score it with le.assert_tool_called(...)"
        )
    if "completion" in names or "judgement" in names:
        return "generate"
    return "rank" if "ranked" in names else None


def overlaps(state: LLMEvalState, items: list[pytest.Item]) -> dict[tuple[str, str], str]:
    """(suite, case id) -> why it looks trained on, for the collected items' cases, when
    ``--llmeval-train-data`` is given: the training data is read once, a line at a time."""
    path = state.options.path("train-data")
    if path is None:
        return {}
    from pytest_llmeval.datasets.heldout import case_answer, find_overlaps

    cases: dict[tuple[str, str], tuple[str, Any]] = {}
    for item in items:
        found = eval_item(item)
        plan = state.plans.get(found[0]) if found else None
        if found is None or plan is None or (found[0], found[1].id) in cases:
            continue
        spec, case = plan.spec, found[1]
        cases[(found[0], case.id)] = (render_prompt(spec.prompt, case) or "", case_answer(case.fields, target=spec.target, choices=spec.choices))
    if not cases:
        return {}
    try:
        findings = find_overlaps(cases, path)
    except (OSError, ValueError) as exc:
        raise CaseError(f"--llmeval-train-data={path}: {exc}") from None
    return {key: finding.describe() for key, finding in findings.items()}


def schedule(state: LLMEvalState, items: list[pytest.Item]) -> None:
    """Hand the scheduler the requests of the selected items (and the judges their items)."""
    from pytest_llmeval.models.scheduler import Entry

    entries = []
    for item in items:
        found = eval_item(item)
        if found is None:
            continue
        suite, case = found
        request = request_of(state, suite, case)
        if request is not None:
            workflow = workflow_of(state, suite, case) if request.messages is not None else None
            entries.append(Entry(key=item.nodeid, suite=suite, request=request, group=state.groups.group_of(item), workflow=workflow))
    state.scheduler.plan(entries)
    if any(p.spec.judge is not None for p in state.plans.values()):
        from pytest_llmeval.plugin.judging import judging

        judging(state).schedule(items, eval_item)


def workflow_of(state: LLMEvalState, suite: str, case: Any) -> Any:
    """What a workflow item runs beyond its first request: its suite's tools and turn limit, its
    scripted user turns, and the tool limits of the options."""
    from pytest_llmeval.datasets.workflow_cases import DEFAULT_MAX_TURNS
    from pytest_llmeval.models.workflow_runs import ToolLimits, Workflow
    from pytest_llmeval.workflows.messages import check_user_turns

    plan = state.plans[suite]
    limits = {"timeout": state.options["tool-timeout"], "workers": state.options["tool-workers"], "max_result_chars": state.options["tool-result-chars"]}
    return Workflow(
        tools=plan.tools,
        max_turns=plan.spec.max_turns or DEFAULT_MAX_TURNS,
        user_turns=check_user_turns(case.fields.get("user_turns"), case.where),  # checked when planned
        limits=ToolLimits(**{k: v for k, v in limits.items() if v is not None}),
    )
