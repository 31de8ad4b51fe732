"""Workflow cases: a suite's tools, and the conversation each case starts from.

A workflow suite is ``le.cases(..., tools=[...], max_turns=N)`` with a test that asks for the
``conversation`` fixture. Each case starts from its earlier ``messages`` (if any), then its prompt
as a user message; scripted ``user_turns`` follow the model's answers. The engine
(:mod:`pytest_llmeval.workflows`) checks the data; here its problems become collection errors
(:class:`CaseError`) that name the case.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pytest_llmeval.datasets.casefiles import Case, CaseError
from pytest_llmeval.datasets.casetext import render_prompt
from pytest_llmeval.datasets.spec import CaseSpec
from pytest_llmeval.datasets.suite import Request, SuitePlan

__all__ = ["DEFAULT_MAX_TURNS", "WorkflowCase", "check_workflow_spec", "plan_workflows", "suite_tools", "workflow_case"]

DEFAULT_MAX_TURNS = 8
"""Most model calls of a workflow case when ``le.cases`` does not say ``max_turns=``."""


@dataclass(frozen=True)
class WorkflowCase:
    """What one workflow item runs: its first request (the conversation's start, the tools'
    schemas, the generation settings and the sample's seed) and its scripted user turns."""

    request: Request
    user_turns: tuple[str, ...] = ()


def plan_workflows(plan: SuitePlan) -> SuitePlan:
    """A workflow suite's plan with its tools described (and its ``le.cases`` arguments checked)."""
    check_workflow_spec(plan.spec)
    return replace(plan, tools=suite_tools(plan.spec)) if plan.spec.tools is not None else plan


def check_workflow_spec(spec: CaseSpec) -> None:
    """Refuse ``le.cases`` arguments that a workflow suite cannot use, naming the fix."""
    if spec.chat is False:
        raise CaseError(
            f"{spec.label}: chat=False in a workflow suite: a conversation is sent through the chat template; drop chat=False"
        )
    if spec.num_fewshot:
        raise CaseError(f"{spec.label}: num_fewshot= in a workflow suite: give each case its earlier turns as 'messages' instead")
    if spec.choices is not None:
        raise CaseError(f"{spec.label}: choices= in a workflow suite: a workflow is scored on its conversation, not ranked")
    beyond = [name for name in ("perturb", "search", "permute", "min_worst_case") if getattr(spec, name, None) is not None]
    if beyond:
        raise CaseError(
            f"{spec.label}: {beyond[0]}= in a workflow suite: perturbations and searches apply to single completions "
            "and ranked choices, not yet to conversations; put them in a suite without tools="
        )


def suite_tools(spec: CaseSpec) -> tuple[Any, ...]:
    """The suite's tools, each described by its JSON schema; a tool that cannot be is a :class:`CaseError`."""
    from pytest_llmeval.workflows.tools import ToolDefinitionError, as_tools

    try:
        return as_tools(spec.tools)
    except ToolDefinitionError as exc:
        problem = str(exc)
    except Exception as exc:  # an MCP server that cannot start or list its tools
        problem = f"{type(exc).__name__}: {exc}"
    raise CaseError(f"{spec.label}: tools=: {problem}")


def workflow_case(spec: CaseSpec, plan: SuitePlan, case: Case, *, repeat: int = 0, seed: int | None = None) -> WorkflowCase:
    """The start of ``case``'s conversation (checked): a :class:`CaseError` naming the case when
    its ``messages`` or ``user_turns`` cannot be used."""
    from pytest_llmeval.workflows.messages import WorkflowDataError, check_user_turns, start_messages

    where = f"{case.where}: case {case.id!r}"
    prompt = render_prompt(spec.prompt, case)
    try:
        start = start_messages(case.fields.get("messages") or [], where, prompt=prompt, system=spec.system)
        turns = check_user_turns(case.fields.get("user_turns"), where)
    except WorkflowDataError as exc:
        problem = str(exc)
    else:
        problem = None
    if problem is not None:
        raise CaseError(problem)
    last_user = next((m["content"] for m in reversed(start) if m["role"] == "user"), "")
    request = Request(
        kind="generate",
        text=prompt if prompt is not None else last_user,
        chat=True,
        max_new_tokens=spec.max_new_tokens,
        stop=spec.stop,
        seed=seed,
        repeat=repeat,
        messages=tuple(start),
        tools=tuple(tool.schema for tool in plan.tools),
    )
    return WorkflowCase(request, turns)
