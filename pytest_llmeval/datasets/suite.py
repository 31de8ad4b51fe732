"""Eval suites: what ``le.cases`` was told, the cases it plans, and the request each case makes.

Reading case files lives in :mod:`pytest_llmeval.datasets.casefiles`, prompts and answer texts in
:mod:`pytest_llmeval.datasets.casetext`; their names are importable from here too. Nothing here
imports pytest or torch: the plugin turns a :class:`CaseError` into a collection error, and
the backend turns a :class:`Request` into model calls.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal

from pytest_llmeval.datasets.casefiles import Case, CaseError, CaseSource, load_cases, resolve_source_path
from pytest_llmeval.datasets.casetext import (
    ANSWER_FIELDS,
    PromptTemplate,
    answer_texts,
    choice_index,
    render_prompt,
    solved_example,
    template_fields,
    template_problem,
)
from pytest_llmeval.settings import MAX_REPEATS, stop_problem

__all__ = [
    "ANSWER_FIELDS",
    "Case",
    "CaseError",
    "CaseSource",
    "CaseSpec",
    "PromptTemplate",
    "KEYED_WHEN_SET",
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


@dataclass(frozen=True)
class CaseSpec:
    """What ``le.cases(...)`` was told; one per eval suite (test function)."""

    source: CaseSource
    prompt: PromptTemplate = None
    chat: bool | None = None
    """Apply the model's chat template (True) or not (False); ``None``, not said, is False
    except that the plugin warns when a generation suite meets a model with a template."""
    system: str | None = None
    choices: str | None = None
    id: str | Callable[[Mapping[str, Any]], str] = "id"
    min_pass_rate: float | None = None
    max_new_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    num_fewshot: int = 0
    fewshot_source: CaseSource | None = None
    fewshot_seed: int = 1234
    target: str | Callable[[Mapping[str, Any]], str] | None = None
    target_delimiter: str | None = None
    fewshot_delimiter: str = "\n\n"
    continuation: str | None = None
    judge: Any = None
    """A judge (``le.Rubric`` / ``le.Pairwise``) that grades each completion (the ``judgement`` fixture)."""
    function: str = field(default="", compare=False)
    """The name of the decorated test function, for messages."""
    repeats: int | None = None
    """Samples per case (``None``: the session's ``llmeval_repeats``, else 1)."""
    require: str | None = None
    """With repeats, what a case needs to pass: ``"all"`` samples or a ``"majority"``; ``None``:
    the suite's rate is the mean of its cases' pass rates."""
    thinking: bool | None = None
    """A reasoning model's thinking switch (its chat template's ``enable_thinking``); ``None``: the
    session's ``llmeval_thinking``, else the template's default."""
    max_reasoning_tokens: int | None = None
    """Most thinking tokens per completion before the end of thinking is forced (``None``: the
    session's, else no budget)."""
    perturb: tuple[Any, ...] | None = None
    """Perturbations (``le.perturb.*``): each adds a variant of every case, an item of its own."""
    fields: tuple[str, ...] | None = None
    """The fields the perturbations change (default: those the prompt template reads)."""
    search: int | None = None
    """Variants a search explores per passing case and perturbation (``None``: no search)."""
    min_worst_case: float | None = None
    """Gates the share of cases right as written and under every perturbation."""
    permute: str | None = None
    """``"cyclic"``: every rotation of a multiple-choice case's options is scored."""
    tools: Any = None
    """A workflow suite's tools: functions, ``le.mcp_tools(...)`` sets (the ``conversation`` fixture)."""
    max_turns: int | None = None
    """Most model calls of one workflow case (``None``: :data:`DEFAULT_MAX_TURNS`)."""

    @property
    def is_workflow(self) -> bool:
        """Whether the suite said it runs workflows (``tools=`` or ``max_turns=``)."""
        return self.tools is not None or self.max_turns is not None

    @property
    def delimiter(self) -> str:
        """What goes between the prompt and a choice: lm-eval's ``" "``, or ``""`` under a chat template."""
        if self.target_delimiter is not None:
            return self.target_delimiter
        return "" if self.chat else " "

    @property
    def label(self) -> str:
        """How messages name this suite: ``le.cases of test_x``."""
        return f"le.cases of {self.function}" if self.function else "le.cases"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text_or_none(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _name_or_function(value: Any) -> bool:
    return isinstance(value, str) or callable(value)


def _rate(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1)


def _stop_strings(value: Any) -> bool:
    return value is None or stop_problem(value) is None  # the rule of --llmeval-stop too


_ARGUMENTS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("prompt", lambda v: v is None or _name_or_function(v), "a format string such as '{question}' or a function of the case"),
    ("chat", lambda v: v is None or isinstance(v, bool), "True or False"),
    ("system", _text_or_none, "a string"),
    ("choices", _text_or_none, "the name of the field that holds the choices"),
    ("id", _name_or_function, "the name of the id field or a function of the case"),
    ("min_pass_rate", _rate, "a number between 0 and 1"),
    ("max_new_tokens", lambda v: v is None or (_is_int(v) and v >= 1), "a whole number of at least 1"),
    ("stop", _stop_strings, "a string or a list of non-empty strings"),
    ("num_fewshot", lambda v: _is_int(v) and v >= 0, "a whole number, 0 or more"),
    ("fewshot_seed", _is_int, "a whole number"),
    ("target", lambda v: v is None or _name_or_function(v), "the name of the answer field or a function of the case"),
    ("target_delimiter", _text_or_none, "a string"),
    ("fewshot_delimiter", lambda v: isinstance(v, str), "a string"),
    ("continuation", _text_or_none, "the name of the field scored after each choice"),
    ("repeats", lambda v: v is None or (_is_int(v) and 1 <= v <= MAX_REPEATS), f"a whole number from 1 to {MAX_REPEATS}"),
    ("require", lambda v: v in (None, "all", "majority"), "'all' or 'majority'"),
    ("judge", lambda v: v is None or callable(getattr(v, "judge_problem", None)), "le.Rubric(...) or le.Pairwise(...)"),
    ("thinking", lambda v: v is None or isinstance(v, bool), "True or False"),
    ("max_reasoning_tokens", lambda v: v is None or (_is_int(v) and v >= 0), "a whole number, 0 or more"),
    ("perturb", lambda v: v is None or (isinstance(v, tuple) and len(v) > 0), "a non-empty list of perturbations (le.perturb.typos(), ...)"),
    ("fields", lambda v: v is None or (isinstance(v, tuple) and len(v) > 0 and all(isinstance(f, str) and f for f in v)),
     "a field name or a list of field names"),
    ("search", lambda v: v is None or (_is_int(v) and v >= 1), "a whole number of at least 1 (variants explored per case)"),
    ("min_worst_case", _rate, "a number between 0 and 1"),
    ("permute", lambda v: v in (None, "cyclic"), "'cyclic'"),
    ("max_turns", lambda v: v is None or (_is_int(v) and v >= 1), "a whole number of at least 1"),
)
"""Each argument of ``le.cases``, what a usable value is, and how to say it."""


def check_spec(spec: CaseSpec) -> None:
    """Refuse arguments of ``le.cases`` that cannot work, naming the suite and the fix.

    Called when the suite is collected, not when the decorator runs, so a mistake is one
    collection error line like any other bad data.
    """
    for name, valid, wanted in _ARGUMENTS:
        value = getattr(spec, name)
        if not valid(value):
            raise CaseError(f"{spec.label}: {name}= must be {wanted}, got {value!r:.80}")
    if spec.thinking is not None and not spec.chat:
        raise CaseError(
            f"{spec.label}: thinking={spec.thinking} switches the chat template's thinking, so it needs chat=True; "
            "add chat=True, or drop thinking="
        )
    if spec.num_fewshot and spec.fewshot_source is None:
        raise CaseError(
            f"{spec.label}: num_fewshot={spec.num_fewshot} needs fewshot_source=: the file or list the examples are drawn from"
        )
    judge_problem = spec.judge.judge_problem() if spec.judge is not None else None
    if judge_problem is not None:
        raise CaseError(f"{spec.label}: judge=: {judge_problem}")
    if isinstance(spec.prompt, str):
        problem = template_problem(spec.prompt)
        if problem is not None:
            raise CaseError(f"{spec.label}: {problem}")
    from pytest_llmeval.datasets.expand import check_beyond

    check_beyond(spec)


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


# ----------------------------------------------------------------------------- fingerprints


def sha256_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def dataset_hash(cases: Sequence[Case]) -> str:
    """A hash of the case contents (ids and fields), independent of file formatting and order."""
    canon = sorted(json.dumps({"id": c.id, "fields": c.fields}, sort_keys=True, default=str) for c in cases)
    return sha256_text("\n".join(canon))


def _template_text(spec: CaseSpec) -> str:
    """The prompt template as text: a format string, or a function's source."""
    template = spec.prompt
    if callable(template):
        import inspect

        try:
            return inspect.getsource(template)
        except (OSError, TypeError):
            return getattr(template, "__qualname__", repr(template))
    return template or "{prompt}"


def _prompt_parts(spec: CaseSpec) -> dict[str, Any]:
    return {
        "template": _template_text(spec),
        "chat": bool(spec.chat),  # not said hashes as False: the same prompt is sent
        "system": spec.system,
        "target_delimiter": spec.delimiter,
        "continuation": spec.continuation,
        "fewshot_delimiter": spec.fewshot_delimiter if spec.num_fewshot else None,
        **({"permute": spec.permute} if spec.permute is not None else {}),  # only when set: other suites' hashes stay
    }


def prompt_hash(spec: CaseSpec) -> str:
    return sha256_text(json.dumps(_prompt_parts(spec), sort_keys=True))


PROMPT_TEXT_LIMIT = 4000
"""Characters of :func:`prompt_text` kept (a baseline shows the change; the hash decides)."""


def prompt_text(spec: CaseSpec) -> str:
    """What :func:`prompt_hash` covers, as a person reads it: the template's text, then one line
    for each other setting that is set (``(chat: true)``, ``(system: "...")``; the choice
    delimiter only for a suite that ranks choices). When two prompts hash differently but read
    the same here, a comparison shows their hashes instead."""
    parts = _prompt_parts(spec)
    text = parts.pop("template").rstrip("\n")
    if spec.choices is None and spec.continuation is None:
        parts.pop("target_delimiter")  # joins a prompt and a choice: says nothing of a generated answer
    for key, value in parts.items():
        if value not in (None, False):
            text += f"\n({key}: {json.dumps(value, ensure_ascii=False)})"
    return text if len(text) <= PROMPT_TEXT_LIMIT else text[:PROMPT_TEXT_LIMIT] + "\n..."


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
