"""Eval suites: the cases a suite plans, and the request each case makes.

What ``le.cases`` was told lives in :mod:`pytest_llmeval.datasets.spec`, what identifies a suite's
data and prompt in :mod:`pytest_llmeval.datasets.hashes`, reading case files in
:mod:`pytest_llmeval.datasets.casefiles`, prompts and answer texts in
:mod:`pytest_llmeval.datasets.casetext`; their names are importable from here too. Nothing here
imports pytest or torch: the plugin turns a :class:`CaseError` into a collection error, and
the backend turns a :class:`Request` into model calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pytest_llmeval.datasets.casefiles import Case, CaseError, CaseSource, load_cases, resolve_source_path
from pytest_llmeval.datasets.casetext import (
    ANSWER_FIELDS,
    PromptTemplate,
    answer_texts,
    choice_index,
    render_prompt,
    solved_example,
    template_fields,
)
from pytest_llmeval.datasets.hashes import PROMPT_TEXT_LIMIT, dataset_hash, prompt_hash, prompt_text
from pytest_llmeval.datasets.spec import CaseSpec, check_spec

__all__ = [
    "ANSWER_FIELDS",
    "Case",
    "CaseError",
    "CaseSource",
    "CaseSpec",
    "PromptTemplate",
    "KEYED_WHEN_SET",
    "PROMPT_TEXT_LIMIT",
    "Request",
    "SuitePlan",
    "answer_texts",
    "build_request",
    "case_choices",
    "check_spec",
    "choice_index",
    "dataset_hash",
    "fewshot_pairs_for",
    "fewshot_prefix_for",
    "load_cases",
    "plan_suite",
    "prompt_hash",
    "prompt_text",
    "render_prompt",
    "resolve_source_path",
    "solved_example",
    "template_fields",
]


KEYED_WHEN_SET = {"cache_key": "when_set"}
"""Metadata of a :class:`Request` field added after completions were first cached: the field is
part of an output's cache key only when it differs from its default, so the keys of requests that
do not use it stay those of earlier versions."""


@dataclass(frozen=True)
class Request:
    """What the model must compute for one case.

    ``kind`` is ``"generate"`` (a completion) or ``"rank"`` (loglikelihood of each choice).
    ``text`` is the prompt before any chat template; the backend applies the template when
    ``chat`` is set, since only it has the tokenizer.
    """

    kind: Literal["generate", "rank"]
    text: str
    chat: bool = False
    system: str | None = None
    choices: tuple[str, ...] = ()
    target_delimiter: str = " "
    max_new_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    continuation: str | None = None
    """For partial scoring (WinoGrande): the text scored after each ``context + choice``."""
    fewshot: tuple[tuple[str, str], ...] = ()
    """Few-shot (question, answer) pairs sent as earlier chat turns (with ``chat``)."""
    seed: int | None = None
    """This sample's seed, from (session seed, case id, repeat): a sampling backend draws the
    sample with it, so that it never depends on the batch (an HTTP backend sends it)."""
    repeat: int = 0
    """Which sample of the case this is (0 .. repeats - 1); part of any cache key."""
    thinking: bool | None = field(default=None, metadata={"cache_key": "when_set"})
    """The thinking switch of a reasoning model's chat template (``None``: the session's, else the
    template's default); in a cache key only when set."""
    max_reasoning_tokens: int | None = field(default=None, metadata={"cache_key": "when_set"})
    """The suite's reasoning budget (``None``: the session's); in a cache key only when set."""
    messages: tuple[Mapping[str, Any], ...] | None = field(default=None, metadata=KEYED_WHEN_SET)
    """A workflow case's conversation so far (one round's generation): the backend sends these
    messages, not ``text``, through the chat template (or natively to a server), with ``tools``."""
    tools: tuple[Mapping[str, Any], ...] = field(default=(), metadata=KEYED_WHEN_SET)
    """The JSON schemas of the tools the model may call (with ``messages``)."""


