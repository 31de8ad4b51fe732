"""What a case says and expects: its prompt, filled in from a template, and its answer text.

:func:`answer_texts` is the one place that says what a case's answer is; few-shot examples
(:func:`solved_example`, :mod:`pytest_llmeval.datasets.fewshot`) and the held-out check use it. A
prompt template is checked once, so a lone brace or a positional field is one clear line
naming the template and the fix. Nothing here imports pytest.
"""

from __future__ import annotations

import _string  # the parser str.format uses for "{field[0].attr}"
import functools
import string
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Union

from pytest_llmeval.datasets.casefiles import Case, CaseError

__all__ = [
    "ANSWER_FIELDS",
    "PromptTemplate",
    "answer_texts",
    "choice_index",
    "render_prompt",
    "solved_example",
    "template_fields",
    "template_problem",
]

PromptTemplate = Union[str, Callable[[Mapping[str, Any]], str], None]

# ----------------------------------------------------------------------------- prompts


def template_fields(template: str) -> list[str]:
    """The case fields a ``str.format`` template reads (``{question}``, ``{choices[0]}`` -> ``question``,
    ``choices``); raises :class:`CaseError` saying what is wrong with a template that cannot work."""
    problem = template_problem(template)
    if problem is not None:
        raise CaseError(problem)
    return list(_parse_template(template))


def _short(template: str) -> str:
    """``template`` quoted for a message, its middle elided past 80 characters."""
    text = repr(template)
    return text if len(text) <= 80 else text[:76] + "..." + text[-1]


def template_problem(template: str) -> str | None:
    """What makes ``template`` unusable as a prompt over case fields, or ``None``."""
    try:
        _parse_template(template)
    except _TemplateProblem as exc:
        return f"the prompt {_short(template)} {exc}"
    return None


class _TemplateProblem(Exception):
    pass


@functools.lru_cache(maxsize=256)
def _parse_template(template: str) -> tuple[str, ...]:
    """The field names ``template`` reads, in order; :class:`_TemplateProblem` when it cannot work."""
    names: list[str] = []
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise _TemplateProblem(
            f"is not a valid format string ({exc}): write a literal brace twice, '{{{{' or '}}}}', "
            "and a case field as '{name}'"
        ) from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if conversion not in (None, "r", "s", "a"):
            raise _TemplateProblem(f"uses the conversion '!{conversion}'; use '!r', '!s' or '!a', or none")
        names.append(_field_base(name))
        if spec and "{" in spec:
            names.extend(_parse_template(spec))
    return tuple(names)


def _field_base(name: str) -> str:
    """The case field ``{name}`` reads; only named fields and indexing (``{choices[0]}``) are allowed."""
    try:
        first, rest = _string.formatter_field_name_split(name)
        accessors = list(rest)
    except ValueError as exc:
        raise _TemplateProblem(f"has a malformed field '{{{name}}}' ({exc}); write it as '{{name}}' or '{{name[0]}}'") from None
    if first == "" or isinstance(first, int):
        raise _TemplateProblem(
            f"uses the positional field '{{{name}}}'; name the case field instead, such as '{{question}}'"
        )
    if any(is_attribute for is_attribute, _ in accessors):
        raise _TemplateProblem(
            f"reads an attribute in '{{{name}}}'; a template names case fields and may index them "
            "('{choices[0]}'): for anything else pass a function of the case as prompt="
        )
    return str(first)


def render_prompt(template: PromptTemplate, case: Case) -> str | None:
    """The prompt text of ``case``; ``None`` when there is no template and no ``prompt`` field."""
    if template is None:
        value = case.fields.get("prompt")
        return None if value is None else str(value)
    if callable(template):
        text = template(case)
        if not isinstance(text, str):
            raise CaseError(f"{case.where}: the prompt function returned {type(text).__name__}, not str")
        return text
    problem = template_problem(template)
    if problem is not None:
        raise CaseError(f"{case.where}: {problem}")
    missing = [name for name in _parse_template(template) if name not in case.fields]
    if missing:
        raise CaseError(
            f"{case.where}: case {case.id!r} has no field {missing[0]!r} used by the prompt {_short(template)}; "
            f"it has: {', '.join(case.fields) or 'none'}. Add the field or change the prompt"
        )
    try:
        return template.format(**case.fields)
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise CaseError(
            f"{case.where}: cannot fill the prompt {_short(template)} for case {case.id!r} ({reason}); "
            "check the case's fields or change the prompt"
        ) from None


