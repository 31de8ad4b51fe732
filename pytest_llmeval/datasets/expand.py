"""A suite's items beyond its cases as written: the variants its perturbations draw (``perturb=``),
the rotations of a multiple-choice case's options (``permute="cyclic"``), the item that searches for
the smallest breaking change (``search=``), and the checks of those arguments.

A variant is a :class:`~pytest_llmeval.datasets.casefiles.Case` with ``perturbation`` and
``original_id`` set (``qa-007~typos``), drawn with a seed from (``llmeval_seed``, case id,
perturbation): the same text in every run, batch, selection and worker. A rotation has
``rotation`` and ``original_id`` (``q1~rot2``). Nothing here imports pytest or a model.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Iterable, Mapping, Sequence

from pytest_llmeval.datasets.casefiles import Case, CaseError
from pytest_llmeval.datasets.casetext import ANSWER_FIELDS, choice_index, template_fields

CaseSpec = Any
"""A :class:`~pytest_llmeval.datasets.spec.CaseSpec` (that module imports this one)."""

__all__ = [
    "SEARCH_ID",
    "answer_index",
    "check_beyond",
    "check_kind",
    "draw_variants",
    "perturbation_hashes",
    "perturbed_fields",
    "rotations_of",
    "search_item",
    "suite_items",
]

SEARCH_ID = "~search"
"""The id of a suite's search item (``test_qa[~search]``; ``-k 'not ~search'`` leaves it out)."""

_NAME = re.compile(r"[\w.+-]+")
"""What a perturbation's name may hold: characters ``-k`` can select (``-k '~typos'``)."""


def check_beyond(spec: CaseSpec) -> None:
    """Refuse ``perturb=``, ``fields=``, ``search=``, ``min_worst_case=`` and ``permute=`` values
    that cannot work, in one line naming the suite and the fix (types are checked before)."""
    label = spec.label
    names: set[str] = set()
    for i, p in enumerate(spec.perturb or ()):
        if not _is_perturbation(p):
            raise CaseError(
                f"{label}: perturb= entry {i} is {type(p).__name__} {p!r:.60}, not a perturbation; "
                "use le.perturb.typos(), le.perturb.case('lower')..., or le.perturb.from_function(name, f)"
            )
        if not _NAME.fullmatch(p.name):
            raise CaseError(
                f"{label}: perturbation name {p.name!r} must be letters, digits, '_', '-', '.' or '+' "
                "(it names items: qa-007~typos); rename it with .named('...')"
            )
        if p.name in names:
            raise CaseError(f"{label}: two perturbations are named {p.name!r}; give one another name with .named('...')")
        names.add(p.name)
    needs_perturb = [name for name in ("search", "min_worst_case", "fields") if getattr(spec, name) is not None]
    if needs_perturb and not spec.perturb:
        raise CaseError(f"{label}: {needs_perturb[0]}= needs perturb=: the perturbations it works on (perturb=[le.perturb.typos()])")
    if spec.permute is not None:
        if spec.perturb:
            raise CaseError(f"{label}: permute= and perturb= do not combine; put them in two suites")
        if spec.choices is None:
            raise CaseError(f"{label}: permute='cyclic' rotates a multiple-choice case's options: it needs choices='<field>'")
        if spec.repeats is not None and spec.repeats > 1:
            raise CaseError(f"{label}: permute= scores each rotation once: drop repeats=")
        if callable(spec.target):
            raise CaseError(f"{label}: permute= needs the answer in a field to move it with the options; name it with target='<field>'")
    if spec.search is not None and spec.judge is not None:
        raise CaseError(f"{label}: search= scores variants with the test itself; it cannot use a judge (drop judge= or search=)")


def _is_perturbation(value: Any) -> bool:
    """A :class:`~pytest_llmeval.perturb.Perturbation`, by what it has (so a test runner that
    imports the package afresh between sessions still recognises one)."""
    return isinstance(getattr(value, "name", None), str) and all(callable(getattr(value, a, None)) for a in ("draw", "strategy", "on"))


def check_kind(spec: CaseSpec, kind: str | None, repeats: int) -> None:
    """What a suite's test asks for (``completion``: ``"generate"``, ``ranked``: ``"rank"``) against
    ``permute=`` and ``search=``; ``repeats`` is the session's samples per case."""
    if spec.permute is not None and kind != "rank":
        what = "a generation suite (its test takes 'completion')" if kind == "generate" else "a test without 'ranked'"
        raise CaseError(f"{spec.label}: permute='cyclic' rotates the options that 'ranked' scores, so it cannot apply to {what}")
    if spec.permute is not None and repeats > 1:
        raise CaseError(f"{spec.label}: permute= scores each rotation once, but llmeval_repeats is {repeats}; run it with one sample")
    if spec.search is not None and kind is None:
        raise CaseError(f"{spec.label}: search= scores variants through the test's 'completion' or 'ranked'; take one of them")


# ----------------------------------------------------------------------------- perturbations


def _prompt_fields(spec: CaseSpec) -> tuple[str, ...]:
    if spec.fields is not None:
        return spec.fields
    if isinstance(spec.prompt, str):
        return tuple(template_fields(spec.prompt))
    if spec.prompt is None:
        return ("prompt",)
    raise CaseError(
        f"{spec.label}: perturb= with a prompt function cannot tell which fields the prompt reads; "
        "name them with fields=['question', ...]"
    )