def case_choices(spec: CaseSpec, case: Case) -> tuple[str, ...]:
    if spec.choices is None:
        return ()
    if spec.choices not in case.fields:
        raise CaseError(
            f"{case.where}: case {case.id!r} has no choices field {spec.choices!r}; "
            f"it has: {', '.join(case.fields)}"
        )
    value = case.fields[spec.choices]
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) < 2:
        raise CaseError(f"{case.where}: case {case.id!r}: {spec.choices!r} must be a list of at least two choices")
    return tuple(str(v) for v in value)


def build_request(
    spec: CaseSpec,
    case: Case,
    kind: Literal["generate", "rank"],
    fewshot_prefix: str = "",
    fewshot: tuple[tuple[str, str], ...] = (),
) -> Request:
    text = render_prompt(spec.prompt, case)
    if text is None:
        raise CaseError(
            f"{case.where}: case {case.id!r} has no prompt: pass prompt='...{{field}}...' to le.cases "
            "or give each case a 'prompt' field"
        )
    choices = case_choices(spec, case) if kind == "rank" else ()
    if kind == "rank" and not choices:
        raise CaseError(
            f"{case.where}: the test uses the 'ranked' fixture but le.cases has no choices=; "
            "pass choices='<field with the list of choices>'"
        )
    continuation = None
    if kind == "rank" and spec.continuation is not None:
        if spec.continuation not in case.fields:
            raise CaseError(f"{case.where}: case {case.id!r} has no continuation field {spec.continuation!r}")
        continuation = str(case.fields[spec.continuation])
    return Request(
        kind=kind,
        text=fewshot_prefix + text,
        chat=bool(spec.chat),
        system=spec.system,
        choices=choices,
        target_delimiter=spec.delimiter,
        max_new_tokens=spec.max_new_tokens,
        stop=spec.stop,
        continuation=continuation,
        fewshot=fewshot,
        thinking=spec.thinking if kind == "generate" else None,
        max_reasoning_tokens=spec.max_reasoning_tokens if kind == "generate" else None,
    )


@dataclass(frozen=True)
class SuitePlan:
    """The cases of one suite after loading, with what identifies its data and prompt."""

    spec: CaseSpec
    cases: tuple[Case, ...]
    dataset: str
    prompt: str
    limited: bool = False
    fewshot_pool: tuple[Case, ...] = field(default=())
    prompt_text: str | None = None
    """The prompt in words (:func:`prompt_text`), for a diff when it changes."""
    variants: Mapping[str, tuple[Case, ...]] = field(default_factory=dict)
    """Each case's variants (``perturb=``), by case id."""
    perturbations: Mapping[str, str] = field(default_factory=dict)
    """Per perturbation name, the hash of its variants (over every case, before ``--llmeval-limit``)."""
    items: tuple[Case, ...] = ()
    """The suite's items in run order once planned (cases, variants, rotations, the search);
    empty: one item per case."""
    tools: tuple[Any, ...] = field(default=())
    """A workflow suite's tools (:class:`pytest_llmeval.workflows.Tool`), described once
    (:func:`pytest_llmeval.datasets.workflow_cases.plan_workflows`)."""


def plan_suite(spec: CaseSpec, base_dir: Path | None, limit: int | None = None, *, seed: int = 1234) -> SuitePlan:
    """Check ``spec`` and load its cases (and few-shot pool), and draw the variants of its
    perturbations with ``seed`` (``llmeval_seed``); every problem is a :class:`CaseError`."""
    from pytest_llmeval.datasets.expand import draw_variants, perturbation_hashes

    check_spec(spec)
    cases = load_cases(spec.source, base_dir=base_dir, id_field=spec.id)
    pool: tuple[Case, ...] = ()
    if spec.num_fewshot:
        assert spec.fewshot_source is not None
        pool = tuple(load_cases(spec.fewshot_source, base_dir=base_dir, id_field=spec.id))
        _check_pool_size(spec, cases, pool)
    full_hash = dataset_hash(cases)
    variants = draw_variants(spec, cases, seed) if spec.perturb else {}
    limited = limit is not None and limit < len(cases)
    if limited:
        cases = cases[:limit]
    return SuitePlan(
        spec=spec, cases=tuple(cases), dataset=full_hash, prompt=prompt_hash(spec), limited=limited, fewshot_pool=pool,
        prompt_text=prompt_text(spec),
        variants={c.id: variants[c.id] for c in cases if c.id in variants}, perturbations=perturbation_hashes(spec, variants),
    )  # fmt: skip


