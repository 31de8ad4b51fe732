"""``cases()``: the decorator that turns a test function into an eval suite.

Part of the library face (``le.cases``): it only marks the function with its
:class:`~pytest_llmeval.datasets.spec.CaseSpec`; the plugin (``pytest_llmeval.plugin``) reads
the mark when pytest collects the test. Nothing here imports the plugin.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence, TypeVar

import pytest

from pytest_llmeval.datasets.casefiles import CaseSource
from pytest_llmeval.datasets.casetext import PromptTemplate
from pytest_llmeval.datasets.spec import CaseSpec

F = TypeVar("F", bound=Callable[..., Any])

MARKER = "llmeval"
"""The name of the pytest mark that carries a suite's :class:`CaseSpec`."""


def cases(
    source: CaseSource,
    *,
    prompt: PromptTemplate = None, chat: bool | None = None, system: str | None = None, choices: str | None = None,
    id: str | Callable[[Mapping[str, Any]], str] = "id",
    min_pass_rate: float | None = None, max_new_tokens: int | None = None, stop: str | Sequence[str] | None = None,
    num_fewshot: int = 0, fewshot_source: CaseSource | None = None, fewshot_seed: int = 1234,
    target: str | Callable[[Mapping[str, Any]], str] | None = None, target_delimiter: str | None = None,
    fewshot_delimiter: str = "\n\n", continuation: str | None = None,
    repeats: int | None = None, require: str | None = None, judge: Any = None,
    thinking: bool | None = None, max_reasoning_tokens: int | None = None,
    perturb: Sequence[Any] | None = None, fields: str | Sequence[str] | None = None, search: int | None = None,
    min_worst_case: float | None = None, permute: str | None = None,
    tools: Any = None, max_turns: int | None = None,
) -> Callable[[F], F]:  # fmt: skip
    """Parametrize a test with eval cases: one test item per case, its id from the case's ``id``.

    ``source`` is a .jsonl/.json/.csv/.tsv/.yaml file (relative to the test file) or a list of
    dicts. ``prompt`` is a format string over case fields (``"{question}"``) or a function of
    the case; with ``chat=True`` the tokenizer's chat template is applied, with ``chat=False`` the
    prompt is sent as it is. Not saying (``None``) sends it as it is too, and the report warns,
    once per suite, when a generation suite runs a model that has a chat template (an instruct
    model scores far below its ability without it); ``chat=False`` silences that. ``choices`` names the
    field holding the answer options of a multiple-choice case (use the ``ranked`` fixture).
    ``min_pass_rate`` gates the suite; ``max_new_tokens``/``stop`` override generation for it.
    ``num_fewshot`` examples come from ``fewshot_source``, chosen per case id; ``target`` names
    the field with an example's answer. ``target_delimiter`` goes between prompt and choice
    (``" "``, or ``""`` with ``chat``, as in lm-evaluation-harness). ``continuation`` names the
    field scored after each ``prompt + choice`` (partial scoring, as in WinoGrande).
    ``repeats`` samples each case that many times (each sample one item, ``test_x[add-001:r3]``;
    default: ``llmeval_repeats``, else 1); ``require`` says what a case then needs to pass:
    ``"all"`` its samples or a ``"majority"`` (default: the suite's rate is the mean of its
    cases' pass rates). ``judge`` (``le.Rubric(...)`` or ``le.Pairwise(...)``) has a judge model
    grade each completion: the ``judgement`` fixture. For a reasoning model, ``thinking``
    switches its thinking on or off where its chat template has the switch (``enable_thinking``;
    needs ``chat=True``), and ``max_reasoning_tokens`` caps its thinking (see docs/reasoning.md);
    ``completion`` is then the answer after the thinking, ``completion.reasoning`` the thinking.
    ``tools`` (functions, ``le.mcp_tools(...)``)
    and ``max_turns`` (most model calls, default 8) make each case a workflow: the model may call
    the tools in a conversation, which the ``conversation`` fixture holds (docs/workflows.md).

    Beyond accuracy (``docs/beyond_accuracy.md``): ``perturb`` (a list of ``le.perturb.*``) adds a
    variant of every case per perturbation, each its own item (``qa-007~typos``), on the fields the
    prompt reads or those named by ``fields``; ``min_worst_case`` gates the share of cases right as
    written and under every perturbation; ``search=N`` looks, for every case that passes, for the
    smallest change that breaks it (N variants explored per case and perturbation).
    ``permute="cyclic"`` scores every rotation of a multiple-choice case's options, and the case
    passes only when every rotation is right.

    Nothing is checked or read here, when the test module is imported: the suite's arguments
    and data are checked when pytest collects it, and a problem is one collection error line.
    """
    spec = _spec(dict(locals()))  # the parameters above, which are CaseSpec's fields by name

    def decorate(func: F) -> F:
        named = dataclasses.replace(spec, function=getattr(func, "__name__", ""))
        return getattr(pytest.mark, MARKER)(named)(func)

    return decorate


def _spec(arguments: dict[str, Any]) -> CaseSpec:
    """The suite's :class:`CaseSpec` from the arguments of :func:`cases`, its lists made tuples."""
    return CaseSpec(
        **{
            **arguments,
            "stop": _stop_tuple(arguments["stop"]),
            "perturb": _tuple(arguments["perturb"]),
            "fields": _stop_tuple(arguments["fields"]),
            "tools": _tuple(arguments["tools"]),
        }
    )


def _tuple(value: Any) -> Any:
    """A list as a tuple (the spec is frozen and hashable); anything else kept for the check to name."""
    return tuple(value) if isinstance(value, list) else value


def _stop_tuple(stop: Any) -> Any:
    """``stop`` as a tuple of strings; a value that is not one is kept for the collection check to name."""
    if isinstance(stop, str):
        return (stop,)
    if isinstance(stop, (list, tuple)):
        return tuple(stop)
    return stop