def perturbed_fields(spec: CaseSpec, perturbation: Any) -> tuple[str, ...]:
    """The fields ``perturbation`` changes in this suite's cases (answer fields too for names and
    gendered words)."""
    from pytest_llmeval.perturb import fields_to_perturb

    answers = (spec.target,) if isinstance(spec.target, str) else ANSWER_FIELDS
    return fields_to_perturb(perturbation, _prompt_fields(spec), answer_fields=answers)


def draw_variants(spec: CaseSpec, cases: Sequence[Case], seed: int) -> dict[str, tuple[Case, ...]]:
    """Each case's variants, one per perturbation in ``spec.perturb`` order (case id -> variants);
    a perturbation that fails is one :class:`CaseError` line naming it and the case."""
    from pytest_llmeval.perturb import draw_variant, variant_id

    perturbations = list(spec.perturb or ())
    fields = {p.name: perturbed_fields(spec, p) for p in perturbations}
    out: dict[str, tuple[Case, ...]] = {}
    for case in cases:
        variants = []
        for p in perturbations:
            try:
                drawn = draw_variant(case.fields, p, seed=seed, case_id=case.id, fields=fields[p.name])
            except CaseError as exc:  # a PerturbationError, one line naming the perturbation and the case
                raise CaseError(f"{spec.label}: {exc}") from None
            variants.append(Case(id=variant_id(case.id, p), fields=drawn, source=case.source, line=case.line,
                                 perturbation=p.name, original_id=case.id))  # fmt: skip
        out[case.id] = tuple(variants)
    return out


def perturbation_hashes(spec: CaseSpec, variants: Mapping[str, Sequence[Case]]) -> dict[str, str]:
    """Per perturbation name, a hash of what its variants are (its parameters, the fields it
    changes, every variant's text): the fingerprint of its results, as the dataset hash is the
    originals'."""
    out = {}
    for p in spec.perturb or ():
        rows = sorted(
            json.dumps({"id": v.id, "fields": v.fields}, sort_keys=True, default=str)
            for drawn in variants.values() for v in drawn if v.perturbation == p.name
        )  # fmt: skip
        blob = json.dumps({"perturbation": p.key, "fields": list(perturbed_fields(spec, p)), "variants": rows}, sort_keys=True)
        out[p.name] = "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()
    return out


# ----------------------------------------------------------------------------- rotations


def _answer_field(spec: CaseSpec, case: Case) -> str | None:
    if isinstance(spec.target, str):
        return spec.target if spec.target in case.fields else None
    return next((name for name in ANSWER_FIELDS if case.fields.get(name) is not None), None)


def answer_index(spec: CaseSpec, case: Case) -> int | None:
    """The index of a multiple-choice case's answer among its choices (an index, a digit, a letter
    or the text of a choice, as ``assert_choice`` reads it); None when it names none."""
    if spec.choices is None or callable(spec.target):
        return None
    options = case.fields.get(spec.choices)
    name = _answer_field(spec, case)
    if not isinstance(options, (list, tuple)) or name is None:
        return None
    value = case.fields[name]
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return choice_index(options, value)


def _moved(value: Any, options: Sequence[Any], position: int) -> Any:
    """The answer ``value`` written the same way, for the option now at ``position``."""
    if isinstance(value, str):
        wanted = value.strip()
        if any(str(o).strip() == wanted for o in options):
            return value  # the text of a choice: it moves with its choice
        if wanted.isdecimal():
            return str(position)
        letter = chr(ord("A") + position)
        return letter if wanted.isupper() else letter.lower()
    return position


def rotations_of(spec: CaseSpec, case: Case) -> list[Case]:
    """The case once per rotation of its options (``q1~rot0`` is the case as written), the
    answer moved with its option."""
    from pytest_llmeval.datasets.cyclic import rotation_id, rotations

    options = case.fields.get(spec.choices)
    if isinstance(options, str) or not isinstance(options, (list, tuple)) or len(options) < 2:
        raise CaseError(f"{case.where}: case {case.id!r}: {spec.choices!r} must be a list of at least two choices")
    index = answer_index(spec, case)
    name = _answer_field(spec, case)
    if index is None or name is None:
        raise CaseError(
            f"{case.where}: case {case.id!r}: permute='cyclic' needs its answer as the index, letter or text "
            f"of one of its {len(options)} choices, to move it with the options"
        )
    value = case.fields[name]
    first = value[0] if isinstance(value, (list, tuple)) else value
    out = []
    for rot in rotations(options, index):
        fields = {**case.fields, spec.choices: list(rot.choices), name: _moved(first, options, rot.answer)}
        out.append(Case(id=rotation_id(case.id, rot.shift), fields=fields, source=case.source, line=case.line,
                        rotation=rot.shift, original_id=case.id))  # fmt: skip
    return out


# ----------------------------------------------------------------------------- items


def search_item(source: str) -> Case:
    """The item that runs a suite's search."""
    return Case(id=SEARCH_ID, fields={}, source=source, search=True)


def suite_items(spec: CaseSpec, cases: Iterable[Case], variants: Mapping[str, Sequence[Case]], *, searches: bool) -> list[Case]:
    """A suite's items in run order: each case followed by its variants, or its rotations in
    place of it; then the search item when ``searches``."""
    items: list[Case] = []
    source = "<list>"
    for case in cases:
        source = case.source
        if spec.permute is not None:
            items.extend(rotations_of(spec, case))
        else:
            items.append(case)
            items.extend(variants.get(case.id, ()))
    if searches and spec.search is not None:
        items.append(search_item(source))
    return items