def _check_pool_size(spec: CaseSpec, cases: Sequence[Case], pool: Sequence[Case]) -> None:
    """Every case needs ``num_fewshot`` examples besides itself (a case is never its own example)."""
    k = spec.num_fewshot
    source = spec.fewshot_source if isinstance(spec.fewshot_source, (str, Path)) else "the fewshot_source list"
    if len(pool) < k:
        raise CaseError(
            f"{spec.label}: num_fewshot={k} but {source} has only {len(pool)} examples; lower num_fewshot or add examples"
        )
    pool_ids = {example.id for example in pool}
    short = next((case for case in cases if case.id in pool_ids and len(pool) - 1 < k), None)
    if short is not None:
        raise CaseError(
            f"{spec.label}: num_fewshot={k} but {source} has only {len(pool) - 1} examples besides case {short.id!r}, "
            "which is in it too and is never its own example; lower num_fewshot, or add examples"
        )


def fewshot_pairs_for(spec: CaseSpec, plan: SuitePlan, case: Case) -> tuple[tuple[str, str], ...]:
    """The few-shot (prompt, answer) pairs of ``case``, chosen by the case id alone."""
    from pytest_llmeval.datasets.fewshot import select_fewshot

    chosen = select_fewshot(
        [{"id": example.id} for example in plan.fewshot_pool],
        case.original_id or case.id,  # a variant or a rotation shows its case's examples
        spec.num_fewshot,
        seed=spec.fewshot_seed,
    )
    by_id = {example.id: example for example in plan.fewshot_pool}
    return tuple(_solved(spec, by_id[str(row["id"])]) for row in chosen)


def _solved(spec: CaseSpec, example: Case) -> tuple[str, str]:
    question = render_prompt(spec.prompt, example)
    if question is None:
        raise CaseError(
            f"{example.where}: few-shot example {example.id!r} has no prompt: pass prompt='...{{field}}...' "
            "to le.cases or give each example a 'prompt' field"
        )
    return solved_example(example, question, target=spec.target, choices=spec.choices, continuation=spec.continuation)


def fewshot_prefix_for(spec: CaseSpec, plan: SuitePlan, case: Case) -> str:
    """The few-shot examples that precede ``case``'s prompt as plain text (lm-eval's layout)."""
    from pytest_llmeval.datasets.fewshot import plain_prefix

    return plain_prefix(
        fewshot_pairs_for(spec, plan, case), target_delimiter=spec.delimiter, fewshot_delimiter=spec.fewshot_delimiter
    )


def request_for(
    spec: CaseSpec, plan: SuitePlan, case: Case, kind: Literal["generate", "rank"], *, repeat: int = 0, seed: int | None = None
) -> Request:
    """What the model computes for sample ``repeat`` of ``case`` (seeded ``seed``): its prompt,
    with its few-shot examples as earlier chat turns under a chat template (lm-eval's default)
    or as a plain-text prefix otherwise."""
    if spec.num_fewshot and spec.chat:
        request = build_request(spec, case, kind, fewshot=fewshot_pairs_for(spec, plan, case))
    elif spec.num_fewshot:
        request = build_request(spec, case, kind, fewshot_prefix_for(spec, plan, case))
    else:
        request = build_request(spec, case, kind)
    return replace(request, seed=seed, repeat=repeat) if seed is not None or repeat else request