# ----------------------------------------------------------------------------- answers

ANSWER_FIELDS = ("target", "answer", "answers", "expected", "output", "label")
"""Where a case's answer is looked for, in order, when ``target=`` does not name it (``target``
first: a GSM8K row's worked solution, where ``answer`` is only the final number)."""

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def answer_texts(
    case: Mapping[str, Any],
    *,
    target: str | Callable[[Mapping[str, Any]], Any] | None = None,
    choices: str | None = None,
    strict: bool = True,
) -> tuple[str, ...]:
    """Every answer text of ``case``, the one a solved example shows first; ``()`` when it has none.

    This is the only place that says what a case's answer text is: few-shot examples (from
    ``le.cases`` and from :mod:`pytest_llmeval.datasets.fewshot`) and the held-out check all use it.
    The answer is ``target`` (a field name, or a function of the case) when given, else the
    first field of :data:`ANSWER_FIELDS` the case has; a list is several answers. With
    ``choices`` (the field holding the options), an answer that is an option's index (``1``
    or ``"1"``) or letter (``"B"``) is that option's text, as ``assert_choice`` reads it.
    An index that is out of range raises :class:`CaseError` when ``strict``, else it stays
    as written.
    """
    value = _answer_value(case, target, strict)
    if value is None:
        return ()
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    options = case.get(choices) if choices else None
    if not isinstance(options, (list, tuple)):
        options = None
    texts = []
    for item in values:
        if item is None:
            continue
        index = choice_index(options, item) if options is not None else None
        if index is None and options is not None and strict and _is_int(item):
            raise CaseError(
                f"{_which(case)}: answer {item!r} is not an index into its {len(options)} choices; "
                "give the answer as a 0-based index, a letter or the choice's text"
            )
        texts.append(str(item) if index is None else str(options[index]))
    return tuple(texts)


def _answer_value(case: Mapping[str, Any], target: Any, strict: bool) -> Any:
    if callable(target):
        return target(case)
    if isinstance(target, str):
        if target not in case and strict:
            raise CaseError(
                f"{_which(case)} has no field {target!r} (named by target=); it has: {', '.join(map(str, case)) or 'none'}"
            )
        return case.get(target)
    return next((case[name] for name in ANSWER_FIELDS if case.get(name) is not None), None)


def choice_index(options: Sequence[Any], answer: Any) -> int | None:
    """The option ``answer`` names: its index, its text, a digit string or a letter; ``None`` if none."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return answer if 0 <= answer < len(options) else None
    if not isinstance(answer, str):
        return None
    wanted = answer.strip()
    for i, option in enumerate(options):
        if str(option).strip() == wanted:
            return i
    if wanted.isdecimal() and int(wanted) < len(options):
        return int(wanted)
    if len(wanted) == 1 and wanted.upper() in _LETTERS[: len(options)]:
        return _LETTERS.index(wanted.upper())
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _which(case: Mapping[str, Any]) -> str:
    if isinstance(case, Case):
        return f"{case.where}: case {case.id!r}"
    return f"case {case.get('id', '?')!r}"


def solved_example(
    case: Mapping[str, Any],
    question: str,
    *,
    target: str | Callable[[Mapping[str, Any]], Any] | None = None,
    choices: str | None = None,
    continuation: str | None = None,
) -> tuple[str, str]:
    """``(question, answer)`` of a solved few-shot example, as lm-eval shows it after ``question``
    (the example's rendered prompt): its answer text; with partial scoring (``continuation``
    names the field scored after each choice, as in WinoGrande) the question completed by the
    correct choice, then the continuation."""
    texts = answer_texts(case, target=target, choices=choices)
    if not texts:
        raise CaseError(
            f"{_which(case)}: a few-shot example needs an answer to show, and it has none of the fields "
            f"{', '.join(ANSWER_FIELDS)}; add one, or name the field that holds it with target="
        )
    if continuation is None:
        return question, texts[0]
    if case.get(continuation) is None:
        raise CaseError(f"{_which(case)} has no continuation field {continuation!r}")
    return question + texts[0], str(case[continuation])
