"""What ``le.cases`` was told (:class:`CaseSpec`, one per eval suite) and which values of its
arguments can work (:func:`check_spec`, run when pytest collects the suite: a mistake is one
collection error line). Nothing here imports pytest or reads a case."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from pytest_llmeval.datasets.casefiles import CaseError, CaseSource
from pytest_llmeval.datasets.casetext import PromptTemplate, template_problem
from pytest_llmeval.settings import MAX_REPEATS, stop_problem

__all__ = ["CaseSpec", "check_spec"]


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
